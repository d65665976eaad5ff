//! The discovery inbox: devices waiting for adoption, adopt (cameras and
//! speakers) and ignore.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::etag::json_list;
use super::{
    ApiError, ApiResult, AppState, AssignBody, Body, Ctx, Paging, Q, Validate, check_ids,
    check_len, device_brief,
};
use crate::base::error::Error;
use crate::store::DeviceState;
use crate::store::lists::DeviceFilter;
use crate::store::secrets::Password;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}
impl Validate for PageQuery {
    fn validate(&self) -> Result<(), Error> {
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
        .check()
    }
}

pub(super) async fn inbox(
    State(st): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<PageQuery>,
) -> ApiResult {
    let filter = DeviceFilter {
        state: Some(DeviceState::Discovered),
        ..DeviceFilter::default()
    };
    let (v, total) = st
        .store
        .device_page(&filter, super::cameras::sql_page(q.page, q.per_page))?;
    Ok(json_list(&headers, &v, total))
}

/// `POST /api/v1/inbox/adopt`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptBody {
    /// Devices to adopt (1-1000).
    pub ids: Vec<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Optional login to set on every adopted device (for a speaker: the
    /// horn's login in the speaker inventory).
    pub username: Option<String>,
    /// Its password (write-only).
    pub password: Option<String>,
    /// Speakers only: broadcast zone of the inventory entry.
    #[serde(default)]
    pub zone: Option<String>,
    /// Speakers only: driver kind (`rtp`, `rtp-multicast`, `sip`, `axis`,
    /// `cloud`) instead of the one discovery inferred.
    #[serde(default)]
    pub driver: Option<String>,
    /// Speakers only: driver address instead of the one discovery inferred
    /// (same forms as the speaker CSV `address` column).
    #[serde(default)]
    pub address: Option<String>,
}
impl Validate for AdoptBody {
    fn validate(&self) -> Result<(), Error> {
        check_ids(&self.ids)?;
        AssignBody {
            village: self.village.clone(),
            grid: self.grid.clone(),
        }
        .validate()?;
        if let Some(z) = &self.zone {
            crate::config::Ident::parse(z).map_err(|e| Error::invalid(format!("zone: {e}")))?;
        }
        if let Some(d) = &self.driver {
            crate::speakers::DriverKind::parse(d)
                .map_err(|e| Error::invalid(format!("driver: {e}")))?;
        }
        if let Some(a) = &self.address {
            check_len("address", a, 1, 256)?;
        }
        if self.ids.len() > 1 && self.address.is_some() {
            return Err(Error::invalid("address applies to one speaker at a time"));
        }
        match (&self.username, &self.password) {
            (None, None) => Ok(()),
            (Some(u), Some(p)) => {
                check_len("username", u, 1, 64)?;
                check_len("password", p, 1, 128)
            }
            _ => Err(Error::invalid("username and password go together")),
        }
    }
}

/// `POST /api/v1/inbox/ignore`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdsBody {
    /// Device ids (1-1000).
    pub ids: Vec<String>,
}
impl Validate for IdsBody {
    fn validate(&self) -> Result<(), Error> {
        check_ids(&self.ids)
    }
}

pub(super) async fn adopt_many(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<AdoptBody>,
) -> ApiResult {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for id in &b.ids {
        let Some(before) = st.store.device(id)? else {
            errors.push(serde_json::json!({"id": id, "code": "not_found", "message": format!("no device `{id}`")}));
            continue;
        };
        let is_speaker = before.kind == "speaker";
        let mut speaker = None;
        let r = if is_speaker {
            adopt_speaker(&st, id, &b).map(|s| speaker = Some(s))
        } else if b.zone.is_some() || b.driver.is_some() || b.address.is_some() {
            Err(crate::store::StoreError::Invalid(format!(
                "`{id}` is a {}: zone, driver and address apply to speakers",
                before.kind
            )))
        } else {
            st.store
                .adopt(id, b.village.as_deref(), b.grid.as_deref())
                .and_then(|()| match (&b.username, &b.password) {
                    (Some(u), Some(p)) => {
                        st.store.set_device_login(id, u, &Password::new(p.clone()))
                    }
                    _ => Ok(()),
                })
        };
        let after = st.store.device(id)?;
        let mut after_j = after.as_ref().map(device_brief);
        if let (Some(a), Some(u)) = (after_j.as_mut(), &b.username) {
            a["username"] = serde_json::json!(u);
            a["password"] = serde_json::json!("***");
        }
        if let (Some(a), Some(s)) = (after_j.as_mut(), &speaker) {
            a["speaker"] =
                serde_json::json!({"kind": s.kind, "address": s.address, "zone": s.zone});
        }
        match r {
            Ok(()) => {
                st.audit(
                    &ctx,
                    "device.adopt",
                    Some(id),
                    Some(device_brief(&before)),
                    after_j,
                    "ok",
                );
                if !is_speaker && let Some(tx) = &st.probe_tx {
                    let _ = tx.try_send(id.clone());
                }
                done.push(id.clone());
            }
            Err(e) => {
                let e = ApiError::from(e);
                st.audit(
                    &ctx,
                    "device.adopt",
                    Some(id),
                    Some(device_brief(&before)),
                    None,
                    e.code,
                );
                errors.push(serde_json::json!({"id": id, "code": e.code, "message": e.message}));
            }
        }
    }
    let status = if done.is_empty() && !errors.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::json!({"adopted": done, "errors": errors})),
    )
        .into_response())
}

/// Adopts one discovered speaker into the speaker inventory (see
/// [`crate::speakers::Speakers::adopt_discovered`]); the body was validated.
fn adopt_speaker(
    st: &AppState,
    id: &str,
    b: &AdoptBody,
) -> Result<crate::speakers::Speaker, crate::store::StoreError> {
    use crate::store::StoreError;
    let inv = crate::speakers::Speakers::open(&st.store)
        .map_err(|e| StoreError::Invalid(format!("speaker inventory: {e:#}")))?;
    let a = crate::speakers::AdoptSpeaker {
        village: b.village.clone(),
        grid: b.grid.clone(),
        zone: b
            .zone
            .as_deref()
            .map(crate::config::Ident::parse)
            .transpose()
            .map_err(|e| StoreError::Invalid(e.to_string()))?,
        driver: b
            .driver
            .as_deref()
            .map(crate::speakers::DriverKind::parse)
            .transpose()
            .map_err(|e| StoreError::Invalid(e.to_string()))?,
        address: b.address.clone(),
        login: match (&b.username, &b.password) {
            (Some(u), Some(p)) => Some((u.clone(), Password::new(p.clone()))),
            _ => None,
        },
    };
    inv.adopt_discovered(id, &a)
}

pub(super) async fn ignore_many(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<IdsBody>,
) -> ApiResult {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for id in &b.ids {
        let before = st.store.device(id)?;
        match st.store.ignore(id) {
            Ok(()) => {
                st.audit(
                    &ctx,
                    "device.ignore",
                    Some(id),
                    before.as_ref().map(device_brief),
                    Some(serde_json::json!({"state": "ignored"})),
                    "ok",
                );
                done.push(id.clone());
            }
            Err(e) => {
                let e = ApiError::from(e);
                errors.push(serde_json::json!({"id": id, "code": e.code, "message": e.message}));
            }
        }
    }
    Ok(Json(serde_json::json!({"ignored": done, "errors": errors})).into_response())
}
