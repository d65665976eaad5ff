//! The audit trail of the API: [`AppState::audit`] writes one entry (and
//! logs it); [`AppState::audited`] performs a mutation and writes its entry
//! when it succeeded, the shared path of every mutating handler.

use serde_json::Value;

use super::{ApiError, AppState, Ctx};
use crate::auth::NewAudit;
use crate::store::Device;

/// The audit entry of one change: who (from `ctx`), what, on which
/// target, and the state before.
pub(super) struct Change<'a> {
    /// The caller.
    pub(super) ctx: &'a Ctx,
    /// Audit action, e.g. `user.create`.
    pub(super) action: &'a str,
    /// What it acts on.
    pub(super) target: Option<&'a str>,
    /// The state before (never a secret).
    pub(super) before: Option<Value>,
}

impl AppState {
    /// Performs `mutate` and writes its audit entry: outcome `ok` with
    /// `after(&result)` when it succeeded. A failed mutation writes no
    /// entry and its error becomes the answer (handlers that audit a
    /// refusal, with its own outcome, call [`AppState::audit`]).
    pub(super) fn audited<T, E>(
        &self,
        change: Change<'_>,
        mutate: impl FnOnce() -> Result<T, E>,
        after: impl FnOnce(&T) -> Option<Value>,
    ) -> Result<T, ApiError>
    where
        ApiError: From<E>,
    {
        let v = mutate()?;
        let a = after(&v);
        self.audit(
            change.ctx,
            change.action,
            change.target,
            change.before,
            a,
            "ok",
        );
        Ok(v)
    }

    /// Writes one audit entry (and logs it; never fails the request).
    pub(super) fn audit(
        &self,
        ctx: &Ctx,
        action: &str,
        target: Option<&str>,
        before: Option<Value>,
        after: Option<Value>,
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

/// A device as audit entries show it (state, place, whether it has a login).
pub(super) fn device_brief(d: &Device) -> Value {
    serde_json::json!({ "state": d.state, "village": d.village, "grid": d.grid, "has_credentials": d.has_credentials })
}
