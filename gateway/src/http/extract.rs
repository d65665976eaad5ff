//! Request extractors and checks: [`Body`] (JSON, capped, unknown fields
//! refused, validated), [`Q`] (query), [`Ctx`] (who and from where),
//! [`ClientIp`], the [`Validate`] trait and the shared range checks.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{ApiError, BODY_LIMIT};
use crate::auth::Principal;
use crate::base::error::Error;

/// A JSON body: `application/json`, at most [`BODY_LIMIT`] bytes, unknown
/// fields refused, errors as [`ApiError`] naming the field.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Validate, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!("request body over {BODY_LIMIT} bytes"),
                    )
                } else {
                    ApiError::bad(format!("cannot read body: {e}"))
                }
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let v: T = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            };
            ApiError::new(StatusCode::BAD_REQUEST, "malformed", msg)
        })?;
        v.validate()?;
        Ok(Body(v))
    }
}

/// Range and shape checks beyond the JSON types.
pub trait Validate {
    /// An [`Error`] of kind `invalid` (400 `invalid`) naming the field.
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// Query parameters with JSON errors (unknown parameters refused).
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Validate, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let v: T = serde_urlencoded_from(q).map_err(|e| e.context("query"))?;
        v.validate()?;
        Ok(Q(v))
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(q: &str) -> Result<T, Error> {
    // axum's Query uses serde_urlencoded; go through it for identical parsing.
    let uri: axum::http::Uri = format!("/?{q}")
        .parse()
        .map_err(|e| Error::invalid(format!("{e}")))?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| Error::invalid(e.body_text()))
}

/// The caller: who, from where.
pub struct Ctx {
    /// Authenticated principal.
    pub who: Principal,
    /// Client address (text).
    pub source: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let who = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in first")
            })?;
        Ok(Ctx {
            who,
            source: client_ip(parts.extensions.get::<ConnectInfo<SocketAddr>>()).to_string(),
        })
    }
}

/// The client's address (unspecified when not served with connect info).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientIp(client_ip(
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
        )))
    }
}

fn client_ip(ci: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    ci.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Paging {
    pub(super) page: Option<u32>,
    pub(super) per_page: Option<u32>,
}

impl Paging {
    pub(super) fn check(&self) -> Result<(), Error> {
        if let Some(p) = self.page
            && !(1..=10_000).contains(&p)
        {
            return Err(Error::invalid(format!("page must be 1-10000, got {p}")));
        }
        if let Some(p) = self.per_page
            && !(1..=1000).contains(&p)
        {
            return Err(Error::invalid(format!("per_page must be 1-1000, got {p}")));
        }
        Ok(())
    }
}

pub(super) fn limit(v: Option<u32>, default: u32, name: &str) -> Result<usize, Error> {
    match v {
        None => Ok(default as usize),
        Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
        Some(n) => Err(Error::invalid(format!("{name} must be 1-1000, got {n}"))),
    }
}

pub(super) fn check_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), Error> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(Error::invalid(format!(
            "{field} must be {min}-{max} characters, got {n}"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// Multi-line text (announcement text): tab, line feed and carriage return
/// are allowed, every other control character (C0, DEL, C1) is refused.
pub(super) fn check_multiline(field: &str, v: &str) -> Result<(), Error> {
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters other than tab and line breaks"
        )));
    }
    Ok(())
}

pub(super) fn check_ids(ids: &[String]) -> Result<(), Error> {
    if ids.is_empty() || ids.len() > 1000 {
        return Err(Error::invalid(format!(
            "ids must list 1-1000 devices, got {}",
            ids.len()
        )));
    }
    for id in ids {
        check_len("ids[]", id, 1, 100)?;
    }
    Ok(())
}
