//! [`RealEventIo`]: the event calls over `device_drivers::onvif_client`,
//! one HTTP connection pool for every camera. The client's whole-call
//! timeout is the pull timeout plus the ordinary call timeout, so a
//! long-poll PullMessages is not cut short; answers are capped at
//! `onvif_events::MAX_EVENT_BODY`. A subscription address on another host
//! than the camera's is refused before any login goes there. Every event
//! call is WS-Addressed (its action, `To`, a MessageID, ReplyTo, and on a
//! subscription its reference parameters echoed): `docs/events.md`.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::cred_scope::{CredentialScope, Withheld};
use device_drivers::onvif_client::{
    Addressed, ClientOptions, Credentials, OnvifClient, OnvifError, OnvifErrorKind,
};
use device_drivers::onvif_events::{self as ev, Pulled, Renewed, Subscription};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{EventIo, EventSession};
use crate::base::clock::{Clock, OnvifClock};

/// Event sessions over the network.
pub struct RealEventIo {
    http: reqwest::Client,
    opts: ClientOptions,
    clock: Arc<dyn Clock>,
}

impl RealEventIo {
    /// Calls time out after `call_timeout`, pulls after `pull_timeout` more.
    pub fn new(
        call_timeout: Duration,
        pull_timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let opts = ClientOptions {
            timeout: call_timeout + pull_timeout,
            connect_timeout: call_timeout.min(Duration::from_secs(3)),
            max_body: ev::MAX_EVENT_BODY,
            // Pulls go in turns, seconds apart per camera: no idle
            // connection is kept. Kept for 1 s (only the call that follows
            // at once reused it), the idle ones about doubled the open
            // connections, each with hyper's read and write buffers
            // (BENCHMARKS.md, "Footprint").
            pool_idle: Duration::ZERO,
        };
        let http = device_drivers::onvif_client::http_client(&opts)?;
        Ok(Self { http, opts, clock })
    }
}

impl EventIo for RealEventIo {
    fn session(
        &self,
        xaddr: &str,
        creds: Option<Credentials>,
        scope: CredentialScope,
    ) -> Result<Box<dyn EventSession>, OnvifError> {
        let client = OnvifClient::with_http(self.http.clone(), xaddr, creds, self.opts)?
            .with_clock(Arc::new(OnvifClock(self.clock.clone())));
        Ok(Box::new(RealSession { client, scope }))
    }
}

/// A call on subscription `sub`: `action`, its reference parameters echoed.
fn addressed<'a>(action: &'a str, sub: &'a Subscription) -> Addressed<'a> {
    Addressed {
        action,
        reference_parameters: &sub.reference_parameters,
    }
}

struct RealSession {
    client: OnvifClient,
    scope: CredentialScope,
}

impl RealSession {
    fn check(&self, op: &'static str, url: &str) -> Result<(), OnvifError> {
        let ok = url::Url::parse(url)
            .ok()
            .is_some_and(|u| self.scope.check_host(&u).is_ok());
        if ok {
            Ok(())
        } else {
            Err(OnvifError {
                peer: self.client.peer().to_string(),
                operation: op,
                kind: OnvifErrorKind::CredentialsWithheld(Withheld::ForeignHost),
            })
        }
    }
}

impl EventSession for RealSession {
    fn clock_offset_ms(&self) -> BoxFuture<'_, Result<i64, OnvifError>> {
        async move { Ok(self.client.measure_clock().await?.offset_ms) }.boxed()
    }

    fn events_url(&self) -> BoxFuture<'_, Result<Option<String>, OnvifError>> {
        async move { Ok(self.client.services().await?.events().map(str::to_string)) }.boxed()
    }

    fn create<'a>(
        &'a self,
        url: &'a str,
        termination: Duration,
    ) -> BoxFuture<'a, Result<Subscription, OnvifError>> {
        async move {
            self.check("CreatePullPointSubscription", url)?;
            let addressed = Addressed {
                action: ev::ACTION_CREATE_PULL_POINT,
                reference_parameters: &[],
            };
            let s = self
                .client
                .call_addressed(
                    "CreatePullPointSubscription",
                    url,
                    addressed,
                    &ev::create_pull_point_subscription(termination),
                    ev::parse_create_pull_point_subscription,
                )
                .await?;
            self.check("CreatePullPointSubscription", &s.address)?;
            Ok(s)
        }
        .boxed()
    }

    fn pull<'a>(
        &'a self,
        sub: &'a Subscription,
        timeout: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Pulled, OnvifError>> {
        async move {
            self.check("PullMessages", &sub.address)?;
            self.client
                .call_addressed(
                    "PullMessages",
                    &sub.address,
                    addressed(ev::ACTION_PULL_MESSAGES, sub),
                    &ev::pull_messages(timeout, limit),
                    ev::parse_pull_messages,
                )
                .await
        }
        .boxed()
    }

    fn renew<'a>(
        &'a self,
        sub: &'a Subscription,
        termination: Duration,
    ) -> BoxFuture<'a, Result<Renewed, OnvifError>> {
        async move {
            self.check("Renew", &sub.address)?;
            self.client
                .call_addressed(
                    "Renew",
                    &sub.address,
                    addressed(ev::ACTION_RENEW, sub),
                    &ev::renew(termination),
                    ev::parse_renew,
                )
                .await
        }
        .boxed()
    }

    fn unsubscribe<'a>(&'a self, sub: &'a Subscription) -> BoxFuture<'a, Result<(), OnvifError>> {
        async move {
            self.check("Unsubscribe", &sub.address)?;
            self.client
                .call_addressed(
                    "Unsubscribe",
                    &sub.address,
                    addressed(ev::ACTION_UNSUBSCRIBE, sub),
                    &ev::unsubscribe(),
                    ev::parse_unsubscribe,
                )
                .await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests;
