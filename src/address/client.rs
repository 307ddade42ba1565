//! Who a connection comes from (SPEC §13): the TCP peer, or, behind a reverse proxy the
//! operator named with `--trusted-proxy`, the address that proxy says it forwarded for.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::connect_info::Connected;
use axum::http::HeaderMap;
use axum::serve::IncomingStream;
use ipnet::IpNet;
use tokio::net::TcpListener;

/// The TCP peer of a connection, put in every request's extensions by
/// `into_make_service_with_connect_info` for either listener (the TLS one says so beside
/// it, in `tls/listener.rs`). A type of our own because axum gives `SocketAddr` for its
/// own listener only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// A client address as the limits count it: an IPv4 address, or an IPv6 /64 (one
/// household's or one phone's share; a host can take any address in it at will). An
/// IPv4-mapped IPv6 address is its IPv4 address. No `Display`: it is never logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    pub fn of(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(network)))
            }
        }
    }

    /// The bytes the keyed hash is taken of: 4 for IPv4, the 8 of the /64 for IPv6.
    pub(super) fn bytes(&self) -> Vec<u8> {
        match self.0 {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets()[..8].to_vec(),
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`).
#[derive(Clone, Default)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
    /// Whether the one warning about an untrusted `X-Forwarded-For` was logged.
    warned: Arc<AtomicBool>,
}

impl TrustedProxies {
    pub fn new(networks: &[IpNet]) -> Self {
        Self {
            networks: networks.into(),
            warned: Arc::default(),
        }
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The client behind a request from `peer` with `headers`: the peer itself, unless it
    /// is a trusted proxy; then, walking `X-Forwarded-For` from the right (the hop nearest
    /// us), the first address that is not a trusted proxy. Entries to the left of that one
    /// were written by the client and prove nothing. An entry that is not an address ends
    /// the walk at the last trusted hop; a chain of trusted proxies only gives its left end.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddress {
        let forwarded = headers.get_all("x-forwarded-for");
        if !self.trusts(peer) {
            if forwarded.iter().next().is_some() && !self.warned.swap(true, Ordering::Relaxed) {
                // Once: it is a set-up mistake, not an event, and the address is not logged.
                tracing::warn!(
                    "a request came with X-Forwarded-For from a peer that is not a trusted proxy; \
                     the header is ignored, so every client behind that proxy shares one address's \
                     limits (SPEC §13). If a reverse proxy of yours sets it, start with \
                     --trusted-proxy <its address or CIDR>"
                );
            }
            return ClientAddress::of(peer);
        }
        let entries: Vec<&str> = forwarded
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(address) = parse_hop(entry) else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        ClientAddress::of(client)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`,
/// `[::1]:5`), as some proxies write them.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn proxies(networks: &[&str]) -> TrustedProxies {
        let networks: Vec<IpNet> = networks.iter().map(|n| n.parse().unwrap()).collect();
        TrustedProxies::new(&networks)
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            ClientAddress::of(ip("2001:db8:1:2::1")),
            ClientAddress::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            ClientAddress::of(ip("2001:db8:1:2::1")),
            ClientAddress::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientAddress::of(ip("::ffff:192.0.2.1")),
            ClientAddress::of(ip("192.0.2.1"))
        );
        assert_ne!(
            ClientAddress::of(ip("192.0.2.1")),
            ClientAddress::of(ip("192.0.2.2"))
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = proxies(&["10.0.0.0/8"]);
        let client = proxies.client(ip("192.0.2.9"), &forwarded(&["203.0.113.1"]));
        assert_eq!(client, ClientAddress::of(ip("192.0.2.9")));
        let client = TrustedProxies::default().client(ip("127.0.0.1"), &forwarded(&["1.2.3.4"]));
        assert_eq!(client, ClientAddress::of(ip("127.0.0.1")));
    }

    #[test]
    fn a_trusted_peer_names_the_right_most_untrusted_hop() {
        let proxies = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        let cases: [(&[&str], &str); 6] = [
            (&["203.0.113.7"], "203.0.113.7"),
            (&["198.51.100.1, 203.0.113.7"], "203.0.113.7"),
            (&["198.51.100.1, 203.0.113.7, 10.1.1.1"], "203.0.113.7"),
            (&["198.51.100.1", "203.0.113.7, 10.1.1.1"], "203.0.113.7"),
            (&["10.2.2.2, 10.1.1.1"], "10.2.2.2"),
            (&["not-an-address, 10.1.1.1"], "10.1.1.1"),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                proxies.client(peer, &forwarded(headers)),
                ClientAddress::of(ip(expected)),
                "{headers:?}"
            );
        }
        assert_eq!(
            proxies.client(peer, &HeaderMap::new()),
            ClientAddress::of(peer),
            "no header: the proxy itself"
        );
        assert_eq!(
            proxies.client(peer, &forwarded(&["203.0.113.7:4711"])),
            ClientAddress::of(ip("203.0.113.7")),
            "a port is not part of the address"
        );
    }
}
