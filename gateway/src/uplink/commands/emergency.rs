//! `emergency`: a signed broadcast command. The envelope's bytes, exactly as
//! the centre sent them, go to the broadcast runtime, which verifies the
//! signature once, on those bytes, and starts or stops the broadcast.

use futures::future::BoxFuture;

use super::{CommandReply, ReplyCode};
use crate::broadcast::runtime::Broadcasts;

/// Hands `envelope` to the broadcast runtime (`unavailable` before it has
/// started); its refusal codes (`bad_signature`, `expired`, …) pass through.
pub fn run(broadcasts: Option<Broadcasts>, envelope: Vec<u8>) -> BoxFuture<'static, CommandReply> {
    Box::pin(async move {
        let Some(b) = broadcasts else {
            return CommandReply::rejected(
                ReplyCode::Unavailable,
                "broadcasts are not running yet",
            );
        };
        match b.signed(bytes::Bytes::from(envelope)).await {
            Ok(v) => CommandReply::Accepted(v),
            Err(r) => CommandReply::Rejected {
                code: r.code,
                message: r.message,
            },
        }
    })
}
