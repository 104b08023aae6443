//! The browser client, embedded in the binary so `cargo run` serves it with nothing else
//! installed. Every response carries a Content-Security-Policy that forbids inline script.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    connect-src 'self' ws: wss:; img-src 'self' data: blob:; media-src 'self' blob:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// (path, content type, body): every file the page loads (a test in tests/tests/integration/http.rs
/// checks each of web-client/'s `.html`, `.css` and `.js` files is here).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../../web-client/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_str!("../../../web-client/index.html"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../../web-client/style.css"),
    ),
    (
        "/protocol.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/protocol.js"),
    ),
    (
        "/join-link.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/join-link.js"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/app.js"),
    ),
    (
        "/replay.html",
        "text/html; charset=utf-8",
        include_str!("../../../web-client/replay.html"),
    ),
    (
        "/replay.css",
        "text/css; charset=utf-8",
        include_str!("../../../web-client/replay.css"),
    ),
    (
        "/replay.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/replay.js"),
    ),
    (
        "/replay-model.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/replay-model.js"),
    ),
    (
        "/course.html",
        "text/html; charset=utf-8",
        include_str!("../../../web-client/course.html"),
    ),
    (
        "/course.css",
        "text/css; charset=utf-8",
        include_str!("../../../web-client/course.css"),
    ),
    (
        "/course.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/course.js"),
    ),
    (
        "/member-api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/member-api.js"),
    ),
    (
        "/quiz.html",
        "text/html; charset=utf-8",
        include_str!("../../../web-client/quiz.html"),
    ),
    (
        "/quiz.css",
        "text/css; charset=utf-8",
        include_str!("../../../web-client/quiz.css"),
    ),
    (
        "/quiz.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/quiz.js"),
    ),
    (
        "/media.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/media.js"),
    ),
    (
        "/devices.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/devices.js"),
    ),
    (
        "/strings.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/strings.js"),
    ),
    (
        "/dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/dom.js"),
    ),
    (
        "/moderation.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/moderation.js"),
    ),
    (
        "/gallery.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/gallery.js"),
    ),
    (
        "/attendance.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/attendance.js"),
    ),
    (
        "/quality.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/quality.js"),
    ),
    (
        "/polls.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/polls.js"),
    ),
    (
        "/livequiz.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web-client/livequiz.js"),
    ),
];

pub fn asset(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => {
            let mut response = (*body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// Security headers for every response.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
