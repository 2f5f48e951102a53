//! X's OAuth rules as the simulated X keeps them: the login page and
//! exact callbacks, PKCE, Basic auth, single-use codes and rotating refresh
//! tokens.

use super::*;

#[tokio::test]
async fn the_login_page_lists_demo_users_and_refuses_unknown_callbacks() {
    let env = start().await;
    let (_, challenge) = pkce();
    let q = format!(
        "response_type=code&client_id=confidential&redirect_uri={}&state=s&code_challenge={challenge}&code_challenge_method=S256&scope=tweet.read%20users.read",
        urlencode(CALLBACK)
    );
    let page = env
        .http
        .get(env.url(&format!("/i/oauth2/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("@demo_user") && html.contains("@second_user"));
    assert!(html.contains("value=\"tweet.read\" checked"));
    // A look-alike callback gets an error page, never a redirect.
    let bad = q.replace("callback", "callbackx");
    let r = env
        .http
        .get(env.url(&format!("/i/oauth2/authorize?{bad}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    // No PKCE: refused.
    let r = env
        .http
        .get(env.url(&format!(
            "/i/oauth2/authorize?{}",
            q.replace("code_challenge=", "x=")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn code_exchange_enforces_pkce_client_auth_and_single_use() {
    let env = start().await;
    let (verifier, challenge) = pkce();
    let code = env
        .code("confidential", "tweet.read users.read", &challenge, 0)
        .await;
    let form = |v: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", v),
        ]
    };
    // Confidential client without Basic: X's "Missing valid authorization header".
    let mut no_basic = form("x");
    no_basic.push(("client_id", "confidential"));
    let (status, body) = env.token(false, &no_basic).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized_client");
    // Wrong verifier: the code is spent (single use, like X).
    let (status, body) = env
        .token(true, &form("wrong-verifier-wrong-verifier-wrong-verifier"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    let mut right = form("");
    right[3] = ("code_verifier", verifier.as_str());
    let (status, _) = env.token(true, &right).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a used code stays used");

    // A fresh code with the right verifier works; without offline.access there is no refresh token.
    let (verifier, challenge) = pkce();
    let code = env
        .code("confidential", "tweet.read users.read", &challenge, 0)
        .await;
    let (status, body) = env
        .token(
            true,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 7200);
    assert!(body.get("refresh_token").is_none());
    // Codes expire after 30 s.
    let (verifier, challenge) = pkce();
    let code = env
        .code("public", "tweet.read users.read", &challenge, 0)
        .await;
    env.clock.fetch_add(31, Ordering::SeqCst);
    let (status, _) = env
        .token(
            false,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
                ("client_id", "public"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_are_single_use() {
    let env = start().await;
    let first = env.login(0, ALL).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = env
        .token(
            true,
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    // The old one is gone.
    let (status, body) = env
        .token(
            true,
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    // Access tokens expire with the clock; the new one works.
    env.clock.fetch_add(7201, Ordering::SeqCst);
    let old = env
        .api(
            reqwest::Method::GET,
            "/2/users/me",
            first["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(old.headers()["content-type"], "application/problem+json");
    let (_, third) = env
        .token(
            true,
            &[("grant_type", "refresh_token"), ("refresh_token", r2)],
        )
        .await;
    let me = env
        .api(
            reqwest::Method::GET,
            "/2/users/me",
            third["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(env.sandbox.stats().refreshes, 2);
    assert_eq!(env.sandbox.stats().refused_refreshes, 1);
    // Revocation ends a token.
    let r = env
        .http
        .post(env.url("/2/oauth2/revoke"))
        .basic_auth("confidential", Some(SECRET))
        .form(&[("token", third["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me = env
        .api(
            reqwest::Method::GET,
            "/2/users/me",
            third["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}
