//! Users and API tokens: admins manage users and issue tokens; a user
//! may also list and revoke their own tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::audited::Change;
use super::{ApiError, ApiResult, AppState, Body, Ctx, Validate, check_len};
use crate::auth::{self, Role};
use crate::base::error::Error;
use crate::store::secrets::Password;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// 1-32 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// Role.
    pub role: Role,
    /// 8-256 characters.
    pub password: String,
}
impl Validate for NewUserBody {
    fn validate(&self) -> Result<(), Error> {
        auth::check_name(&self.name).map_err(|e| Error::invalid(e.to_string()))?;
        auth::check_password(&Password::new(self.password.clone()))
            .map_err(|e| Error::invalid(e.to_string()))
    }
}

/// `PATCH /api/v1/users/{name}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// New role.
    pub role: Option<Role>,
    /// Disable (ends sessions, revokes tokens) or enable.
    pub disabled: Option<bool>,
    /// New password, 8-256 characters.
    pub password: Option<String>,
}
impl Validate for UpdateUserBody {
    fn validate(&self) -> Result<(), Error> {
        if let Some(p) = &self.password {
            auth::check_password(&Password::new(p.clone()))
                .map_err(|e| Error::invalid(e.to_string()))?;
        }
        if self.role.is_none() && self.disabled.is_none() && self.password.is_none() {
            return Err(Error::invalid(
                "nothing to change: give role, disabled or password",
            ));
        }
        Ok(())
    }
}

/// `POST /api/v1/users/{name}/tokens`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// What the token is for (1-64 characters).
    pub label: String,
}
impl Validate for TokenBody {
    fn validate(&self) -> Result<(), Error> {
        check_len("label", &self.label, 1, 64)
    }
}

pub(super) async fn list_users(State(st): State<AppState>) -> ApiResult {
    Ok(Json(st.users.users()?).into_response())
}

pub(super) async fn create_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<NewUserBody>,
) -> ApiResult {
    if st.users.user(&b.name)?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("user `{}` exists", b.name),
        ));
    }
    let change = Change {
        ctx: &ctx,
        action: "user.create",
        target: Some(&b.name),
        before: None,
    };
    let u = st.audited(
        change,
        || {
            st.users
                .upsert(&b.name, b.role, &Password::new(b.password), st.hash_cost)?;
            st.users.user(&b.name)
        },
        |_| Some(serde_json::json!({"role": b.role})),
    )?;
    Ok((StatusCode::CREATED, Json(u)).into_response())
}

fn last_admin_guard(st: &AppState, name: &str, losing_admin: bool) -> Result<(), ApiError> {
    if losing_admin
        && st
            .users
            .user(name)?
            .is_some_and(|u| u.role == Role::Admin && !u.disabled)
        && st.users.admin_count()? <= 1
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "the last enabled admin cannot be removed, disabled or demoted",
        ));
    }
    Ok(())
}

pub(super) async fn update_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Body(b): Body<UpdateUserBody>,
) -> ApiResult {
    let before = st
        .users
        .user(&name)?
        .ok_or_else(|| ApiError::not_found("user", &name))?;
    last_admin_guard(
        &st,
        &name,
        b.disabled == Some(true) || b.role.is_some_and(|r| r != Role::Admin),
    )?;
    let change = Change {
        ctx: &ctx,
        action: "user.update",
        target: Some(&name),
        before: Some(serde_json::json!({"role": before.role, "disabled": before.disabled})),
    };
    let after = st.audited(
        change,
        || {
            if let Some(p) = &b.password {
                st.users.upsert(
                    &name,
                    b.role.unwrap_or(before.role),
                    &Password::new(p.clone()),
                    st.hash_cost,
                )?;
            }
            st.users.update(&name, b.role, b.disabled)
        },
        |after| {
            let mut a = serde_json::json!({"role": after.role, "disabled": after.disabled});
            if b.password.is_some() {
                a["password"] = serde_json::json!("***");
            }
            Some(a)
        },
    )?;
    Ok(Json(after).into_response())
}

pub(super) async fn delete_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult {
    let before = st
        .users
        .user(&name)?
        .ok_or_else(|| ApiError::not_found("user", &name))?;
    last_admin_guard(&st, &name, true)?;
    let change = Change {
        ctx: &ctx,
        action: "user.delete",
        target: Some(&name),
        before: Some(serde_json::json!({"role": before.role})),
    };
    st.audited(change, || st.users.delete(&name), |_| None)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn create_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Body(b): Body<TokenBody>,
) -> ApiResult {
    let change = Change {
        ctx: &ctx,
        action: "user.token",
        target: Some(&name),
        before: None,
    };
    let tok = st.audited(
        change,
        || st.users.issue_token(&name, &b.label),
        |t| Some(serde_json::json!({"id": t.id, "label": b.label})),
    )?;
    let mut r = (
        StatusCode::CREATED,
        Json(serde_json::json!({"user": name, "id": tok.id, "label": b.label, "token": tok.token})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Admins may act on anyone's tokens, other users only on their own
/// (refused before the user is looked up: a 403 does not tell whether the
/// name exists).
fn own_or_admin(ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    if ctx.who.role == Role::Admin || ctx.who.user == name {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "only admins may manage another user's tokens",
    ))
}

/// `GET /api/v1/users/{name}/tokens`: id, label, created, last used;
/// never the secret.
pub(super) async fn list_tokens(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult {
    own_or_admin(&ctx, &name)?;
    let mut r = Json(st.users.tokens(&name)?).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `DELETE /api/v1/users/{name}/tokens/{id}`
pub(super) async fn revoke_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    own_or_admin(&ctx, &name)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad(format!("token id `{id}` is not a number")))?;
    let change = Change {
        ctx: &ctx,
        action: "user.token.revoke",
        target: Some(&name),
        before: None,
    };
    st.audited(
        change,
        || {
            st.users
                .revoke_token(&name, id)?
                .ok_or_else(|| ApiError::not_found("token", &id.to_string()))
        },
        |t| Some(serde_json::json!({"id": t.id, "label": t.label})),
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
