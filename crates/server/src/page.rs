//! The small HTML pages of the loopback listeners (`xmcp login`'s and the
//! bridge's callbacks).

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// A small HTML page of the loopback listeners: a title and a sentence,
/// escaped, with headers that keep it inert.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let esc = |s: &str| html_escape::encode_text(s).into_owned();
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>xmcp</title>\
         <meta name=viewport content=\"width=device-width\"></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto\">\
         <h1>{}</h1><p>{}</p></body></html>",
        esc(title),
        esc(body)
    );
    (
        status,
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response()
}
