//! `reload`: re-read the configuration (township, credential groups).

use serde_json::json;

use super::{CommandReply, Ctx};

/// Wakes the configuration reloader; it runs in the background.
pub fn run(ctx: &Ctx<'_>) -> CommandReply {
    ctx.reload.notify_one();
    CommandReply::Accepted(json!({ "reloading": true }))
}
