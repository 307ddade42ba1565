//! Moderation (SPEC §10), for whoever runs the server: the API under `/admin/`, and the
//! moderator's page at `/admin` that drives it from a browser.
//!
//! Served only when `--admin-token` is set; without it `/admin` and every `/admin/` path
//! are simply unknown (404, [`disabled`]). Every API request must carry `Authorization:
//! Bearer <token>`, compared in constant time, or it gets 401 before any handler runs. The
//! page itself is the exception: a browser cannot send that header when it navigates, and
//! the page holds nothing but its script, which asks for the token and sends it with each
//! API call. Bodies and queries are parsed into types at the edge; what does not parse is
//! 400 with a sentence saying why. Every action is logged at `info`, without the token.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{any, delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::address::key::AddressKey;
use crate::app::App;
use crate::clip::now_ms;
use crate::http::{HttpError, canonical_key, page_policy};
use crate::identity::UserId;
use crate::metrics::AddressRefusal;
use crate::moderation::{Ban, BanView};
use crate::secret::Secret;
use crate::store::{Reported, StoreError};

/// The longest ban: a year.
const MAX_BAN_MINUTES: u64 = 525_600;
/// The longest reason a moderator may give, in characters.
const MAX_REASON_CHARS: usize = 500;

pub fn routes<A: Adapter>(token: &Secret, app: App, io: SocketIo<A>) -> Router<App> {
    let gate = Gate {
        token: BearerToken::new(token),
        app,
    };
    let api = Router::new()
        .route("/admin/clips", get(list_clips))
        .route("/admin/clips/{key}", delete(delete_clip::<A>))
        .route("/admin/bans", get(list_bans).post(add_ban::<A>))
        .route("/admin/bans/{user}", delete(lift_ban))
        .route("/admin/reports", get(list_reports))
        // Inside the token check: an unknown admin path is 404 only to whoever may know.
        .route("/admin/{*rest}", any(unknown))
        .layer(Extension(io))
        .layer(middleware::from_fn_with_state(gate, require_token));
    // Outside the token check: what a moderator's browser opens by address.
    let page = Router::new()
        .route("/admin", get(moderator_page))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .layer(page_policy());
    page.merge(api)
}

/// Without `--admin-token`: `/admin` and every `/admin/` path, whatever the method, are
/// simply unknown; the page's address answers as any unknown page does.
pub fn disabled() -> Router<App> {
    let no_page = || async { HttpError::NotFound };
    Router::new()
        .route("/admin", any(no_page))
        .route("/admin/", any(no_page))
        .route("/admin/{*rest}", any(|| async { StatusCode::NOT_FOUND }))
}

/// The moderator's page: markup and script only. Everything it shows comes from the API,
/// with the token the moderator types in, so the page is the same for everyone.
#[derive(Template)]
#[template(path = "admin.html")]
struct ModeratorPage;

async fn moderator_page() -> Result<Html<String>, HttpError> {
    Ok(Html(ModeratorPage.render()?))
}

/// The admin token, kept as its SHA-256 so that comparing takes the same time whatever
/// the length or content of the guess.
#[derive(Clone)]
struct BearerToken([u8; 32]);

impl BearerToken {
    fn new(token: &Secret) -> Self {
        Self(Sha256::digest(token.expose().as_bytes()).into())
    }

    fn matches(&self, offered: &str) -> bool {
        let offered: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
        self.0.ct_eq(&offered).into()
    }
}

/// What every API request passes first: the address's failed sign-ins, then the token.
#[derive(Clone)]
struct Gate {
    token: BearerToken,
    app: App,
}

/// An address that failed to sign in too often is answered 429 without its token being
/// looked at, until its minute is over (SPEC §13): a token cannot be guessed by brute force.
async fn require_token(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let Gate { token, app } = gate;
    let address = app.address_key(request.extensions(), request.headers());
    if let Some(address) = &address
        && let Some(wait) = app.limits.admin_retry_after(address).await
    {
        app.metrics.address_refused(AddressRefusal::Admin);
        return AdminError::TooManyFailures(wait).into_response();
    }
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match offered {
        Some(offered) if token.matches(offered) => next.run(request).await,
        _ => {
            if let Some(address) = &address {
                app.limits.admin_failed(address).await;
            }
            AdminError::Unauthorized.into_response()
        }
    }
}

/// What a moderator is told when a request fails.
enum AdminError {
    Unauthorized,
    /// Too many failed sign-ins from the address; it may ask again after this long.
    TooManyFailures(Duration),
    /// What the request needs could not be reached (in a cluster, another node).
    Unavailable(String),
    NotFound(&'static str),
    BadRequest(String),
    Internal(StoreError),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "send the admin token as `Authorization: Bearer <token>`".to_owned(),
            ),
            Self::TooManyFailures(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let seconds = seconds.max(1);
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({ "error": format!(
                        "too many failed sign-ins from this address; try again in {seconds} s"
                    ) })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
                return response;
            }
            Self::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
            Self::NotFound(what) => (StatusCode::NOT_FOUND, format!("no such {what}")),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            Self::Internal(error) => {
                tracing::error!(%error, "a moderation request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong on the server; see its log".to_owned(),
                )
            }
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error)
    }
}

