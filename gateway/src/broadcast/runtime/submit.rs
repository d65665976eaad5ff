//! A [`Spec`] submitted: its targets resolved to horns (quiet hours,
//! unusable horns), each horn's volume and driver URI, the records
//! created, the programme rendered, and the request handed to the engine.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use device_drivers::speaker::SpeakerUri;
use serde_json::json;

use super::spec::{Spec, Submitted};
use super::{Cmd, LiveFeed, Pending, Runtime, read, rfc3339};
use crate::base::error::{Error, Result};
use crate::broadcast::engine::Request;
use crate::broadcast::render::{Rendered, render};
use crate::broadcast::{Ms, Priority};
use tgw_core::schedule::HornInfo;

/// The horns of a submitted broadcast, sorted out.
struct Resolved {
    /// Every horn the targets name.
    all: BTreeSet<String>,
    /// Those in quiet hours.
    quiet: BTreeSet<String>,
    /// Those it plays on.
    horns: Vec<String>,
    /// Their driver URIs.
    uris: HashMap<String, SpeakerUri>,
    /// Their gain volumes.
    volumes: HashMap<String, u8>,
    /// Those whose URI could not be made, and why.
    unusable: Vec<(String, String)>,
}

impl Runtime {
    pub(super) fn uri_of(
        &self,
        s: &crate::speakers::Speaker,
        volume: u8,
    ) -> Result<SpeakerUri, String> {
        if s.kind == crate::speakers::DriverKind::Cloud {
            let Some((broker, serve)) = self.settings.cloud else {
                return Err(format!(
                    "speaker `{}`: cloud horns need [broadcast] cloud_serve and an [mqtt] broker given by IP address",
                    s.id
                ));
            };
            return format!(
                "cloud://{}@{broker}?serve={serve}&volume={volume}",
                s.address
            )
            .parse()
            .map_err(|e| format!("speaker `{}`: {e}", s.id));
        }
        let login = self.speakers.login_for(&s.id).map_err(|e| e.to_string())?;
        let mut uri =
            crate::speakers::uri::speaker_uri(s, login.as_ref()).map_err(|e| e.to_string())?;
        if let SpeakerUri::Rtp {
            dest, multicast_if, ..
        } = &mut uri
            && dest.ip().is_multicast()
        {
            *multicast_if = self.settings.multicast_if;
        }
        Ok(uri)
    }

    pub(super) fn submit(&mut self, spec: Spec, now: Ms) -> Result<Submitted> {
        self.submit_with(spec, None, now)
    }

