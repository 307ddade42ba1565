//! The ICE servers a call page is given (SPEC §9): the STUN/TURN URLs of `--ice-servers`,
//! each TURN one with time-limited credentials when `--turn-secret` is set.
//!
//! The credentials are coturn's "TURN REST API" scheme (`use-auth-secret` with
//! `static-auth-secret`): the username is `<expiry as unix seconds>:<user id>` and the
//! password is base64 of HMAC-SHA1 keyed with the shared secret over that username, so
//! coturn can check them without asking loopchat, and they stop working at the expiry.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

use crate::identity::UserId;
use crate::secret::Secret;

/// How long handed-out TURN credentials work: long enough for a long call, short enough
/// that a leaked one is soon useless.
pub const CREDENTIAL_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The schemes of RFC 7064 (STUN) and RFC 7065 (TURN).
const SCHEMES: [(&str, bool); 4] = [
    ("stun:", false),
    ("stuns:", false),
    ("turn:", true),
    ("turns:", true),
];

/// One URL of `--ice-servers`, checked to be a STUN or TURN URL a browser accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    text: String,
    /// `turn:` or `turns:`: a relay, which needs credentials.
    turn: bool,
}

impl IceUrl {
    /// `stun:host[:port]`, `stuns:…`, `turn:host[:port][?transport=udp|tcp]` or `turns:…`,
    /// with a host name, an IPv4 address or a bracketed IPv6 address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, turn) = SCHEMES
            .into_iter()
            .find(|(scheme, _)| text.starts_with(scheme))
            .ok_or("an ICE server URL starts with stun:, stuns:, turn: or turns:")?;
        let rest = &text[scheme.len()..];
        if rest.starts_with("//") {
            return Err(format!("write {scheme}host:port, without //"));
        }
        let (address, query) = match rest.split_once('?') {
            Some((address, query)) => (address, Some(query)),
            None => (rest, None),
        };
        match query {
            None => {}
            Some("transport=udp" | "transport=tcp") if turn => {}
            Some(_) => {
                return Err(
                    "the only query is ?transport=udp or ?transport=tcp, on turn: and turns: URLs"
                        .into(),
                );
            }
        }
        let (host, port) = split_port(address)?;
        if !is_host(host) {
            return Err(format!("{host:?} is not a host name or an IP address"));
        }
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(1..) => {}
                _ => return Err(format!("the port {port:?} is not a number from 1 to 65535")),
            }
        }
        Ok(Self {
            text: text.to_owned(),
            turn,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `host` and its port, if it has one; an IPv6 address is in brackets.
fn split_port(address: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = address.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("[{inside}] is not an IPv6 address"));
        }
        return match after {
            "" => Ok((address, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((address, Some(port))),
                None => Err(format!("unexpected {after:?} after the address")),
            },
        };
    }
    Ok(match address.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (address, None),
    })
}

/// A DNS name, an IPv4 address or a bracketed IPv6 address (checked by `split_port`).
fn is_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

/// An entry of the `ice_servers` list, as `RTCPeerConnection` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RtcIceServer {
    pub urls: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Why the ICE settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IceError {
    #[error(
        "--ice-servers lists {0}, but without --turn-secret there are no credentials for it and browsers refuse a TURN server without them (give --turn-secret, coturn's static-auth-secret, or leave the TURN URL out)"
    )]
    TurnWithoutSecret(String),
}

/// The ICE servers of `--ice-servers`, ready to hand out; cheap to clone.
#[derive(Clone)]
pub struct IceServers {
    /// Shared, not copied: the state is cloned for every event a socket sends.
    urls: Arc<[IceUrl]>,
    /// HMAC-SHA1 with `--turn-secret` already keyed in, cloned for each username; the
    /// secret itself is not kept.
    turn_key: Option<Hmac<Sha1>>,
}

impl IceServers {
    /// Refuses TURN URLs without a secret: a page given one would fail to start its call.
    pub fn new(urls: &[IceUrl], turn_secret: Option<&Secret>) -> Result<Self, IceError> {
        if turn_secret.is_none()
            && let Some(turn) = urls.iter().find(|url| url.turn)
        {
            return Err(IceError::TurnWithoutSecret(turn.text.clone()));
        }
        Ok(Self {
            urls: urls.into(),
            turn_key: turn_secret.map(|secret| {
                Hmac::new_from_slice(secret.expose().as_bytes())
                    .expect("HMAC takes a key of any length")
            }),
        })
    }

