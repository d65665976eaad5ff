//! [`RealEventIo`]: the event calls over `device_drivers::onvif_client`,
//! one HTTP connection pool for every camera. The client's whole-call
//! timeout is the pull timeout plus the ordinary call timeout, so a
//! long-poll PullMessages is not cut short; answers are capped at
//! `onvif_events::MAX_EVENT_BODY`. A subscription address on another host
//! than the camera's is refused before any login goes there.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::cred_scope::{CredentialScope, Withheld};
use device_drivers::onvif_client::{
    ClientOptions, Credentials, OnvifClient, OnvifError, OnvifErrorKind,
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
            // Pulls go in turns, seconds apart per camera: an idle
            // connection is kept only for the call that follows at once
            // (create → first pull, a pull that brought messages → the
            // next), not one idle socket with its buffers per camera.
            pool_idle: Duration::from_secs(1),
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
            let s = self
                .client
                .call_op(
                    "CreatePullPointSubscription",
                    url,
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
        sub: &'a str,
        timeout: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Pulled, OnvifError>> {
        async move {
            self.check("PullMessages", sub)?;
            self.client
                .call_op(
                    "PullMessages",
                    sub,
                    &ev::pull_messages(timeout, limit),
                    ev::parse_pull_messages,
                )
                .await
        }
        .boxed()
    }

    fn renew<'a>(
        &'a self,
        sub: &'a str,
        termination: Duration,
    ) -> BoxFuture<'a, Result<Renewed, OnvifError>> {
        async move {
            self.check("Renew", sub)?;
            self.client
                .call_op("Renew", sub, &ev::renew(termination), ev::parse_renew)
                .await
        }
        .boxed()
    }

    fn unsubscribe<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<(), OnvifError>> {
        async move {
            self.check("Unsubscribe", sub)?;
            self.client
                .call_op(
                    "Unsubscribe",
                    sub,
                    &ev::unsubscribe(),
                    ev::parse_unsubscribe,
                )
                .await
        }
        .boxed()
    }
}
