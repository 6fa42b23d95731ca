//! A store wrapper for race and account tests: it can hold one grant check (`has_share`) at a
//! chosen point until the test lets it go, and hide accounts as if they had been removed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clarity::store::{DocKind, Store, StoreResult, UserRecord};
use tokio::sync::Notify;
use uuid::Uuid;

use super::wrap::{Intercept, wrap};

/// Where an armed grant check stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// Before the store is read: what it answers is decided after the test's moves.
    BeforeRead,
    /// After the store answered: the test's moves come between the answer and its use.
    AfterRead,
}

/// One armed stop: `reached` is notified when the check stops, `release` lets it go on.
#[derive(Clone)]
pub struct Gate {
    pub reached: Arc<Notify>,
    pub release: Arc<Notify>,
}

struct Armed {
    owner: Uuid,
    grantee: Uuid,
    pause: Pause,
    gate: Gate,
}

#[derive(Clone, Default)]
pub struct Hooks {
    armed: Arc<Mutex<Option<Armed>>>,
    hidden: Arc<Mutex<HashSet<Uuid>>>,
}

impl Hooks {
    /// Wraps `inner` (for `spawn_with_store` / `spawn_nodes_with_store`).
    pub fn wrap(&self, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        wrap(inner, self.clone())
    }

    /// Stops the next grant check of `grantee` on `owner`'s documents at `pause` (once).
    pub fn arm(&self, owner: Uuid, grantee: Uuid, pause: Pause) -> Gate {
        let gate = Gate {
            reached: Arc::new(Notify::new()),
            release: Arc::new(Notify::new()),
        };
        *self.armed.lock().unwrap() = Some(Armed {
            owner,
            grantee,
            pause,
            gate: gate.clone(),
        });
        gate
    }

    /// From now on the store answers as if `user`'s account had been removed.
    pub fn remove_account(&self, user: Uuid) {
        self.hidden.lock().unwrap().insert(user);
    }

    fn take(&self, owner: Uuid, grantee: Uuid) -> Option<(Pause, Gate)> {
        let mut armed = self.armed.lock().unwrap();
        if armed
            .as_ref()
            .is_some_and(|a| a.owner == owner && a.grantee == grantee)
        {
            armed.take().map(|a| (a.pause, a.gate))
        } else {
            None
        }
    }

    fn is_hidden(&self, user: Uuid) -> bool {
        self.hidden.lock().unwrap().contains(&user)
    }
}

async fn stop(gate: &Gate) {
    gate.reached.notify_one();
    gate.release.notified().await;
}

#[async_trait]
impl Intercept for Hooks {
    async fn user_by_email(
        &self,
        inner: &dyn Store,
        email: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let user = inner.user_by_email(email).await?;
        Ok(user.filter(|u| !self.is_hidden(u.id)))
    }
    async fn user_by_id(&self, inner: &dyn Store, id: Uuid) -> StoreResult<Option<UserRecord>> {
        if self.is_hidden(id) {
            return Ok(None);
        }
        inner.user_by_id(id).await
    }
    async fn has_share(
        &self,
        inner: &dyn Store,
        owner: Uuid,
        grantee: Uuid,
        scope: DocKind,
    ) -> StoreResult<bool> {
        let armed = self.take(owner, grantee);
        if let Some((Pause::BeforeRead, gate)) = &armed {
            stop(gate).await;
        }
        let answer = inner.has_share(owner, grantee, scope).await;
        if let Some((Pause::AfterRead, gate)) = &armed {
            stop(gate).await;
        }
        answer
    }
}
