//! Scripted event cameras for paused-time tests, keyed by device address
//! host (`10.0.0.n`, as `cameras::fake` adopts them): clock offset, event
//! service or not, granted time, a pull delay, queued messages, expiry, a
//! password that refuses other logins, subscriptions named by a
//! WS-Addressing reference parameter (Axis) instead of their URL.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_drivers::cred_scope::CredentialScope;
use device_drivers::onvif_client::{Credentials, OnvifError, OnvifErrorKind};
use device_drivers::onvif_events::{
    Notification, PropertyOperation, Pulled, Renewed, Subscription,
};
use device_drivers::soap::SoapFault;
use device_drivers::wsa;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::time::Instant;

use super::{EventIo, EventSession};
use crate::base::clock::Clock;

/// One scripted camera.
#[derive(Clone)]
pub struct Script {
    /// Camera clock − ours.
    pub offset_ms: i64,
    /// Offers the event service.
    pub events: bool,
    /// Time granted per create/renew.
    pub grant: Duration,
    /// Every pull takes this long before answering (a slow camera).
    pub pull_delay: Duration,
    /// Conditions: what holds now.
    pub holding: HashMap<&'static str, bool>,
    /// Changes not yet pulled, per live subscription.
    pub queued: VecDeque<Notification>,
    /// The live subscription number (0 = none).
    pub live: u32,
    /// Subscriptions created so far.
    pub created: u32,
    /// When set, a create with another password is refused (wrong login).
    pub password: Option<&'static str>,
    /// Subscriptions share one address and are told apart by a reference
    /// parameter (`SubscriptionId`), which every call must echo.
    pub by_reference: bool,
    /// Subscriptions live on this port of the camera's host, another
    /// server than its device service (on the default port).
    pub pull_port: Option<u16>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            offset_ms: 0,
            events: true,
            grant: Duration::from_secs(60),
            pull_delay: Duration::ZERO,
            holding: HashMap::new(),
            queued: VecDeque::new(),
            live: 0,
            created: 0,
            password: None,
            by_reference: false,
            pull_port: None,
        }
    }
}

