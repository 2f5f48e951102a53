//! Media by URL: a post's images and video are given as URLs; xmcp fetches
//! them (guarded) and uploads them to the simulated X's media endpoints in
//! chunks, waits for processing, and attaches the media ids.

use crate::harness::*;
use serde_json::{Value, json};

const SCOPES: &str = "tweet.read tweet.write users.read media.write";

/// A PNG of `size` bytes (a real signature, then filler).
fn png(size: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.resize(size, 7);
    b
}

/// An MP4 of `size` bytes (an `ftyp` box, then filler); `fail` makes the
/// simulated X fail to process it.
fn mp4(size: usize, fail: bool) -> Vec<u8> {
    let mut b = if fail {
        b"FAILftypmp42".to_vec()
    } else {
        b"\0\0\0\x18ftypmp42".to_vec()
    };
    b.resize(size, 1);
    b
}

/// A web server on 127.0.0.1 serving media files: its base URL.
async fn media_server() -> (String, tokio_util::sync::CancellationToken) {
    use axum::http::header::CONTENT_TYPE;
    let files: Vec<(&'static str, &'static str, Vec<u8>)> = vec![
        ("/cat.png", "image/png", png(2_500_000)),
        ("/clip.mp4", "video/mp4", mp4(1_200_000, false)),
        ("/broken.mp4", "video/mp4", mp4(40_000, true)),
        ("/page.html", "text/html", b"<html>hi</html>".to_vec()),
        ("/liar.png", "image/png", b"<html>not a png</html>".to_vec()),
        ("/huge.png", "image/png", png(6 * 1024 * 1024)),
    ];
    let mut router = axum::Router::new();
    for (path, kind, body) in files {
        router = router.route(
            path,
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([(CONTENT_TYPE, kind)], body) }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
            .unwrap();
    });
    (base, stop)
}

async fn signed_in(app: &Client) -> String {
    let client_id = app.register_public().await;
    let mut a = Authorize::new(app, &client_id, "http://127.0.0.1:5555/callback");
    a.scope = SCOPES.into();
    a.tokens_as(app, "demo_user").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn text(r: &Value) -> String {
    r["content"][0]["text"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_an_image_and_one_with_a_video_given_by_url_carry_their_media() {
    let (files, _stop) = media_server().await;
    let app = builder(Backend::Sqlite)
        .settings(|s| s.tools.media_allow_private = Some(true))
        .spawn()
        .await;
    let token = signed_in(&app).await;

    let posted = app
        .call_tool(
            &token,
            "createPosts",
            json!({"text": "a cat", "media_urls": [format!("{files}/cat.png")]}),
        )
        .await;
    assert_eq!(posted["isError"], false, "{posted}");
    let id = posted["structuredContent"]["data"]["id"].as_str().unwrap();
    let read = app
        .call_tool(&token, "getPostsById", json!({"id": id}))
        .await;
    let keys = &read["structuredContent"]["data"]["attachments"]["media_keys"];
    assert!(
        keys[0].as_str().is_some_and(|k| k.starts_with("3_")),
        "{read}"
    );

    // A video is processed before it can be attached: xmcp waits.
    let posted = app
        .call_tool(
            &token,
            "createPosts",
            json!({"text": "a clip", "media_urls": [format!("{files}/clip.mp4")]}),
        )
        .await;
    assert_eq!(posted["isError"], false, "{posted}");
    let id = posted["structuredContent"]["data"]["id"].as_str().unwrap();
    let read = app
        .call_tool(&token, "getPostsById", json!({"id": id}))
        .await;
    let key = read["structuredContent"]["data"]["attachments"]["media_keys"][0].clone();
    assert!(key.as_str().is_some_and(|k| k.starts_with("7_")), "{read}");

    // Every step reached X and is in the audit trail, under the tool.
    let audit = app.app.store.list_audit(None, 0, 100).await.unwrap();
    let steps: Vec<String> = audit
        .iter()
        .rev()
        .filter(|e| e.tool == "createPosts")
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(
        steps,
        [
            "POST /2/media/upload/initialize",
            "POST /2/media/upload/{id}/append",
            "POST /2/media/upload/{id}/append",
            "POST /2/media/upload/{id}/append",
            "POST /2/media/upload/{id}/finalize",
            "POST /2/tweets",
            "POST /2/media/upload/initialize",
            "POST /2/media/upload/{id}/append",
            "POST /2/media/upload/{id}/append",
            "POST /2/media/upload/{id}/finalize",
            "GET /2/media/upload",
            "GET /2/media/upload",
            "POST /2/tweets",
        ]
    );

    // The tool on its own gives a media id to attach.
    let uploaded = app
        .call_tool(
            &token,
            "uploadMediaFromUrl",
            json!({"url": format!("{files}/cat.png")}),
        )
        .await;
    assert_eq!(uploaded["isError"], false, "{uploaded}");
    let media_id = uploaded["structuredContent"]["media_id"].as_str().unwrap();
    let posted = app
        .call_tool(
            &token,
            "createPosts",
            json!({"text": "the same cat", "media": {"media_ids": [media_id]}}),
        )
        .await;
    assert_eq!(posted["isError"], false, "{posted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_that_is_not_what_it_says_too_large_or_unprocessable_is_refused() {
    let (files, _stop) = media_server().await;
    let app = builder(Backend::Sqlite)
        .settings(|s| s.tools.media_allow_private = Some(true))
        .spawn()
        .await;
    let token = signed_in(&app).await;
    for (file, said) in [
        ("page.html", "not an image or video"),
        ("liar.png", "its content is not"),
        ("huge.png", "larger than 5 MB"),
        ("missing.png", "HTTP 404"),
        ("broken.mp4", "could not process"),
    ] {
        let r = app
            .call_tool(
                &token,
                "createPosts",
                json!({"text": format!("with {file}"), "media_urls": [format!("{files}/{file}")]}),
            )
            .await;
        assert_eq!(r["isError"], true, "{file}: {r}");
        assert!(text(&r).contains(said), "{file}: {r}");
    }
    // Nothing was posted.
    let mine = app
        .call_tool(&token, "searchPostsRecent", json!({"query": "with"}))
        .await;
    assert!(mine["structuredContent"]["data"].is_null(), "{mine}");
}

/// By default a URL may not point at the server's own machine or network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_at_a_loopback_or_private_address_is_refused() {
    let (files, _stop) = media_server().await;
    let app = spawn(Backend::Sqlite).await;
    let token = signed_in(&app).await;
    let port = files.rsplit(':').next().unwrap();
    for (url, said) in [
        (format!("{files}/cat.png"), "only https"),
        (
            format!("https://127.0.0.1:{port}/cat.png"),
            "special addresses",
        ),
        (
            format!("https://10.0.0.1:{port}/cat.png"),
            "special addresses",
        ),
        (format!("https://[::1]:{port}/cat.png"), "special addresses"),
        (
            format!("https://localhost:{port}/cat.png"),
            "may not be fetched",
        ),
    ] {
        let r = app
            .call_tool(&token, "uploadMediaFromUrl", json!({"url": url}))
            .await;
        assert_eq!(r["isError"], true, "{url}: {r}");
        assert!(text(&r).contains(said), "{url}: {r}");
    }
    // Nothing reached X's media endpoints.
    let audit = app.app.store.list_audit(None, 0, 100).await.unwrap();
    assert!(
        audit.iter().all(|e| !e.path.starts_with("/2/media")),
        "{audit:?}"
    );
}
