//! `rediscover`: start a discovery round now (the discovery loop wakes).

use serde_json::json;

use super::{CommandReply, Ctx};

/// Wakes the discovery loop; the round runs in the background.
pub fn run(ctx: &Ctx<'_>) -> CommandReply {
    ctx.rediscover.notify_one();
    CommandReply::Accepted(json!({ "started": true }))
}
