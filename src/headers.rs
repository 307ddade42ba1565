//! Response headers every listener sets, whatever answers: a page, a GIF, a Socket.IO
//! long-poll, an error of the admin API or of a layer, a redirect.

use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// Every response is what its Content-Type says: a GIF is never sniffed as a page.
pub fn nosniff() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
}