    /// The list for `user`, at `now_unix` seconds since the epoch: one entry per URL, in the
    /// order given; TURN entries carry credentials that expire `CREDENTIAL_LIFETIME` later.
    pub fn for_user(&self, user: &UserId, now_unix: u64) -> Vec<RtcIceServer> {
        let credentials = self.turn_key.as_ref().map(|key| {
            let username = format!(
                "{}:{user}",
                now_unix.saturating_add(CREDENTIAL_LIFETIME.as_secs())
            );
            let mut mac = key.clone();
            mac.update(username.as_bytes());
            let credential = BASE64.encode(mac.finalize().into_bytes());
            (username, credential)
        });
        self.urls
            .iter()
            .map(|url| {
                let (username, credential) = match (&credentials, url.turn) {
                    (Some((username, credential)), true) => {
                        (Some(username.clone()), Some(credential.clone()))
                    }
                    _ => (None, None),
                };
                RtcIceServer {
                    urls: url.text.clone(),
                    username,
                    credential,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(texts: &[&str]) -> Vec<IceUrl> {
        texts
            .iter()
            .map(|text| IceUrl::parse(text).unwrap())
            .collect()
    }

    fn user() -> UserId {
        UserId::parse("lpomcrv7mb2u42qeeqta").unwrap()
    }

    #[test]
    fn hmac_sha1_is_the_rfc_2202_one() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        let mut mac = Hmac::<Sha1>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn turn_urls_get_coturn_rest_credentials_and_stun_urls_none() {
        let secret = Secret::for_tests("loopchat-turn-secret");
        let servers = IceServers::new(
            &urls(&[
                "stun:stun.example.org",
                "turn:turn.example.org:3478?transport=tcp",
                "turns:turn.example.org",
            ]),
            Some(&secret),
        )
        .unwrap();
        // 2025-12-01 18:00:00 UTC; the expiry is 12 h later, 2025-12-02 06:00:00 UTC.
        let list = servers.for_user(&user(), 1_764_612_000);
        // Computed independently with Python:
        //   base64.b64encode(hmac.new(b"loopchat-turn-secret",
        //       b"1764655200:lpomcrv7mb2u42qeeqta", hashlib.sha1).digest())
        let username = Some("1764655200:lpomcrv7mb2u42qeeqta".to_owned());
        let credential = Some("r+1vi6/x/Ep4tSnZUDBQxFTAsuU=".to_owned());
        assert_eq!(
            list,
            [
                RtcIceServer {
                    urls: "stun:stun.example.org".into(),
                    username: None,
                    credential: None,
                },
                RtcIceServer {
                    urls: "turn:turn.example.org:3478?transport=tcp".into(),
                    username: username.clone(),
                    credential: credential.clone(),
                },
                RtcIceServer {
                    urls: "turns:turn.example.org".into(),
                    username,
                    credential,
                },
            ]
        );
        let json = serde_json::to_value(&list[0]).unwrap();
        assert_eq!(json, serde_json::json!({ "urls": "stun:stun.example.org" }));
    }

    #[test]
    fn no_urls_no_servers() {
        let servers = IceServers::new(&[], None).unwrap();
        assert!(servers.for_user(&user(), 0).is_empty());
    }

    #[test]
    fn a_turn_url_without_a_secret_is_refused_naming_it() {
        let error = IceServers::new(&urls(&["stun:a.example", "turn:b.example"]), None)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("turn:b.example"), "{error}");
        assert!(error.contains("--turn-secret"), "{error}");
        assert!(IceServers::new(&urls(&["stun:a.example"]), None).is_ok());
    }

    #[test]
    fn urls_a_browser_takes_are_accepted() {
        for good in [
            "stun:stun.l.google.com:19302",
            "stuns:stun.example.org",
            "turn:192.0.2.7",
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349?transport=tcp",
            "stun:[2001:db8::1]:3478",
            "turn:[::1]",
            " stun:padded.example ",
        ] {
            assert!(IceUrl::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn anything_else_is_refused_saying_why() {
        for (bad, says) in [
            ("http://stun.example.org", "starts with stun:"),
            ("stun.example.org", "starts with stun:"),
            ("STUN:stun.example.org", "starts with stun:"),
            ("stun://stun.example.org", "without //"),
            ("stun:", "not a host"),
            ("stun::3478", "not a host"),
            ("stun:bad_host", "not a host"),
            ("stun:a..b", "not a host"),
            ("stun:a.example:0", "port"),
            ("stun:a.example:65536", "port"),
            ("stun:a.example:x", "port"),
            ("stun:a.example?transport=udp", "only query"),
            ("turn:a.example?transport=sctp", "only query"),
            ("turn:[::1", "closing ]"),
            ("turn:[nope]", "not an IPv6"),
            ("turn:[::1]x", "after the address"),
            ("", "starts with stun:"),
        ] {
            let error = IceUrl::parse(bad).err().unwrap_or_default();
            assert!(error.contains(says), "{bad:?}: {error:?}");
        }
    }
}
