//! Who may connect (SPEC §13, §10): before a socket joins the namespace, its client
//! address must not be banned and must have a place left. Refused in the handshake, the
//! official client's `connect_error` reads `too_many_connections` or `banned`.
//!
//! A socket that was let in keeps its address's key in its extensions and sits in the
//! address's room, on whichever node it is: a ban by address closes that room's sockets
//! everywhere. Its place is given back when it disconnects.

use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};

use crate::address::key::AddressKey;
use crate::address::limits::ConnectionRefused;
use crate::app::App;
use crate::clip::now_ms;
use crate::metrics::AddressRefusal;

/// The connect middleware: lets the socket in and takes its place, or refuses it.
pub(crate) async fn admit<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
) -> Result<(), ConnectionRefused> {
    let parts = socket.req_parts();
    let Some(key) = app.address_key(&parts.extensions, &parts.headers) else {
        // Only a connection that came through no listener has no peer: nothing to count.
        return Ok(());
    };
    if app.bans.of_address(&key, now_ms()).is_some() {
        app.metrics
            .address_refused(AddressRefusal::BannedConnection);
        return Err(ConnectionRefused::Banned);
    }
    if let Err(refused) = app.limits.open(&key).await {
        app.metrics
            .address_refused(AddressRefusal::TooManyConnections);
        return Err(refused);
    }
    socket.extensions.insert(key);
    Ok(())
}

/// Once connected: the socket joins its address's room, so that a ban made while this
/// socket was admitted still reaches it.
pub(crate) fn enter<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    let Some(key) = socket.extensions.get::<AddressKey>() else {
        return;
    };
    socket.join(key.room());
    if app.bans.of_address(&key, now_ms()).is_some() {
        let socket = socket.clone();
        tokio::spawn(async move {
            let _ = socket.disconnect();
        });
    }
}

/// Gives back the socket's place (on disconnect).
pub(crate) fn leave<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    if let Some(key) = socket.extensions.remove::<AddressKey>() {
        app.limits.close(&key);
    }
}
