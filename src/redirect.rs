//! `--http-redirect-port` (SPEC §11): a plain-HTTP listener whose only answer is a 308 to
//! the same path and query on the HTTPS port, so that `http://host/` typed into a browser
//! ends up on the secure page. 308 rather than 301 so a method and body are kept.

use axum::Router;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// The whole redirect service, for a TLS port of `tls_port`.
pub fn router(tls_port: u16) -> Router {
    Router::new()
        .fallback(
            move |uri: Uri, headers: HeaderMap| async move { redirect(&uri, &headers, tls_port) },
        )
        .layer(crate::headers::nosniff())
}

fn redirect(uri: &Uri, headers: &HeaderMap, tls_port: u16) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|host| host.parse::<Authority>().ok())
        // An absolute-form request line (`GET http://host/ HTTP/1.1`) names the host there.
        .or_else(|| uri.authority().cloned());
    match host.and_then(|host| location(&host, uri, tls_port)) {
        Some(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            "a Host header naming this server is required",
        )
            .into_response(),
    }
}

/// `https://<host without its port>:<tls_port><path and query>`; the port is left out when
/// it is HTTPS's own, 443. `None` for an authority with user info, which no browser sends
/// and which would otherwise end up in the redirect.
fn location(host: &Authority, uri: &Uri, tls_port: u16) -> Option<String> {
    if host.as_str().contains('@') {
        return None;
    }
    let path_and_query = uri.path_and_query().map_or("/", |path| path.as_str());
    let host = host.host();
    Some(if tls_port == 443 {
        format!("https://{host}{path_and_query}")
    } else {
        format!("https://{host}:{tls_port}{path_and_query}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location_for(host: &str, target: &str, tls_port: u16) -> Option<String> {
        location(&host.parse().unwrap(), &target.parse().unwrap(), tls_port)
    }

    #[test]
    fn the_host_keeps_its_name_and_takes_the_tls_port() {
        assert_eq!(
            location_for("chat.lan:8080", "/live?x=1&y=2", 8443).as_deref(),
            Some("https://chat.lan:8443/live?x=1&y=2")
        );
        assert_eq!(
            location_for("chat.lan", "/", 8443).as_deref(),
            Some("https://chat.lan:8443/")
        );
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(
            location_for("[::1]:8080", "/clips/a.gif", 8443).as_deref(),
            Some("https://[::1]:8443/clips/a.gif")
        );
    }

    #[test]
    fn the_default_https_port_is_left_out() {
        assert_eq!(
            location_for("example.org:80", "/?q", 443).as_deref(),
            Some("https://example.org/?q")
        );
    }

    #[test]
    fn an_absolute_form_target_keeps_only_its_path() {
        assert_eq!(
            location_for("example.org", "http://example.org:80/a?b", 8443).as_deref(),
            Some("https://example.org:8443/a?b")
        );
    }

    #[test]
    fn user_info_is_refused() {
        assert_eq!(location_for("evil@example.org", "/", 8443), None);
    }

    #[test]
    fn a_request_without_a_host_is_a_bad_request() {
        let response = redirect(&"/".parse().unwrap(), &HeaderMap::new(), 8443);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_answer_is_a_308_with_the_location() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        let response = redirect(&"/x?y".parse().unwrap(), &headers, 8443);
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://127.0.0.1:8443/x?y"
        );
    }
}
