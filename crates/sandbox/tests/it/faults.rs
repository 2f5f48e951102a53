//! Fault injection: per endpoint, used up as counted.

use super::*;

#[tokio::test]
async fn faults_are_injected_per_endpoint_and_used_up() {
    let env = start().await;
    let t = env.login(0, ALL).await;
    let tok = t["access_token"].as_str().unwrap();
    // Set over HTTP, as a test driving a separate process would.
    let r = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&json!({"endpoint": "GET /2/users/me", "fault": "rate_limited", "reset_after": 120, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", tok, None)
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["x-rate-limit-remaining"], "0");
    assert_eq!(
        r.headers()["x-rate-limit-reset"],
        (1_800_000_000_i64 + 120).to_string()
    );
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", tok, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the fault was used up");

    env.sandbox
        .add_fault("GET /2/tweets/search/recent=402".parse().unwrap());
    let r = env
        .api(
            reqwest::Method::GET,
            "/2/tweets/search/recent?query=x",
            tok,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["title"], "CreditsDepleted");
    // Other endpoints are unaffected.
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", tok, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    env.sandbox.add_fault(Fault {
        endpoint: "*".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: Some(2),
    });
    for _ in 0..2 {
        let r = env
            .api(reqwest::Method::GET, "/2/users/me", tok, None)
            .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    env.sandbox.clear_faults();

    // Refusing refresh tokens leaves the code grant alone.
    env.sandbox
        .add_fault("POST /2/oauth2/token=refuse-refresh*1".parse().unwrap());
    let (status, body) = env
        .token(
            true,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    env.login(1, ALL).await;
    let faults: Value = env
        .http
        .get(env.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults, json!([]));
}
