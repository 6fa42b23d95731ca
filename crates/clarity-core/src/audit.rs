//! The audit log: an append-only record, per data owner, of what others did with their data
//! and of what happened to their account (docs/security.md "Audit log").
//!
//! Rules:
//! - An entry holds ids, a stable action code, a target (a stream, scope or document id),
//!   the time, the client's IP and user agent. Never health values, tokens, passwords or
//!   email addresses.
//! - Disclosing someone else's data is recorded *before* the data goes out, and fails closed:
//!   when the entry cannot be written the read is refused (503 / `store_unavailable`), so no
//!   disclosure goes unrecorded ([`AuditLog::record`]).
//! - Events that already happened (logins, share changes, refused reads) are recorded after
//!   the fact and do not change the answer when the entry cannot be written: the failure is
//!   logged and counted (`clarity_audit_write_failures_total`) ([`AuditLog::record_best_effort`]).
//!   Login entries are written beside the answer rather than before it, so that a wrong
//!   password is answered as fast as an unknown email; the task is tracked with the sessions,
//!   so shutdown waits for it before closing the store.
//! - Own reads are not recorded.
//!
//! [`AuditLog`] is the handle callers get: the store it writes to and how long entries are
//! kept, nothing else, so recording needs neither the app nor its configuration.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use crate::store::{AuditRecord, Store, StoreResult};

/// Longest user agent kept, in characters.
const MAX_USER_AGENT: usize = 256;

/// What an entry records. The codes are stable: clients may match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The account was created (signup).
    AccountCreated,
    /// A successful password login.
    Login,
    /// A wrong password for this account.
    LoginFailed,
    /// A spent refresh token was presented again; that login's tokens were revoked.
    RefreshTokenReused,
    /// The owner shared a scope with another account.
    ShareGranted,
    /// A share ended (by the owner or by the grantee).
    ShareRevoked,
    /// Another account read the owner's documents over REST (a listing page or one document).
    DataRead,
    /// Another account subscribed to the owner's live stream (one entry per subscribe).
    StreamSubscribed,
    /// Another account asked for the owner's documents or stream without a share.
    AccessDenied,
    /// The owner downloaded all their data (`GET /api/v1/export`).
    Export,
    /// The account and everything it owned were erased (`DELETE /api/v1/user`): the one
    /// entry left of it, with no IP, user agent, email or health data.
    AccountErased,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::AccountCreated => "account_created",
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::RefreshTokenReused => "refresh_token_reused",
            Action::ShareGranted => "share_granted",
            Action::ShareRevoked => "share_revoked",
            Action::DataRead => "data_read",
            Action::StreamSubscribed => "stream_subscribed",
            Action::AccessDenied => "access_denied",
            Action::Export => "export",
            Action::AccountErased => "account_erased",
        }
    }
}

/// Where a request came from, as recorded: the client's IP and its user agent.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Origin {
    /// `user_agent` cut to a bounded, printable string.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Origin {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Origin {
            ip: ip.map(|ip| ip.to_canonical()),
            user_agent,
        }
    }
}

/// One thing to record.
pub struct Event<'a> {
    /// Whose log it goes in: the data owner it concerns.
    pub owner: Uuid,
    /// Who acted (`None`: nobody authenticated).
    pub actor: Option<Uuid>,
    pub action: Action,
    pub target: Option<String>,
    pub origin: &'a Origin,
}

/// Where entries go: the store and the retention (`--audit-retention-days`). Built once by
/// the app; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn Store>,
    retention_days: u32,
}

impl AuditLog {
    pub fn new(store: Arc<dyn Store>, retention_days: u32) -> AuditLog {
        AuditLog {
            store,
            retention_days,
        }
    }

    /// Writes the entry; an error means it is not recorded and the caller must not go on with
    /// what it records (fail closed).
    pub async fn record(&self, event: Event<'_>) -> StoreResult<()> {
        let at = Utc::now();
        let days = i64::from(self.retention_days.max(1));
        let entry = AuditRecord {
            id: Uuid::now_v7(),
            owner_id: event.owner,
            actor_id: event.actor,
            action: event.action.as_str().to_owned(),
            target: event.target,
            at,
            ip: event.origin.ip.map(|ip| ip.to_string()),
            user_agent: event.origin.user_agent.clone(),
            expires_at: at + chrono::Duration::days(days),
        };
        let action = event.action.as_str();
        match self.store.append_audit(entry).await {
            Ok(()) => {
                metrics::counter!(crate::metrics::AUDIT_ENTRIES, "action" => action).increment(1);
                Ok(())
            }
            Err(e) => {
                metrics::counter!(crate::metrics::AUDIT_FAILURES, "action" => action).increment(1);
                tracing::warn!(action, error = %e, "audit entry not written");
                Err(e)
            }
        }
    }

    /// Writes the entry of something that already happened; a failure is logged and counted
    /// (by [`AuditLog::record`]) and otherwise ignored.
    pub async fn record_best_effort(&self, event: Event<'_>) {
        let _ = self.record(event).await;
    }

    /// [`AuditLog::record_best_effort`] of a refused request for another user's data: only
    /// when the account the client named exists, so that made-up ids leave nothing in the
    /// store.
    pub async fn record_refusal(&self, event: Event<'_>) {
        if let Ok(Some(_)) = self.store.user_by_id(event.owner).await {
            self.record_best_effort(event).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn user_agents_are_bounded_and_printable() {
        let o = Origin::new(None, Some(&format!("a\nb\u{7}{}", "x".repeat(1000))));
        let ua = o.user_agent.unwrap();
        assert!(ua.starts_with("abx"));
        assert_eq!(ua.chars().count(), 256);
        assert!(Origin::new(None, Some(" \t")).user_agent.is_none());
        let mapped = Origin::new(Some("::ffff:10.1.2.3".parse().unwrap()), None);
        assert_eq!(mapped.ip.unwrap().to_string(), "10.1.2.3");
    }
}
