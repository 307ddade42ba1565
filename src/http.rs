//! The HTTP routes of SPEC §4. Socket.IO is mounted beside them in [`crate::server`].

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

use crate::app::App;
use crate::call::room::RoomName;
use crate::clip::{Clip, Rendition, now_ms};
use crate::store::StoreError;

/// What a page may load: only the server's own scripts, styles, images, media and sockets
/// (SPEC §11), plus the camera's `blob:`/`mediastream:` and the `data:` identicons; no
/// inline script, no plugin, no framing by another site.
const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<App> {
    let pages = Router::new()
        .route("/", get(chat_page))
        .route("/live", get(live_page))
        .route("/call", get(new_call))
        .route("/call/{room}", get(call_page))
        .layer(page_policy());
    Router::new()
        .merge(pages)
        .route("/clips/{file}", get(clip_file))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(get(public_file))
}

/// The Content-Security-Policy header of every page, the moderator's included.
pub(crate) fn page_policy() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    )
}

/// An HTTP failure: the client learns the status, the log learns the cause.
pub enum HttpError {
    NotFound,
    /// The store cannot be reached just now (a cluster's Redis is down): try again.
    Unavailable,
    Internal(String),
}

impl HttpError {
    fn store(error: StoreError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not found").into_response(),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "the clip store cannot be reached just now; try again",
            )
                .into_response(),
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

impl<E: std::error::Error> From<E> for HttpError {
    fn from(error: E) -> Self {
        Self::Internal(error.to_string())
    }
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    /// Rendered into the page so the first paint already shows the recent clips.
    clips: Vec<Clip>,
}

async fn chat_page(State(app): State<App>) -> Result<Html<String>, HttpError> {
    let clips = match app.store.recent(app.config.replay, now_ms()).await {
        Ok(clips) => clips,
        // The page is still worth having: it can record, and its socket gets the replay
        // once the store is back.
        Err(error) if error.is_unavailable() => {
            tracing::warn!(%error, "the chat page is served without the recent clips");
            Vec::new()
        }
        Err(error) => return Err(HttpError::store(error)),
    };
    Ok(Html(ChatPage { clips }.render()?))
}

/// The live room's state arrives over the socket, so its page is the same for everyone.
#[derive(Template)]
#[template(path = "live.html")]
struct LivePage;

async fn live_page() -> Result<Html<String>, HttpError> {
    Ok(Html(LivePage.render()?))
}

/// `/call`: a call of its own for whoever asks, at a name nobody can guess. Never cached:
/// each visit is a new call.
async fn new_call() -> impl IntoResponse {
    let room = RoomName::random();
    (
        [(header::CACHE_CONTROL, "no-store")],
        Redirect::to(&format!("/call/{}", room.as_str())),
    )
}

/// A call's state arrives over the socket; the page only needs to know which call it is.
#[derive(Template)]
#[template(path = "call.html")]
struct CallPage {
    /// A valid room name (`[a-z0-9-]{1,64}`), so it is safe in a URL and in the page.
    room: String,
}

/// `/call/{room}`: any name that is not a valid room name is not a call.
async fn call_page(Path(room): Path<String>) -> Result<Html<String>, HttpError> {
    let room = RoomName::parse(&room).ok_or(HttpError::NotFound)?;
    let page = CallPage {
        room: room.as_str().to_owned(),
    };
    Ok(Html(page.render()?))
}

/// `/clips/<key>.gif`, `.mp4` and `.jpg` (SPEC §4, §12): anything that is not a key as the
/// server writes it, followed by one of those, is simply unknown. `HEAD` is answered by
/// the same handler, axum dropping the body.
async fn clip_file(
    State(app): State<App>,
    Path(file): Path<String>,
    request_headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (key, rendition) = file
        .rsplit_once('.')
        .and_then(|(key, extension)| {
            Some((canonical_key(key)?, Rendition::from_extension(extension)?))
        })
        .ok_or(HttpError::NotFound)?;
    let now = now_ms();
    let (clip, bytes) = app
        .store
        .file(key, rendition, now)
        .await
        .map_err(HttpError::store)?
        .ok_or(HttpError::NotFound)?;

    // A key names one clip's files forever, so it is a strong validator. The GIF's ETag is
    // the bare key, as it was before clips had other files.
    let etag = match rendition {
        Rendition::Gif => format!("\"{key}\""),
        other => format!("\"{key}.{}\"", other.extension()),
    };
    let cache_control = format!("public, max-age={}, immutable", clip.seconds_left(now));
    let headers = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, cache_control),
    ];
    if already_has(&request_headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(rendition.content_type()),
    )];
    if rendition != Rendition::Video {
        return Ok((headers, content_type, bytes).into_response());
    }
    // Safari plays video only from a server that answers byte ranges.
    let accept_ranges = [(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"))];
    match byte_range(&request_headers, &etag, bytes.len()) {
        WhichBytes::All => Ok((headers, content_type, accept_ranges, bytes).into_response()),
        WhichBytes::Range(range) => {
            let content_range = format!(
                "bytes {}-{}/{}",
                range.start(),
                range.end(),
                bytes.len()
            );
            let part = bytes[*range.start() as usize..=*range.end() as usize].to_vec();
            Ok((
                StatusCode::PARTIAL_CONTENT,
                headers,
                content_type,
                accept_ranges,
                [(header::CONTENT_RANGE, content_range)],
                part,
            )
                .into_response())
        }
        WhichBytes::Unsatisfiable => Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            headers,
            accept_ranges,
            [(header::CONTENT_RANGE, format!("bytes */{}", bytes.len()))],
        )
            .into_response()),
    }
}

