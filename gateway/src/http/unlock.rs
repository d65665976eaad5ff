//! `POST /api/v1/users/{name}/unlock` (admins): lifts a user's login
//! lockouts, for every address, and its slow-down; audited with what was
//! cleared.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;

use super::audited::Change;
use super::{ApiError, ApiResult, AppState, Ctx};

pub(super) async fn unlock_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult {
    if st.users.user(&name)?.is_none() {
        return Err(ApiError::not_found("user", &name));
    }
    let change = Change {
        ctx: &ctx,
        action: "user.unlock",
        target: Some(&name),
        before: None,
    };
    let cleared = st.audited(
        change,
        || Ok::<_, ApiError>(st.limiter.unlock(&name)),
        |u| {
            let addresses: Vec<String> = u.addresses.iter().map(|a| a.to_string()).collect();
            Some(serde_json::json!({"unlocked": addresses, "slowed": u.slowed}))
        },
    )?;
    let addresses: Vec<String> = cleared.addresses.iter().map(|a| a.to_string()).collect();
    Ok(Json(serde_json::json!({
        "user": name,
        "unlocked": addresses,
        "slowed": cleared.slowed,
    }))
    .into_response())
}
