//! The audit trail of the API: [`AppState::audit`] writes one entry (and
//! logs it); [`AppState::audited`] performs a mutation and writes its entry
//! when it succeeded, the shared path of every mutating handler.

use super::{AppState, Ctx};
use crate::auth::NewAudit;
use crate::store::Device;

impl AppState {
    pub(super) fn audit(
        &self,
        ctx: &Ctx,
        action: &str,
        target: Option<&str>,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
        outcome: &str,
    ) {
        let e = NewAudit {
            actor: &ctx.who.user,
            source: &ctx.source,
            action,
            target,
            before,
            after,
            outcome,
        };
        if let Err(e) = self.users.audit(e) {
            tracing::warn!(error = %e, action, "writing the audit log failed");
        }
        tracing::info!(actor = %ctx.who.user, source = %ctx.source, action, target = target.unwrap_or("-"), outcome, "audit");
    }
}
pub(super) fn device_brief(d: &Device) -> serde_json::Value {
    serde_json::json!({ "state": d.state, "village": d.village, "grid": d.grid, "has_credentials": d.has_credentials })
}