/// What a request for a file of `length` bytes asks for.
enum WhichBytes {
    All,
    Range(std::ops::RangeInclusive<u64>),
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// The one byte range asked for (RFC 9110 §14), parsed by `http-range-header`. The whole
/// file when there is no `Range`, when `If-Range` names another version, when the header
/// does not parse (a server may ignore it), or when it asks for several ranges: browsers
/// ask for one, and a multipart answer would buy nothing here.
fn byte_range(request_headers: &HeaderMap, etag: &str, length: usize) -> WhichBytes {
    let Some(range) = request_headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
    else {
        return WhichBytes::All;
    };
    if let Some(if_range) = request_headers.get(header::IF_RANGE)
        && if_range.as_bytes() != etag.as_bytes()
    {
        return WhichBytes::All;
    }
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        return WhichBytes::All;
    };
    match parsed.validate(length as u64) {
        Ok(ranges) if ranges.len() == 1 => WhichBytes::Range(ranges[0].clone()),
        Ok(_) => WhichBytes::All,
        Err(_) => WhichBytes::Unsatisfiable,
    }
}

/// The key in `text` if `text` is spelt exactly as the server spells keys (lower-case,
/// hyphenated). `Uuid::try_parse` also takes upper case, braces, `urn:uuid:` and no
/// hyphens; one spelling per clip keeps URLs, ETags and caches one-to-one with clips.
pub(crate) fn canonical_key(text: &str) -> Option<Uuid> {
    let key = Uuid::try_parse(text).ok()?;
    let mut spelt = Uuid::encode_buffer();
    (key.hyphenated().encode_lower(&mut spelt) == text).then_some(key)
}

async fn healthz(State(app): State<App>) -> Response {
    // A node cut off from the cluster's Redis cannot deliver across nodes: a balancer
    // should send newcomers elsewhere.
    if !app.reaches_the_others() {
        return (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable").into_response();
    }
    match app.store.check().await {
        Ok(()) => "ok".into_response(),
        Err(error) => {
            tracing::error!(%error, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    app.metrics
        .clips_stored
        .set(i64::try_from(app.store.len()).unwrap_or(i64::MAX));
    let census = app.calls.census();
    app.metrics
        .calls_in_progress
        .set(i64::try_from(census.calls).unwrap_or(i64::MAX));
    app.metrics
        .call_participants
        .set(i64::try_from(census.participants).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}

/// The browser assets, built into the binary so it runs from any directory.
#[derive(rust_embed::Embed)]
#[folder = "public/"]
struct PublicFiles;

async fn public_file(uri: Uri, request_headers: HeaderMap) -> Result<Response, HttpError> {
    let path = uri.path().trim_start_matches('/');
    let file = PublicFiles::get(path).ok_or(HttpError::NotFound)?;
    let hash: String = file.metadata.sha256_hash()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let etag = format!("\"{hash}\"");
    let headers = [
        (header::ETAG, etag.clone()),
        // Assets change with each release; the browser revalidates them by ETag.
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    if already_has(&request_headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let content_type = [(header::CONTENT_TYPE, file.metadata.mimetype().to_owned())];
    Ok((headers, content_type, file.data).into_response())
}

/// Whether the request's `If-None-Match` names `etag`, so a 304 will do.
fn already_has(request_headers: &HeaderMap, etag: &str) -> bool {
    request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_page_knows_its_room() {
        let page = CallPage {
            room: "team-standup".into(),
        }
        .render()
        .unwrap();
        assert!(page.contains(r#"data-room="team-standup""#), "{page}");
    }

    #[test]
    fn only_the_canonical_spelling_of_a_key_names_a_clip() {
        let key = Uuid::now_v7();
        let canonical = key.hyphenated().to_string();
        assert_eq!(canonical_key(&canonical), Some(key));
        for other in [
            canonical.to_uppercase(),
            key.simple().to_string(),
            key.braced().to_string(),
            key.urn().to_string(),
            format!("{canonical} "),
            format!("../{canonical}"),
            String::new(),
        ] {
            assert_eq!(canonical_key(&other), None, "{other:?}");
        }
    }
}