async fn unknown() -> AdminError {
    AdminError::NotFound("admin route")
}

/// `DELETE /admin/clips/{key}`: the clip is gone everywhere, and every page is told.
async fn delete_clip<A: Adapter>(
    State(app): State<App>,
    Extension(io): Extension<SocketIo<A>>,
    Path(key): Path<String>,
) -> Result<StatusCode, AdminError> {
    let key = canonical_key(&key).ok_or(AdminError::NotFound("clip"))?;
    let removed = app.store.remove(vec![key]).await?;
    if removed.is_empty() {
        return Err(AdminError::NotFound("clip"));
    }
    tracing::info!(action = "delete_clip", %key, "moderation");
    announce_removed(&io, &removed).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /admin/bans`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BanRequest {
    user: String,
    minutes: u64,
    reason: Option<String>,
    #[serde(default)]
    purge: bool,
    /// Also ban the addresses the user is connected from or last sent a clip from.
    #[serde(default)]
    address: bool,
}

/// `POST /admin/bans`: keeps the user out until then; `purge` also removes their clips.
async fn add_ban<A: Adapter>(
    State(app): State<App>,
    Extension(io): Extension<SocketIo<A>>,
    body: Result<Json<BanRequest>, JsonRejection>,
) -> Result<Response, AdminError> {
    let Json(request) = body.map_err(|rejection| AdminError::BadRequest(rejection.body_text()))?;
    let user = UserId::parse(&request.user).ok_or_else(|| {
        AdminError::BadRequest("`user` must be a user id: 20 lower-case base32 characters".into())
    })?;
    if !(1..=MAX_BAN_MINUTES).contains(&request.minutes) {
        return Err(AdminError::BadRequest(format!(
            "`minutes` must be between 1 and {MAX_BAN_MINUTES}"
        )));
    }
    let reason = request.reason.filter(|reason| !reason.trim().is_empty());
    if reason
        .as_ref()
        .is_some_and(|reason| reason.chars().count() > MAX_REASON_CHARS)
    {
        return Err(AdminError::BadRequest(format!(
            "`reason` may be at most {MAX_REASON_CHARS} characters"
        )));
    }

    let addresses = if request.address {
        addresses_of(&app, &io, &user).await?
    } else {
        Vec::new()
    };
    let now = now_ms();
    let ban = Ban {
        user: user.clone(),
        until: now.saturating_add(request.minutes * 60_000),
        reason,
        addresses,
    };
    app.store.save_ban(&ban).await?;
    app.bans.put(ban.clone());
    app.bans_changed().await;
    if !ban.addresses.is_empty() {
        // Every socket from those addresses, on every node, whatever id it claims.
        let rooms: Vec<String> = ban.addresses.iter().map(AddressKey::room).collect();
        if let Err(error) = io.to(rooms).disconnect().await {
            tracing::warn!(%error, "closing a banned address's connections failed on some node");
        }
    }
    let purged = if request.purge {
        let keys = app.store.clips_by(user.clone(), now).await?;
        let removed = app.store.remove(keys).await?;
        announce_removed(&io, &removed).await;
        removed.len()
    } else {
        0
    };
    // How many addresses, never which: not even their keyed hashes reach the log.
    let addresses = ban.addresses.len();
    tracing::info!(action = "ban", %user, until = %crate::error::until_text(ban.until), purged, addresses, "moderation");
    let body = json!({
        "user": ban.user,
        "until": ban.until,
        "reason": ban.reason,
        "purged": purged,
        "address": addresses > 0,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The addresses `user` is connected from, on any node, and the one they last sent a
/// clip from: what `"address": true` bans.
async fn addresses_of<A: Adapter>(
    app: &App,
    io: &SocketIo<A>,
    user: &UserId,
) -> Result<Vec<AddressKey>, AdminError> {
    let unreachable = |error: &dyn std::fmt::Display| {
        tracing::warn!(%error, "finding a user's connections failed");
        AdminError::Unavailable(
            "the user's connections could not be listed on every node; try again".into(),
        )
    };
    let mut addresses = Vec::new();
    let sockets = io
        .to(user.room())
        .fetch_sockets()
        .await
        .map_err(|error| unreachable(&error))?;
    for socket in sockets {
        let rooms = socket.rooms().await.map_err(|error| unreachable(&error))?;
        addresses.extend(rooms.iter().filter_map(|room| AddressKey::from_room(room)));
    }
    addresses.extend(app.limits.last_clip_address(user).await);
    addresses.sort();
    addresses.dedup();
    Ok(addresses)
}

/// `GET /admin/bans`: the bans in force, the one that ends first first; whether each
/// covers addresses, never which.
async fn list_bans(State(app): State<App>) -> Json<Vec<BanView>> {
    Json(
        app.bans
            .in_force(now_ms())
            .into_iter()
            .map(BanView::from)
            .collect(),
    )
}

/// `DELETE /admin/bans/{user}`.
async fn lift_ban(
    State(app): State<App>,
    Path(user): Path<String>,
) -> Result<StatusCode, AdminError> {
    let user = UserId::parse(&user).ok_or(AdminError::NotFound("ban"))?;
    let existed = app.store.remove_ban(user.clone()).await?;
    app.bans.lift(&user);
    app.bans_changed().await;
    if !existed {
        return Err(AdminError::NotFound("ban"));
    }
    tracing::info!(action = "lift_ban", %user, "moderation");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/reports`: `[{ key, reports, clip }]`, most reported first.
async fn list_reports(State(app): State<App>) -> Result<Response, AdminError> {
    Ok(Json(app.store.reports(now_ms()).await?).into_response())
}

/// How many clips `GET /admin/clips` lists: `?limit=N`, or [`ClipLimit::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClipLimit(usize);

impl ClipLimit {
    const DEFAULT: Self = Self(50);
    /// Enough to see a flood; few enough that one request stays small.
    const MAX: usize = 200;

    /// The limit the query asks for; the only parameter it may hold is `limit`, once.
    fn parse(query: &[(String, String)]) -> Result<Self, String> {
        match query {
            [] => Ok(Self::DEFAULT),
            [(name, value)] if name == "limit" => value
                .parse()
                .ok()
                .filter(|limit| (1..=Self::MAX).contains(limit))
                .map(Self)
                .ok_or_else(|| {
                    format!(
                        "`limit` must be a whole number from 1 to {}, not {value:?}",
                        Self::MAX
                    )
                }),
            _ => Err(format!(
                "the only query parameter is `limit`, once: a whole number from 1 to {}",
                Self::MAX
            )),
        }
    }
}

/// `GET /admin/clips?limit=N`: the newest unexpired clips, newest first, each with its
/// report count, so that spam nobody reported can be acted on too. The entries have the
/// shape of `GET /admin/reports`'s ([`Reported`]), with 0 for a clip nobody reported.
async fn list_clips(
    State(app): State<App>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|rejection| AdminError::BadRequest(rejection.body_text()))?;
    let ClipLimit(limit) = ClipLimit::parse(&query).map_err(AdminError::BadRequest)?;
    let now = now_ms();
    let clips = app.store.recent(limit, now).await?;
    let counts: HashMap<Uuid, usize> = app
        .store
        .reports(now)
        .await?
        .into_iter()
        .map(|reported| (reported.key, reported.reports))
        .collect();
    let newest_first: Vec<Reported> = clips
        .into_iter()
        .rev()
        .map(|clip| Reported {
            key: clip.key,
            reports: counts.get(&clip.key).copied().unwrap_or(0),
            clip,
        })
        .collect();
    Ok(Json(newest_first).into_response())
}

