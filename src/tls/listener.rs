//! The TLS port as an [`axum::serve::Listener`], so that `axum::serve` and its graceful
//! shutdown work over TLS exactly as over plain TCP.
//!
//! `axum::serve` calls `accept` one connection at a time. A handshake awaited inside
//! `accept` would let one slow client — or a plain-HTTP request, or a socket that sends
//! nothing — hold up every other connection, so each handshake runs in its own task and
//! `accept` only takes the connections whose handshake finished.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::address::client::PeerAddr;

/// How long a client may take to finish its handshake before it is dropped: long enough
/// for a phone on a poor network, short enough that idle sockets do not pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at most; beyond it the port stops accepting until one ends, and
/// new clients wait in the kernel's backlog instead of in our memory.
const MAX_HANDSHAKES: usize = 1024;
/// Finished connections waiting for `axum::serve` to take them.
const READY_QUEUE: usize = 64;

/// Accepts TCP connections on the TLS port and yields them once their TLS handshake is done.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    /// The accept loop, which owns the TCP listener and the handshakes in progress:
    /// aborted when this listener is dropped (axum drops it when a graceful shutdown
    /// begins), which closes the port and abandons those handshakes.
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), sender));
        Ok(Self {
            ready,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// The client's TCP peer, as over plain TCP, for the limits per address (SPEC §13).
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ends only if it panicked: serve nothing more rather than spin.
            None => {
                tracing::error!("the TLS accept loop stopped; no new connections");
                std::future::pending().await
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        if handshakes.len() >= MAX_HANDSHAKES {
            handshakes.join_next().await;
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    handshakes.spawn(handshake(acceptor.clone(), stream, peer, ready.clone()));
                }
                Err(error) => wait_after_accept_error(error).await,
            },
            Some(_) = handshakes.join_next() => {}
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            // Fails only once the server stopped taking connections: the client is dropped.
            let _ = ready.send((tls, peer)).await;
        }
        // Scanners, plain-HTTP requests and clients that distrust the certificate end here
        // all the time: worth a debug line, not a warning.
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// What `axum::serve` does for plain TCP: errors of one connection are ignored; others
/// (such as running out of file descriptors) are logged and waited out for a moment, so
/// the loop does not spin on them.
async fn wait_after_accept_error(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::serve::Listener as _;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::tls::Certificates;

    /// A listener on a free loopback port with a fresh certificate for localhost, and a
    /// client configuration that trusts that certificate alone.
    async fn listener(dir: &Path) -> (TlsListener, Arc<rustls::ClientConfig>) {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
        let certificates = Arc::new(Certificates::open(&cert, &key).unwrap());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener = TlsListener::new(tcp, certificates.server_config()).unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(pair.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (listener, Arc::new(client))
    }

    #[tokio::test]
    async fn a_client_is_accepted_while_others_sit_in_their_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let (mut listener, client) = listener(dir.path()).await;
        let addr = listener.local_addr().unwrap();
        // Connected, and never a byte of handshake: each holds a handshake task open.
        let mut silent = Vec::new();
        for _ in 0..3 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }

        let connecting = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(client)
                .connect(name, tcp)
                .await
                .unwrap();
            tls.write_all(b"ping").await.unwrap();
            let mut answer = [0; 4];
            tls.read_exact(&mut answer).await.unwrap();
            answer
        });
        // Handshakes done one after another would first wait out each silent one
        // (`HANDSHAKE_TIMEOUT` apiece), longer than this wait.
        let (mut accepted, peer) = tokio::time::timeout(HANDSHAKE_TIMEOUT, listener.accept())
            .await
            .expect("the client is accepted while the silent sockets wait");
        let mut request = [0; 4];
        accepted.read_exact(&mut request).await.unwrap();
        accepted.write_all(b"pong").await.unwrap();

        assert_eq!(&request, b"ping");
        assert_eq!(&connecting.await.unwrap(), b"pong");
        assert!(peer.ip().is_loopback());
        drop(silent);
    }

    #[tokio::test]
    async fn dropping_the_listener_closes_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let (listener, _) = listener(dir.path()).await;
        let addr = listener.local_addr().unwrap();

        drop(listener);

        // The abort takes effect at the accept loop's next poll; until then the port may
        // still take a connection, after it refuses them.
        let mut refused = false;
        for _ in 0..1000 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(refused, "the port still accepts connections");
    }
}
