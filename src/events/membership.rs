//! One socket's joins and leaves, one at a time. socketioxide runs each event's handler,
//! and the disconnect's, in a task of its own, so a `live:join` or `call:join` and the
//! socket's disconnect can run at once. Unchecked, the disconnect's leave could announce
//! the socket gone (`live:left`, `call:left`) between the join putting it in the room and
//! announcing it (`live:joined`, `call:joined`): the others would then hear of a
//! participant after hearing it left, and keep its tile for good. Holding this for the
//! whole of a join and of a leave keeps each announcement in the order of what happened.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Kept in the socket's extensions from its connection on. An async mutex: a join holds it
/// across the adapter's awaits (and, in a cluster, Redis's).
#[derive(Clone, Default)]
pub struct Membership(Arc<Mutex<()>>);

impl Membership {
    /// Gives `socket` its lock; called once, on connecting, before any event can arrive.
    pub fn give<A: Adapter>(socket: &SocketRef<A>) {
        socket.extensions.insert(Self::default());
    }

    /// Waits for `socket`'s other join or leave, if one is under way, and holds the lock
    /// until the guard is dropped.
    pub async fn change<A: Adapter>(socket: &SocketRef<A>) -> OwnedMutexGuard<()> {
        let membership = socket
            .extensions
            .get::<Self>()
            .expect("every socket is given its membership lock on connecting");
        membership.0.lock_owned().await
    }
}