/// Tells every page to drop these clips.
async fn announce_removed<A: Adapter>(io: &SocketIo<A>, keys: &[Uuid]) {
    for key in keys {
        if let Err(error) = io.emit("message:removed", &json!({ "key": key })).await {
            tracing::warn!(%error, %key, "announcing a removed clip failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_clip_limit_is_a_whole_number_from_1_to_200_and_50_unless_asked() {
        assert_eq!(ClipLimit::parse(&[]), Ok(ClipLimit(50)));
        for (text, limit) in [("1", 1), ("200", 200), ("7", 7)] {
            assert_eq!(
                ClipLimit::parse(&query(&[("limit", text)])),
                Ok(ClipLimit(limit))
            );
        }
        for text in [
            "0",
            "201",
            "-1",
            "1.5",
            "",
            "ten",
            " 5",
            "99999999999999999999999",
        ] {
            let refused = ClipLimit::parse(&query(&[("limit", text)])).unwrap_err();
            assert!(refused.contains("from 1 to 200"), "{text:?}: {refused}");
        }
    }

    #[test]
    fn a_clip_query_holds_limit_once_and_nothing_else() {
        for pairs in [
            query(&[("limt", "5")]),
            query(&[("limit", "5"), ("limit", "6")]),
            query(&[("limit", "5"), ("user", "x")]),
        ] {
            let refused = ClipLimit::parse(&pairs).unwrap_err();
            assert!(
                refused.contains("only query parameter is `limit`"),
                "{pairs:?}: {refused}"
            );
        }
    }
}