    /// [`Runtime::submit`], or with `live` (its feed and who asked) a live
    /// page: no rendering, one segment, refused on horns another live
    /// page holds.
    pub(super) fn submit_with(
        &mut self,
        mut spec: Spec,
        live: Option<(LiveFeed, String)>,
        now: Ms,
    ) -> Result<Submitted> {
        if spec.targets.is_empty() {
            return Err(Error::invalid("the broadcast names no targets"));
        }
        let id = spec
            .id
            .clone()
            .unwrap_or_else(|| format!("b-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        if self.pending.contains_key(&id) {
            return Err(Error::conflict(format!(
                "broadcast `{id}` is already running"
            )));
        }
        spec.id = Some(id.clone());
        if spec.priority == Priority::Emergency {
            // Forced on every horn, whatever the horn's own volume.
            spec.recipe.volume = Some(spec.recipe.volume.unwrap_or(self.settings.emergency_volume));
        }
        let Resolved {
            all,
            quiet,
            horns,
            uris,
            volumes,
            unusable,
        } = self.resolve(&spec, now)?;
        if live.is_some() {
            self.live_horns.check(&horns)?;
        }
        let targets: Vec<String> = spec.targets.iter().map(|t| t.to_string()).collect();
        let detail = json!({ "start_at": spec.start_at.map(rfc3339), "volume": spec.recipe.volume, "repeat": spec.recipe.repeat });
        self.records
            .create(
                &id,
                &spec.origin,
                &spec.title,
                spec.priority.as_str(),
                &targets,
                all.len(),
                Some(&detail),
            )
            .map_err(|e| Error::internal(format!("recording the broadcast: {e}")))?;
        for h in &quiet {
            self.report(&id, h, "dropped", Some(json!({ "why": "quiet hours" })));
        }
        for (h, e) in &unusable {
            self.report(&id, h, "failed", Some(json!({ "why": e })));
        }
        for h in &horns {
            self.report(&id, h, "queued", None);
        }
        self.publish_broadcast(&id);
        let submitted = Submitted {
            id: id.clone(),
            horns: horns.len(),
            quiet: quiet.len(),
        };
        if horns.is_empty() {
            self.finish_broadcast(&id, "done");
            return Ok(submitted);
        }
        tracing::info!(broadcast = %id, origin = %spec.origin, priority = %spec.priority, horns = horns.len(), quiet = quiet.len(), "broadcast submitted");
        let pending = Pending {
            spec,
            horns,
            uris,
            volumes,
            rendered: None,
            live: None,
        };
        match live {
            Some((feed, who)) => {
                self.live_horns.hold(&pending.horns, &id, &who);
                self.pending.insert(
                    id.clone(),
                    Pending {
                        live: Some(feed),
                        ..pending
                    },
                );
                self.hand_to_engine(&id, 1, now);
            }
            None => self.start_render(id, pending, now),
        }
        Ok(submitted)
    }

    /// The horns `spec` goes to: every horn its targets name, less those in
    /// quiet hours at its start (never for an emergency) and those whose
    /// driver URI cannot be made; each with its gain volume.
    fn resolve(&self, spec: &Spec, now: Ms) -> Result<Resolved> {
        let tt = read(&self.timetable);
        let inventory: HashMap<String, crate::speakers::Speaker> = self
            .speakers
            .list()
            .map_err(|e| Error::internal(format!("reading the speaker inventory: {e}")))?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let infos: Vec<HornInfo> = inventory.values().map(|s| s.horn_info()).collect();
        let all: BTreeSet<String> = tt.resolve(&spec.targets, &infos);
        if all.is_empty() {
            return Err(Error::invalid(format!(
                "no horns match {}",
                spec.targets
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let at = spec.start_at.unwrap_or(now).max(now);
        let quiet: BTreeSet<String> = if spec.priority == Priority::Emergency {
            BTreeSet::new()
        } else {
            let local = jiff::Timestamp::from_millisecond(at)
                .map(|t| t.to_zoned(self.settings.tz.clone()).datetime())
                .map_err(|e| Error::invalid(e.to_string()))?;
            tt.quiet_horns(local, &infos)
                .intersection(&all)
                .cloned()
                .collect()
        };
        let mut r = Resolved {
            all: BTreeSet::new(),
            quiet: BTreeSet::new(),
            horns: Vec::new(),
            uris: HashMap::new(),
            volumes: HashMap::new(),
            unusable: Vec::new(),
        };
        for h in all.iter().filter(|h| !quiet.contains(*h)) {
            let Some(s) = inventory.get(h) else { continue };
            let volume = spec
                .recipe
                .volume
                .or(s.volume)
                .unwrap_or(self.settings.default_volume);
            match self.uri_of(s, volume) {
                Ok(u) => {
                    // Cloud horns set their volume themselves (in the play
                    // command); the others get it as gain.
                    let gain = if matches!(u, SpeakerUri::Cloud { .. }) {
                        100
                    } else {
                        volume
                    };
                    r.volumes.insert(h.clone(), gain);
                    r.uris.insert(h.clone(), u);
                    r.horns.push(h.clone());
                }
                Err(e) => r.unusable.push((h.clone(), e)),
            }
        }
        r.all = all;
        r.quiet = quiet;
        Ok(r)
    }

    /// Renders the programme of `pending` (inline on paused-time tests, on
    /// a blocking thread otherwise); [`Cmd::Rendered`] hands it on.
    fn start_render(&mut self, id: String, pending: Pending, now: Ms) {
        let recipe = pending.spec.recipe.clone();
        let assets = self.assets.clone();
        if self.settings.inline_render {
            let res = render(&recipe, &assets)
                .map(Arc::new)
                .map_err(|e| Error::internal(format!("{e:#}")));
            self.pending.insert(id.clone(), pending);
            self.rendered(&id, res, now);
            return;
        }
        let tx = self.tx.clone();
        let rid = id.clone();
        tokio::spawn(async move {
            let res = tokio::task::spawn_blocking(move || render(&recipe, &assets))
                .await
                .map_err(|e| Error::internal(format!("rendering failed: {e}")))
                .and_then(|r| {
                    r.map(Arc::new)
                        .map_err(|e| Error::internal(format!("{e:#}")))
                });
            let _ = tx.send(Cmd::Rendered(rid, res)).await;
        });
        self.pending.insert(id, pending);
    }

    pub(super) fn rendered(&mut self, id: &str, res: Result<Arc<Rendered>>, now: Ms) {
        let Some(p) = self.pending.get_mut(id) else {
            return;
        };
        match res {
            Err(e) => {
                tracing::warn!(broadcast = %id, error = %e, "broadcast audio could not be made");
                let horns = p.horns.clone();
                self.pending.remove(id);
                for h in &horns {
                    self.report(id, h, "failed", Some(json!({ "why": e.to_string() })));
                }
                self.finish_broadcast(id, "failed");
            }
            Ok(r) => {
                let segments = r.segments.len() as u32;
                p.rendered = Some(r);
                self.hand_to_engine(id, segments, now);
            }
        }
    }

    /// Hands a pending broadcast (rendered, or live) to the engine.
    fn hand_to_engine(&mut self, id: &str, segments: u32, now: Ms) {
        let Some(p) = self.pending.get(id) else {
            return;
        };
        let start_at = p.spec.start_at.unwrap_or(now).max(now);
        let latest_start = p.spec.latest_start.or_else(|| {
            (p.spec.priority != Priority::Emergency)
                .then(|| start_at + self.settings.queue_window.as_millis() as Ms)
        });
        let req = Request {
            id: id.to_string(),
            priority: p.spec.priority,
            horns: p.horns.clone(),
            start_at,
            latest_start,
            on_preempt: p.spec.on_preempt,
            segments,
        };
        match self.engine.submit(req, now) {
            Ok(acts) => self.apply(acts),
            Err(e) => {
                tracing::warn!(broadcast = %id, error = %e, "engine refused a broadcast");
                let horns = self.pending.remove(id).map(|p| p.horns).unwrap_or_default();
                self.live_horns.release(id);
                for h in &horns {
                    self.report(id, h, "failed", Some(json!({ "why": e.to_string() })));
                }
                self.finish_broadcast(id, "failed");
            }
        }
    }
}
