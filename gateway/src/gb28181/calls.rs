//! The platform's dialogs with us: SUBSCRIBE (catalog, alarm) and the
//! NOTIFYs of a subscription; INVITE/ACK/BYE/CANCEL into [`Media`].

use std::net::SocketAddr;

use device_drivers::gb28181::dialog::{self, SubKind, Subscription};
use device_drivers::gb28181::manscdp::{self, Charset};
use device_drivers::sip::{Request, Response};

use super::{InviteDone, Svc};
use crate::gb28181::media_api::MediaSource;
use crate::store::Store;

impl Svc {
    pub(super) async fn subscribe(&mut self, i: usize, req: Request, from: SocketAddr) {
        let kind = match manscdp::parse(&req.body) {
            Ok(m) if m.cmd_type == "Catalog" => (SubKind::Catalog, m.sn),
            Ok(m) if m.cmd_type == "Alarm" => (SubKind::Alarm, m.sn),
            _ => {
                self.answer(from, &req, 489, None).await;
                return;
            }
        };
        let call_id = req.headers.get("Call-ID").unwrap_or_default().to_string();
        let now_s = self.now().as_secs();
        let tag = self.tag();
        let subs = &mut self.platforms[i].subs;
        let existing = subs.iter().position(|s| s.call_id == call_id);
        let tag = existing.map_or(tag, |k| subs[k].local_tag.clone());
        let Some(mut sub) = Subscription::from_request(&req, kind.0, kind.1, &tag, now_s) else {
            self.answer(from, &req, 400, None).await;
            return;
        };
        sub.source = Some(from);
        if let Some(k) = existing {
            subs.remove(k);
        }
        let expires = sub.expires;
        let mut resp = Response::to_request(&req, 200, "OK", Some(&tag));
        resp.headers.push("Expires", expires.to_string());
        resp.headers
            .push("Contact", format!("<sip:{}@{}>", self.cfg.id, self.local));
        self.send(from, &resp.to_bytes()).await;
        tracing::info!(platform = %self.platforms[i].name, kind = ?kind.0, expires, "GB/T 28181 subscription");
        if expires > 0 {
            self.platforms[i].subs.push(sub);
            if kind.0 == SubKind::Catalog {
                let cs = self.platforms[i].charset;
                let body = manscdp::catalog_notify(kind.1, &self.cfg.id, &[], cs);
                self.notify(i, self.platforms[i].subs.len() - 1, body).await;
            }
        }
        self.apply(i, Vec::new()).await;
    }

    async fn notify(&mut self, i: usize, k: usize, body: Vec<u8>) {
        let branch = self.platforms[i].reg.branch();
        let now_s = self.now().as_secs();
        let local = self.local;
        let tcp = self.platforms[i].reg.config().tcp;
        let bytes = self.platforms[i].subs[k].notify(
            body,
            manscdp::CONTENT_TYPE,
            local,
            tcp,
            &branch,
            now_s,
        );
        let to = self.platforms[i].subs[k]
            .source
            .unwrap_or(self.platforms[i].addr);
        let sub = &self.platforms[i].subs[k];
        let what = format!("NOTIFY {:?} SN {}", sub.kind, sub.sn);
        self.send_request(i, to, bytes, what).await;
    }

    /// Sends `body_for(sub SN)` to every live subscription of `kind`, dropping expired ones.
    pub(super) async fn notify_all(
        &mut self,
        kind: SubKind,
        body_for: impl Fn(u32, Charset) -> Vec<u8>,
    ) {
        let now_s = self.now().as_secs();
        for i in 0..self.platforms.len() {
            self.platforms[i].subs.retain(|s| s.remaining(now_s) > 0);
            for k in 0..self.platforms[i].subs.len() {
                if self.platforms[i].subs[k].kind == kind {
                    if kind == SubKind::Catalog {
                        crate::gb28181::metrics::counters().catalog("notify", 1);
                    }
                    let body = body_for(self.platforms[i].subs[k].sn, self.platforms[i].charset);
                    self.notify(i, k, body).await;
                }
            }
        }
    }

    pub(super) async fn invite(&mut self, i: usize, req: Request, from: SocketAddr) {
        let call_id = req.headers.get("Call-ID").unwrap_or_default().to_string();
        if self.platforms[i].invites.contains_key(&call_id) {
            return; // A retransmission: the answer is coming.
        }
        let channel = dialog::user_of(&req.uri).unwrap_or_default().to_string();
        let Some(ch) = self.catalog.channels.get(&channel).cloned() else {
            crate::gb28181::metrics::counters().relay_failed("not_found");
            self.answer(from, &req, 404, None).await;
            return;
        };
        let Some(source) = media_source(&self.store, &ch.device_id, &channel) else {
            crate::gb28181::metrics::counters().relay_failed("no_source");
            self.answer(from, &req, 500, None).await;
            return;
        };
        let tag = self.tag();
        let trying = dialog::answer(&req, 100, "Trying", &tag, None, None);
        self.send(from, &trying).await;
        let offer = String::from_utf8_lossy(&req.body).into_owned();
        self.platforms[i]
            .invites
            .insert(call_id.clone(), (req, tag, false));
        let media = self.shared.media.clone();
        let tx = self.invite_tx.clone();
        let local_ip = self.local.ip();
        tokio::spawn(async move {
            let result = media.invite(&call_id, source, &offer, local_ip).await;
            let _ = tx
                .send(InviteDone {
                    platform: i,
                    call_id,
                    from,
                    result,
                })
                .await;
        });
    }

    pub(super) async fn invite_done(&mut self, d: InviteDone) {
        crate::gb28181::metrics::counters().invite_result(&d.result);
        let Some((req, tag, answered)) = self.platforms[d.platform].invites.get_mut(&d.call_id)
        else {
            // Cancelled meanwhile.
            self.shared.media.bye(&d.call_id);
            return;
        };
        *answered = true;
        let (req, tag) = (req.clone(), tag.clone());
        let contact = format!("<sip:{}@{}>", self.cfg.id, self.local);
        // Where the INVITE came from (its Via, with rport), not necessarily
        // the platform's registrar address.
        let to = d.from;
        let b = match d.result {
            Ok(sdp) => dialog::answer(
                &req,
                200,
                "OK",
                &tag,
                Some(&contact),
                Some(("application/sdp", sdp.into_bytes())),
            ),
            Err(e) => {
                tracing::warn!(call_id = %d.call_id, error = %e, "GB/T 28181 INVITE refused");
                self.platforms[d.platform].invites.remove(&d.call_id);
                dialog::answer(
                    &req,
                    e.sip_status(),
                    dialog::reason(e.sip_status()),
                    &tag,
                    None,
                    None,
                )
            }
        };
        self.send(to, &b).await;
    }
}

/// What media needs to pull camera `device_id`: its stream URI and login.
fn media_source(store: &Store, device_id: &str, channel_id: &str) -> Option<MediaSource> {
    let t = crate::cameras::poller::target(store, device_id, false, &[])?;
    Some(MediaSource {
        device_id: device_id.to_string(),
        channel_id: channel_id.to_string(),
        rtsp_url: t.describe_uri?,
        username: t.creds.as_ref().map(|c| c.username.clone()),
        password: t.creds.map(|c| c.password.expose().to_string()),
    })
}