/// Scripted cameras and a log of calls.
pub struct FakeEvents {
    clock: Arc<dyn Clock>,
    cams: Mutex<HashMap<String, Script>>,
    calls: Mutex<Vec<(String, &'static str, Instant)>>,
    /// Pulls in flight now, and the most ever in flight at once.
    inflight: Arc<Mutex<(usize, usize)>>,
}

/// Counts a pull out of flight when it ends, answered or dropped.
struct InFlight(Arc<Mutex<(usize, usize)>>);

impl InFlight {
    fn start(c: &Arc<Mutex<(usize, usize)>>) -> Self {
        let mut g = c.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        g.1 = g.1.max(g.0);
        InFlight(c.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 -= 1;
    }
}

fn note(topic: &str, item: &str, active: bool, op: PropertyOperation) -> Notification {
    Notification {
        topic: topic.into(),
        operation: Some(op),
        utc_time: None,
        source: Vec::new(),
        data: vec![(item.into(), active.to_string())],
    }
}

const TAMPER: (&str, &str) = ("RuleEngine/TamperDetector/Tamper", "IsTamper");

const AXIS_EVENT_NS: &str = "http://www.axis.com/2009/event";

/// Whether `sub` names the live subscription of `s`: by its URL, or (a
/// `by_reference` camera) by the reference parameter it must echo.
fn names_live(s: &Script, sub: &Subscription) -> bool {
    let n = if s.by_reference {
        sub.reference_parameters
            .iter()
            .find(|p| p.name == "SubscriptionId" && p.namespace.as_deref() == Some(AXIS_EVENT_NS))
            .and_then(|p| p.text().parse::<u32>().ok())
    } else {
        sub.address
            .rsplit_once("/pullpoint/")
            .and_then(|(_, n)| n.parse::<u32>().ok())
    };
    s.live > 0 && n == Some(s.live)
}

fn fault(host: &str, op: &'static str) -> OnvifError {
    OnvifError {
        peer: host.into(),
        operation: op,
        kind: OnvifErrorKind::Fault(SoapFault {
            code: "env:Receiver".into(),
            subcodes: vec!["ter:InvalidArgVal".into()],
            reason: "no such subscription".into(),
        }),
    }
}

impl FakeEvents {
    /// No cameras yet; `clock` is ours (camera clocks add their offset).
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            cams: Mutex::default(),
            calls: Mutex::default(),
            inflight: Arc::default(),
        })
    }

    /// The most pulls that were in flight at once, across cameras.
    pub fn max_inflight(&self) -> usize {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// Scripts camera `n`.
    pub fn set(&self, n: u8, s: Script) {
        self.lock().insert(crate::cameras::fake::host(n), s);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Script>> {
        self.cams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Camera `n`'s lens covered (or uncovered): a change queued.
    pub fn tamper(&self, n: u8, active: bool) {
        let mut m = self.lock();
        let s = m.get_mut(&crate::cameras::fake::host(n)).expect("scripted");
        s.holding.insert("tamper", active);
        if s.live > 0 {
            s.queued
                .push_back(note(TAMPER.0, TAMPER.1, active, PropertyOperation::Changed));
        }
    }

    /// Queues `n` notifications of an unknown topic on camera `cam`.
    pub fn junk(&self, cam: u8, n: usize) {
        let mut m = self.lock();
        let s = m
            .get_mut(&crate::cameras::fake::host(cam))
            .expect("scripted");
        for _ in 0..n {
            s.queued
                .push_back(note("Vendor/Thing", "x", true, PropertyOperation::Changed));
        }
    }

    /// Camera `n` forgets its subscription (expiry).
    pub fn expire(&self, n: u8) {
        let mut m = self.lock();
        let s = m.get_mut(&crate::cameras::fake::host(n)).expect("scripted");
        s.live = 0;
        s.queued.clear();
    }

    /// Subscriptions camera `n` granted so far.
    pub fn created(&self, n: u8) -> u32 {
        self.lock()
            .get(&crate::cameras::fake::host(n))
            .map_or(0, |s| s.created)
    }

    /// When camera `n` got each `op`.
    pub fn calls(&self, n: u8, op: &str) -> Vec<Instant> {
        let h = crate::cameras::fake::host(n);
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(host, o, _)| *host == h && *o == op)
            .map(|(_, _, t)| *t)
            .collect()
    }

    fn log(&self, host: &str, op: &'static str) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push((
            host.into(),
            op,
            Instant::now(),
        ));
    }

    fn camera_now(&self, s: &Script) -> time::OffsetDateTime {
        self.clock.now_utc() + time::Duration::milliseconds(s.offset_ms)
    }
}

struct Session {
    fake: Arc<FakeEvents>,
    host: String,
    password: Option<String>,
}

impl EventIo for Arc<FakeEvents> {
    fn session(
        &self,
        xaddr: &str,
        creds: Option<Credentials>,
        _scope: CredentialScope,
    ) -> Result<Box<dyn EventSession>, OnvifError> {
        let host = url::Url::parse(xaddr)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        Ok(Box::new(Session {
            fake: self.clone(),
            host,
            password: creds.map(|c| c.password.expose().to_string()),
        }))
    }
}

impl Session {
    fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        let mut m = self.fake.lock();
        f(m.get_mut(&self.host).expect("camera not scripted"))
    }
}

