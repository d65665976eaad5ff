//! The centre's commands, carried out: the [`CommandHandler`] trait the
//! session calls, the reply bodies, and the daemon's handlers, one file per
//! [`Command`] behind one `match` ([`dispatch`]). Parsing is
//! `tgw_core::uplink::commands`' (once, into the typed [`Command`]); reply
//! codes are [`ReplyCode`]'s.
//!
//! | module | owns |
//! |---|---|
//! | [`rediscover`] | `rediscover`: wake the discovery loop |
//! | [`probe`] | `probe`: queue an inventory re-fetch and a health check of one camera |
//! | [`reload`] | `reload`: wake the configuration reloader |
//! | [`emergency`] | `emergency`: hand the signed envelope's bytes to the broadcast runtime |

pub mod emergency;
pub mod probe;
pub mod rediscover;
pub mod reload;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::broadcast::runtime::Broadcasts;
use crate::store::Store;

pub use tgw_core::uplink::commands::{
    CameraId, Command, CommandError, METHODS, Method, ReplyCode, Request, error_reply,
    parse_command, valid_request_id,
};

/// What a command handler answers.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandReply {
    /// Accepted; the work goes on in the background (e.g. a rediscovery round).
    Accepted(Value),
    /// Refused, with a machine-readable code and a reason.
    Rejected {
        /// e.g. `unknown_camera`, `busy` (a [`ReplyCode`], or a code of the
        /// signed-command verifier).
        code: String,
        /// Human-readable reason.
        message: String,
    },
    /// Done; the result is in the reply.
    Result(Value),
}

impl CommandReply {
    /// Refused with one of the gateway's own codes.
    pub fn rejected(code: ReplyCode, message: impl Into<String>) -> CommandReply {
        CommandReply::Rejected {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Carries out the centre's commands (implemented by the daemon).
pub trait CommandHandler: Send + Sync {
    /// Handles one parsed command.
    fn handle(&self, command: Command) -> BoxFuture<'static, CommandReply>;

    /// Extra topic filters (full topics, outside the gateway's prefix) whose
    /// messages go to [`CommandHandler::raw`], e.g. a CAP warning feed.
    fn raw_topics(&self) -> Vec<String> {
        Vec::new()
    }

    /// A message on one of [`CommandHandler::raw_topics`]. Must not block.
    fn raw(&self, _topic: &str, _payload: bytes::Bytes) {}
}

/// The reply body for a handled command.
pub fn reply_body(request_id: &str, method: Method, r: CommandReply) -> Value {
    let mut v = json!({ "request_id": request_id, "method": method.as_str() });
    match r {
        CommandReply::Accepted(x) => {
            v["status"] = "accepted".into();
            v["result"] = x;
        }
        CommandReply::Result(x) => {
            v["status"] = "result".into();
            v["result"] = x;
        }
        CommandReply::Rejected { code, message } => {
            v["status"] = "rejected".into();
            v["error"] = json!({ "code": code, "message": message });
        }
    }
    v
}

/// What the daemon's handlers act on (built per command by
/// `centre::Commands`).
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a Store,
    /// Starts a discovery round now.
    pub rediscover: &'a Notify,
    /// Re-fetches a camera's inventory.
    pub probe: &'a mpsc::Sender<String>,
    /// Re-checks a camera's health now.
    pub wake: &'a mpsc::Sender<String>,
    /// Re-reads the configuration.
    pub reload: &'a Notify,
    /// The broadcast runtime, when it has started.
    pub broadcasts: Option<Broadcasts>,
}

/// Carries out `command`: one arm per command.
pub fn dispatch(ctx: Ctx<'_>, command: Command) -> BoxFuture<'static, CommandReply> {
    let reply = match command {
        Command::Rediscover => rediscover::run(&ctx),
        Command::Probe { camera } => probe::run(&ctx, &camera),
        Command::Reload => reload::run(&ctx),
        Command::Emergency { envelope } => return emergency::run(ctx.broadcasts, envelope),
    };
    Box::pin(async move { reply })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_carry_status_and_correlation() {
        let v = reply_body(
            "r-1",
            Method::Probe,
            CommandReply::rejected(ReplyCode::UnknownCamera, "no"),
        );
        assert_eq!(v["status"], "rejected");
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["error"]["code"], "unknown_camera");
        assert_eq!(
            reply_body("r-1", Method::Probe, CommandReply::Result(json!({"a":1})))["status"],
            "result"
        );
        assert_eq!(
            reply_body("r-2", Method::Rediscover, CommandReply::Accepted(json!({}))),
            json!({"request_id": "r-2", "method": "rediscover", "status": "accepted", "result": {}})
        );
    }

    /// Each command's handler answers as the daemon always has; the probe
    /// queue being full is `busy`, not a silent drop.
    #[tokio::test(start_paused = true)]
    async fn dispatch_runs_each_command() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory(dir.path()).unwrap();
        let cam = store
            .record_sighting(&crate::store::Sighting {
                endpoint_ref: "urn:uuid:1".into(),
                address: None,
                xaddrs: Vec::new(),
                scopes: Vec::new(),
                types: Vec::new(),
                via: "hello".into(),
                name: None,
            })
            .unwrap()
            .id;
        let (rediscover, reload) = (Notify::new(), Notify::new());
        let (probe, mut probe_rx) = mpsc::channel(1);
        let (wake, mut wake_rx) = mpsc::channel(1);
        let run = |command: Command| {
            dispatch(
                Ctx {
                    store: &store,
                    rediscover: &rediscover,
                    probe: &probe,
                    wake: &wake,
                    reload: &reload,
                    broadcasts: None,
                },
                command,
            )
        };
        let camera = |id: &str| Command::Probe {
            camera: CameraId::parse(id).unwrap(),
        };
        assert_eq!(
            run(Command::Rediscover).await,
            CommandReply::Accepted(json!({"started": true}))
        );
        rediscover.notified().await;
        assert_eq!(
            run(Command::Reload).await,
            CommandReply::Accepted(json!({"reloading": true}))
        );
        reload.notified().await;
        assert_eq!(
            run(camera(&cam)).await,
            CommandReply::Accepted(json!({"camera": cam}))
        );
        assert_eq!(probe_rx.try_recv().unwrap(), cam);
        assert_eq!(wake_rx.try_recv().unwrap(), cam);
        let _ = probe.try_send("x".into());
        assert_eq!(
            run(camera(&cam)).await,
            CommandReply::rejected(ReplyCode::Busy, "probe queue full; try again")
        );
        assert_eq!(
            run(camera("cam-nope")).await,
            CommandReply::rejected(ReplyCode::UnknownCamera, "no camera `cam-nope`")
        );
        assert_eq!(
            run(Command::Emergency {
                envelope: b"{}".to_vec()
            })
            .await,
            CommandReply::Rejected {
                code: "unavailable".into(),
                message: "broadcasts are not running yet".into()
            }
        );
    }
}
