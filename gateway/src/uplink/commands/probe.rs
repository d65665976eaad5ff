//! `probe`: re-fetch one camera's inventory and re-check its health now.

use serde_json::json;

use super::{CameraId, CommandReply, Ctx, ReplyCode};

/// Queues the inventory re-fetch and the health check of `camera`, if the
/// store knows it; `busy` when either queue is full.
pub fn run(ctx: &Ctx<'_>, camera: &CameraId) -> CommandReply {
    let id = camera.as_str();
    match ctx.store.device(id) {
        Ok(Some(_)) => {
            let queued = ctx.probe.try_send(id.to_string()).is_ok()
                & ctx.wake.try_send(id.to_string()).is_ok();
            if queued {
                CommandReply::Accepted(json!({ "camera": id }))
            } else {
                CommandReply::rejected(ReplyCode::Busy, "probe queue full; try again")
            }
        }
        Ok(None) => CommandReply::rejected(ReplyCode::UnknownCamera, format!("no camera `{id}`")),
        Err(e) => CommandReply::rejected(ReplyCode::Store, e.to_string()),
    }
}
