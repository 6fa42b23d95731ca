//! Erasing an account (`DELETE /api/v1/user`), and finishing at start the erasures a crash
//! interrupted. Top-level wiring like `dispatch`: it reaches auth, sessions, streams, the bus,
//! the windows and the store.
//!
//! Rules:
//! - Order: this node refuses the user's tokens and closes their sessions (4011
//!   `account_erased`) first, so that nothing new of theirs starts here; then the store
//!   erases everything of theirs ([`Store::erase_user`]: one transaction on SQLite, resumable
//!   on DynamoDB); then grantees' live subscriptions to their streams end as at a share
//!   delete, the other nodes are told ([`Message::Erased`]) and every node drops the user's
//!   window and caches; last the audit tombstone `account_erased` is appended (owner = the
//!   erased id; no IP, user agent, email or health data).
//! - The account's running import on this node stops before its next batch as soon as the
//!   erasure begins (so it writes nothing after the store's erase), and its kept uploads are
//!   deleted once the store's erase succeeded, here and on every node told of it (each
//!   node's data dir holds the uploads it took).
//! - A failed store erase takes the refusal back (the account is still there and usable) and
//!   is reported (503 when transient); erasing is idempotent, so the client retries.
//! - Pending erasures (begun on a backend that erases in steps, not finished) are finished at
//!   start, in the background; failures are retried with backoff until shutdown.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::app::App;
use crate::audit::{Action, Event, Origin};
use crate::bus::Message;
use crate::store::{Erased, ShareRecord, Store, StoreResult};
use crate::streams::hub::Kick;

/// Longest wait between two tries at the pending erasures.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Erases `user` everywhere (see the module rules).
pub async fn erase_account(app: &App, user: Uuid) -> StoreResult<Erased> {
    forget_here(app, user);
    match erase_in_store(&*app.store, user).await {
        Ok((erased, shares)) => {
            after_erase(app, user, &shares).await;
            Ok(erased)
        }
        Err(e) => {
            app.auth.abort_erasure(user);
            Err(e)
        }
    }
}

/// The store's part: the shares (read first, for ending their subscriptions), then the erase.
async fn erase_in_store(store: &dyn Store, user: Uuid) -> StoreResult<(Erased, Vec<ShareRecord>)> {
    let shares = store.shares_of(user).await?;
    let erased = store.erase_user(user).await?;
    Ok((erased, shares))
}

/// What follows a completed store erase on this node and the others.
async fn after_erase(app: &App, user: Uuid, shares: &[ShareRecord]) {
    // The store no longer has the shares, so a subscription that re-checks its grant finds
    // none: ending them now cannot race a re-grant.
    for sh in shares {
        app.streams.revoke(sh.owner_id, sh.grantee_id, sh.scope);
        app.bus.publish(Message::Revoked {
            owner: sh.owner_id,
            viewer: sh.grantee_id,
            stream: sh.scope.into(),
        });
    }
    // Again: a session that registered while the store erased is closed too.
    forget_here(app, user);
    delete_uploads(app, user).await;
    app.bus.publish(Message::Erased { user });
    tracing::info!(user_id = %user, shares = shares.len(), "account erased");
    let event = Event {
        owner: user,
        actor: Some(user),
        action: Action::AccountErased,
        target: None,
        // Nothing that identifies the person beyond the (now meaningless) account id.
        origin: &Origin::default(),
    };
    app.audit.record_best_effort(event).await;
}

/// Deletes `user`'s kept import uploads on this node (a failure is logged; retention
/// deletes them later).
pub async fn delete_uploads(app: &App, user: Uuid) {
    match app.imports.erase_user(user).await {
        Ok(0) => {}
        Ok(files) => {
            tracing::info!(user_id = %user, files, "import uploads of an erased account deleted")
        }
        Err(e) => {
            tracing::warn!(user_id = %user, error = %e, "import uploads of an erased account not deleted")
        }
    }
}

/// This node's part: refuse the user's tokens, close their sessions, stop their import,
/// drop their window and caches. Also what a node does when another tells it of an erasure.
pub fn forget_here(app: &App, user: Uuid) {
    app.auth.begin_erasure(user);
    app.imports.cancel_user(user);
    app.hub.kick_user(user, Kick::Erased);
    app.windows.remove(user);
    app.insight_requests.remove(&user);
}

/// Finishes the erasures the store lists as pending; retried with backoff until it succeeds
/// or the server shuts down.
pub async fn resume_pending(app: Arc<App>) {
    let mut wait = Duration::from_secs(1);
    loop {
        match finish_pending(&app).await {
            Ok(0) => return,
            Ok(n) => {
                tracing::info!(finished = n, "pending account erasures finished");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "pending account erasures not finished; retrying"),
        }
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
}

async fn finish_pending(app: &App) -> StoreResult<usize> {
    let users = app.store.pending_erasures().await?;
    for &user in &users {
        forget_here(app, user);
        let (_, shares) = erase_in_store(&*app.store, user).await?;
        after_erase(app, user, &shares).await;
    }
    Ok(users.len())
}
