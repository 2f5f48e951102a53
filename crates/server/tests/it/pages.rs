//! The pages a person sees: the consent page and the simulated X's sign-in
//! page, read as served and as headless Chromium renders them.

use crate::harness::*;
use reqwest::StatusCode;

const REDIRECT: &str = "http://127.0.0.1/callback";

/// An authorization request for reading posts, posting and reading DMs.
async fn asking_to_post(app: &TestApp) -> Authorize {
    let client_id = app.register_public().await;
    let mut a = Authorize::new(app, &client_id, REDIRECT);
    a.scope = "tweet.read tweet.write dm.read".into();
    a
}

/// Each scope in plain words, what changes things apart from what reads,
/// and the daily cap the user's calls to X have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_page_says_in_plain_words_what_a_client_may_do_and_spend() {
    let app = spawn(Backend::Sqlite).await;
    let page = asking_to_post(&app).await.consent_page(&app).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.html;
    assert!(
        html.contains(
            "<p>It could change things as you:</p><ul class=\"scopes write\">\
             <li>Post, reply, repost and delete posts as you <code>tweet.write</code></li></ul>"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<ul class=\"scopes read\"><li>Posts and timelines you can see, and search <code>tweet.read</code></li>\
             <li>Your direct messages <code>dm.read</code></li></ul>"
        ),
        "{html}"
    );
    assert!(
        html.contains("limited to $1.00 a day (UTC)"),
        "the default per-user cap is shown: {html}"
    );
}

/// Chromium renders `url` as a user's browser would: its DOM, and a
/// screenshot at `png`.
async fn chromium(chromium: &str, url: &str, png: &std::path::Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: Vec<String>| {
        let mut c = tokio::process::Command::new(chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=800,1100",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        c
    };
    let dom = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(vec!["--dump-dom".into()]).output(),
    )
    .await
    .expect("Chromium answered within a minute")
    .unwrap();
    assert!(dom.status.success(), "Chromium failed on {url}");
    let shot = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(vec![format!("--screenshot={}", png.display())]).status(),
    )
    .await
    .expect("Chromium answered within a minute")
    .unwrap();
    assert!(shot.success());
    let image = std::fs::read(png).unwrap();
    assert!(image.starts_with(b"\x89PNG"), "a PNG screenshot");
    // A blank page compresses to a few kilobytes; text and colours do not.
    assert!(image.len() > 20_000, "{} bytes", image.len());
    String::from_utf8(dom.stdout).unwrap()
}

/// The consent page and the simulated X's sign-in page in a real browser:
/// the words, the write scopes apart, and one stylesheet for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shows_the_consent_page_and_the_simulated_x_alike() {
    let Some(browser) = required("XMCP_TEST_CHROMIUM", "the headless Chromium page check") else {
        return;
    };
    let app = spawn(Backend::Sqlite).await;
    let a = asking_to_post(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let consent_url = app.url(&format!("/authorize?{}", a.query()));
    let dom = chromium(&browser, &consent_url, &dir.path().join("consent.png")).await;
    for shown in [
        "<ul class=\"scopes write\"><li>Post, reply, repost and delete posts as you",
        "Your direct messages",
        "limited to $1.00 a day (UTC)",
        "ul.scopes.write li{",
    ] {
        assert!(dom.contains(shown), "{shown} is not on the page: {dom}");
    }

    // "Allow" leads to the simulated X's sign-in page.
    let page = a.consent_page(&app).await;
    let r = submit_consent(&app, &page, &[("action", "approve")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_x = r.headers()["location"].to_str().unwrap().to_owned();
    let dom = chromium(&browser, &to_x, &dir.path().join("x.png")).await;
    assert!(dom.contains("wants to access your X account"), "{dom}");
    let stylesheet = include_str!("../../../../assets/pages.css");
    assert!(
        dom.contains(stylesheet.trim()),
        "the simulated X uses xmcp's stylesheet: {dom}"
    );
    if let Ok(keep) = std::env::var("XMCP_TEST_SCREENSHOTS") {
        for name in ["consent.png", "x.png"] {
            std::fs::copy(
                dir.path().join(name),
                std::path::Path::new(&keep).join(name),
            )
            .unwrap();
        }
    }
}