impl EventSession for Session {
    fn clock_offset_ms(&self) -> BoxFuture<'_, Result<i64, OnvifError>> {
        self.fake.log(&self.host, "clock");
        let o = self.with(|s| s.offset_ms);
        async move { Ok(o) }.boxed()
    }

    fn events_url(&self) -> BoxFuture<'_, Result<Option<String>, OnvifError>> {
        self.fake.log(&self.host, "services");
        let e = self.with(|s| s.events);
        let url = format!("http://{}/onvif/events", self.host);
        async move { Ok(e.then_some(url)) }.boxed()
    }

    fn create<'a>(
        &'a self,
        _url: &'a str,
        _termination: Duration,
    ) -> BoxFuture<'a, Result<Subscription, OnvifError>> {
        self.fake.log(&self.host, "create");
        let refused = self.with(|s| {
            s.password
                .is_some_and(|p| self.password.as_deref() != Some(p))
        });
        if refused {
            let e = OnvifError {
                peer: self.host.clone(),
                operation: "CreatePullPointSubscription",
                kind: OnvifErrorKind::AuthRejected,
            };
            return async move { Err(e) }.boxed();
        }
        let (now, sub, by_ref, port) = self.with(|s| {
            s.created += 1;
            s.live = s.created;
            let tamper = s.holding.get("tamper").copied().unwrap_or(false);
            s.queued = VecDeque::from([note(
                TAMPER.0,
                TAMPER.1,
                tamper,
                PropertyOperation::Initialized,
            )]);
            (
                self.fake.camera_now(s),
                (s.live, s.grant),
                s.by_reference,
                s.pull_port.map(|p| format!(":{p}")).unwrap_or_default(),
            )
        });
        let (address, reference_parameters) = if by_ref {
            let id = wsa::Element {
                namespace: Some(AXIS_EVENT_NS.into()),
                name: "SubscriptionId".into(),
                attributes: Vec::new(),
                content: vec![wsa::Content::Text(sub.0.to_string())],
            };
            (format!("http://{}/onvif/services", self.host), vec![id])
        } else {
            (
                format!("http://{}{port}/pullpoint/{}", self.host, sub.0),
                Vec::new(),
            )
        };
        async move {
            Ok(Subscription {
                address,
                reference_parameters,
                current_time: Some(now),
                termination_time: Some(now + sub.1),
            })
        }
        .boxed()
    }

    fn pull<'a>(
        &'a self,
        sub: &'a Subscription,
        timeout: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Pulled, OnvifError>> {
        self.fake.log(&self.host, "pull");
        let flight = InFlight::start(&self.fake.inflight);
        async move {
            let _flight = flight;
            let delay = self.with(|s| s.pull_delay);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let deadline = Instant::now() + timeout;
            loop {
                let got = self.with(|s| {
                    if !names_live(s, sub) {
                        return Err(());
                    }
                    let n = (limit as usize).min(s.queued.len());
                    Ok((
                        s.queued.drain(..n).collect::<Vec<_>>(),
                        self.fake.camera_now(s),
                    ))
                });
                let (messages, now) = got.map_err(|()| fault(&self.host, "PullMessages"))?;
                if !messages.is_empty() || Instant::now() >= deadline {
                    return Ok(Pulled {
                        current_time: Some(now),
                        termination_time: None,
                        messages,
                        dropped: 0,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100).min(deadline - Instant::now())).await;
            }
        }
        .boxed()
    }

    fn renew<'a>(
        &'a self,
        sub: &'a Subscription,
        _termination: Duration,
    ) -> BoxFuture<'a, Result<Renewed, OnvifError>> {
        self.fake.log(&self.host, "renew");
        let r = self.with(|s| names_live(s, sub).then(|| (self.fake.camera_now(s), s.grant)));
        let host = self.host.clone();
        async move {
            let (now, grant) = r.ok_or_else(|| fault(&host, "Renew"))?;
            Ok(Renewed {
                current_time: Some(now),
                termination_time: Some(now + grant),
            })
        }
        .boxed()
    }

    fn unsubscribe<'a>(&'a self, _sub: &'a Subscription) -> BoxFuture<'a, Result<(), OnvifError>> {
        self.fake.log(&self.host, "unsubscribe");
        self.with(|s| s.live = 0);
        async move { Ok(()) }.boxed()
    }
}
