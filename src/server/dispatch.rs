//! What a node does with messages from other nodes, and the helpers that send them. It is
//! top-level wiring (it reaches every subsystem), so it lives next to the server and holds
//! the whole `App`; modules below the edge get narrow handles instead.
//!
//! Rules: handling a message never waits on a client (pushes are `try_send`, change notices
//! only wake followers) and only the owner of a window applies forwarded samples. A possible
//! loss of messages also wakes every change-feed follower, which then reads the store. Ending sessions (logout, admin disconnect)
//! acts on this node's sessions at once and tells the others; delivery being at most once,
//! a node that misses the message keeps such a session until its token expires (logout) or
//! for good (disconnect), which the documentation states.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::app::App;
use crate::bus::Message;
use crate::protocol::Frame;
use crate::store::DocKind;
use crate::streams::Event;
use crate::streams::hub::Kick;

/// Ends login `family` of `user` on every node: its access tokens are refused from now on
/// and its sessions close with 4011. Returns how many sessions this node closed.
pub fn end_login(app: &App, user: Uuid, family: Uuid) -> usize {
    app.auth.end_family(family);
    let closed = app.hub.kick_family(user, family);
    app.bus.publish(Message::LoggedOut { user, family });
    closed
}

/// Closes every session of `user` on every node with 4012. Returns how many this node closed.
pub fn disconnect_user(app: &App, user: Uuid) -> usize {
    let closed = app.hub.kick_user(user, Kick::Disconnected);
    app.bus.publish(Message::Disconnect { user });
    closed
}

/// Handles the inbox until shutdown; a possible loss of messages (reconnect) rebuilds the
/// windows this node owns.
pub async fn run(
    app: Arc<App>,
    mut inbox: mpsc::Receiver<Message>,
    mut missed: watch::Receiver<u64>,
) {
    missed.mark_unchanged();
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            m = inbox.recv() => match m {
                Some(m) => handle(&app, m),
                None => return,
            },
            r = missed.changed() => {
                if r.is_err() {
                    return;
                }
                app.subscriptions.feed.poke_all();
                let app = app.clone();
                app.sessions.clone().spawn(async move {
                    app.window_service.resync(None).await;
                });
            }
        }
    }
}

fn handle(app: &Arc<App>, msg: Message) {
    match msg {
        Message::Event {
            user,
            stream,
            offset,
            text,
        } => {
            let kind = DocKind::from(stream);
            let event = Event {
                offset,
                frame: Frame::from_encoded(text),
            };
            app.hub.push_event(user, kind, &event.frame);
            app.streams.fan_out(user, kind, &event);
        }
        Message::UserFrame { user, text } => {
            app.hub.push(user, &Frame::from_encoded(text));
        }
        Message::Revoked {
            owner,
            viewer,
            stream,
        } => {
            app.streams.revoke(owner, viewer, stream.into());
        }
        Message::Samples { user, samples } => {
            if app.ownership.owns(user) {
                app.window_service.feed(user, &samples);
            }
        }
        Message::LoggedOut { user, family } => {
            app.auth.end_family(family);
            app.hub.kick_family(user, family);
        }
        Message::Disconnect { user } => {
            app.hub.kick_user(user, Kick::Disconnected);
        }
        Message::Erased { user } => {
            crate::server::erase::forget_here(app, user);
        }
        Message::SamplesChanged { user, head } => {
            app.subscriptions.feed.poke(user, head);
        }
        Message::Resync { users } => {
            // Change notices of these users may be among what was lost.
            match &users {
                Some(users) => users
                    .iter()
                    .for_each(|u| app.subscriptions.feed.poke(*u, None)),
                None => app.subscriptions.feed.poke_all(),
            }
            let app = app.clone();
            app.sessions.clone().spawn(async move {
                app.window_service.resync(users).await;
            });
        }
    }
}
