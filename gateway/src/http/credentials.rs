//! Device logins and credential groups (write-only passwords).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::audited::Change;
use super::{ApiError, ApiResult, AppState, Body, Ctx, Validate, check_len};
use crate::base::error::Error;
use crate::store::secrets::Password;

/// `PUT /api/v1/devices/{id}/credentials` (write-only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    /// Login name on the device.
    pub username: String,
    /// Password (never returned).
    pub password: String,
}
impl Validate for CredentialsBody {
    fn validate(&self) -> Result<(), Error> {
        check_len("username", &self.username, 1, 64)?;
        check_len("password", &self.password, 1, 128)
    }
}

pub(super) async fn set_credentials(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<CredentialsBody>,
) -> ApiResult {
    let before = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device", &id))?;
    let change = Change {
        ctx: &ctx,
        action: "device.credentials",
        target: Some(&id),
        before: Some(serde_json::json!({"has_credentials": before.has_credentials})),
    };
    st.audited(
        change,
        || {
            st.store
                .set_device_login(&id, &b.username, &Password::new(b.password))
        },
        |_| {
            Some(
                serde_json::json!({"has_credentials": true, "username": b.username, "password": "***"}),
            )
        },
    )?;
    super::logins::probe_ids(&st, [&id]);
    Ok(Json(serde_json::json!({"id": id, "has_credentials": true})).into_response())
}

pub(super) async fn clear_credentials(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    let before = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device", &id))?;
    let change = Change {
        ctx: &ctx,
        action: "device.credentials.clear",
        target: Some(&id),
        before: Some(serde_json::json!({"has_credentials": before.has_credentials})),
    };
    st.audited(
        change,
        || st.store.clear_device_login(&id),
        |_| Some(serde_json::json!({"has_credentials": false})),
    )?;
    super::logins::probe_ids(&st, [&id]);
    Ok(Json(serde_json::json!({"id": id, "has_credentials": false})).into_response())
}

pub(super) async fn list_groups(State(st): State<AppState>) -> ApiResult {
    let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
    let v: Vec<serde_json::Value> = st
        .store
        .credential_groups()?
        .into_iter()
        .map(|g| {
            serde_json::json!({"name": g.name, "username": g.username,
                "subnets": j(&g.subnets), "mac_prefixes": j(&g.mac_prefixes), "priority": g.priority})
        })
        .collect();
    Ok(Json(v).into_response())
}

/// `PUT /api/v1/credential-groups/{name}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    /// Login name.
    pub username: String,
    /// Password (never returned).
    pub password: String,
    /// IPv4 subnets the group applies to, e.g. `10.1.0.0/16`.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// MAC prefixes, e.g. `44:19:b6`.
    #[serde(default)]
    pub mac_prefixes: Vec<String>,
    /// Higher wins, -1000..=1000. Two groups of the same priority may not
    /// overlap (409 naming the other group).
    #[serde(default)]
    pub priority: i32,
    /// Allows subnets broader than /16 (default false: refused).
    #[serde(default)]
    pub allow_broad: bool,
}

/// Shortest accepted group password.
pub const MIN_GROUP_PASSWORD: usize = 8;
/// Broadest subnet a group may name without `allow_broad`.
pub const MIN_GROUP_PREFIX: u8 = 16;
impl Validate for GroupBody {
    fn validate(&self) -> Result<(), Error> {
        check_len("username", &self.username, 1, 64)?;
        check_len("password", &self.password, MIN_GROUP_PASSWORD, 128)?;
        if !(-1000..=1000).contains(&self.priority) {
            return Err(Error::invalid(format!(
                "priority must be -1000..=1000, got {}",
                self.priority
            )));
        }
        if self.subnets.len() > 256 || self.mac_prefixes.len() > 256 {
            return Err(Error::invalid("at most 256 subnets and 256 MAC prefixes"));
        }
        for s in &self.subnets {
            let n = s
                .parse::<ipnet::Ipv4Net>()
                .map_err(|e| Error::invalid(format!("subnets: `{s}`: {e}")))?;
            if n.prefix_len() < MIN_GROUP_PREFIX && !self.allow_broad {
                return Err(Error::invalid(format!(
                    "subnets: `{s}` is broader than /{MIN_GROUP_PREFIX}; set allow_broad: true to allow it"
                )));
            }
        }
        for m in &self.mac_prefixes {
            check_len("mac_prefixes[]", m, 2, 17)?;
        }
        Ok(())
    }
}

pub(super) async fn set_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Body(b): Body<GroupBody>,
) -> ApiResult {
    check_len("name", &name, 1, 64)?;
    let nets: Vec<ipnet::Ipv4Net> = b.subnets.iter().filter_map(|s| s.parse().ok()).collect();
    let macs: Vec<String> = b
        .mac_prefixes
        .iter()
        .map(|m| m.to_ascii_lowercase())
        .collect();
    if let Some(other) = st
        .store
        .overlapping_group(&name, &nets, &macs, b.priority)?
    {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "conflict",
            format!(
                "credential group `{other}` has the same priority ({}) and overlapping subnets or MAC prefixes; give one a different priority or narrow its scope",
                b.priority
            ),
        ));
    }
    // Cameras the group reached before and reaches now re-read their login.
    let mut touched = group_scope(&st, &name)?;
    touched.extend(st.store.cameras_in_scope(&nets, &macs)?);
    let change = Change {
        ctx: &ctx,
        action: "credential_group.set",
        target: Some(&name),
        before: None,
    };
    st.audited(
        change,
        || {
            st.store.set_group(
                &name,
                &b.username,
                &Password::new(b.password),
                &nets,
                &macs,
                b.priority,
            )
        },
        |_| Some(serde_json::json!({"username": b.username, "password": "***", "subnets": b.subnets, "mac_prefixes": macs, "priority": b.priority})),
    )?;
    touched.sort();
    touched.dedup();
    super::logins::probe_ids(&st, &touched);
    Ok(Json(serde_json::json!({"name": name})).into_response())
}

/// `DELETE /api/v1/credential-groups/{name}` (audited).
pub(super) async fn delete_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult {
    check_len("name", &name, 1, 64)?;
    let change = Change {
        ctx: &ctx,
        action: "credential_group.delete",
        target: Some(&name),
        before: None,
    };
    let touched = group_scope(&st, &name)?;
    st.audited(change, || st.store.delete_group(&name), |_| None)?;
    super::logins::probe_ids(&st, &touched);
    Ok(Json(serde_json::json!({"name": name, "deleted": true})).into_response())
}

/// The cameras group `name` (if it exists) reaches with its current scope.
fn group_scope(st: &AppState, name: &str) -> Result<Vec<String>, ApiError> {
    let Some(g) = st
        .store
        .credential_groups()?
        .into_iter()
        .find(|g| g.name == name)
    else {
        return Ok(Vec::new());
    };
    let nets: Vec<ipnet::Ipv4Net> = serde_json::from_str::<Vec<String>>(&g.subnets)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let macs: Vec<String> = serde_json::from_str(&g.mac_prefixes).unwrap_or_default();
    Ok(st.store.cameras_in_scope(&nets, &macs)?)
}
