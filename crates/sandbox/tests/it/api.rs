//! The simulated API: X's shapes and headers, scopes enforced as granted,
//! users kept apart, and the OpenAPI document.

use super::*;

#[tokio::test]
async fn posts_likes_bookmarks_and_follows_with_x_shapes_and_headers() {
    let env = start().await;
    let t = env.login(0, ALL).await;
    let tok = t["access_token"].as_str().unwrap();
    let me = env
        .api(
            reqwest::Method::GET,
            "/2/users/me?user.fields=created_at,public_metrics",
            tok,
            None,
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["x-rate-limit-limit"], "75");
    assert_eq!(me.headers()["x-rate-limit-remaining"], "74");
    assert!(me.headers().contains_key("x-rate-limit-reset"));
    assert!(me.headers().contains_key("x-transaction-id"));
    let me: Value = me.json().await.unwrap();
    let my_id = me["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(me["data"]["username"], "demo_user");
    assert!(
        me["data"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with(".000Z")
    );

    let created = env
        .api(
            reqwest::Method::POST,
            "/2/tweets",
            tok,
            Some(json!({"text": "hello from the sandbox test"})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let post = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["edit_history_tweet_ids"], json!([post]));
    // Duplicate content is refused, as X does.
    let dup = env
        .api(
            reqwest::Method::POST,
            "/2/tweets",
            tok,
            Some(json!({"text": "hello from the sandbox test"})),
        )
        .await;
    assert_eq!(dup.status(), StatusCode::FORBIDDEN);

    let found: Value = env
        .api(
            reqwest::Method::GET,
            "/2/tweets/search/recent?query=%22sandbox%20test%22&expansions=author_id",
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["meta"]["result_count"], 1);
    assert_eq!(found["data"][0]["id"], post.as_str());
    assert_eq!(found["includes"]["users"][0]["username"], "demo_user");
    let bad = env
        .api(
            reqwest::Method::GET,
            "/2/tweets/search/recent?query=x&post.fields=nope",
            tok,
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["title"], "Invalid Request");

    let liked: Value = env
        .api(
            reqwest::Method::POST,
            &format!("/2/users/{my_id}/likes"),
            tok,
            Some(json!({"tweet_id": post})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(liked, json!({"data": {"liked": true}}));
    let marked: Value = env
        .api(
            reqwest::Method::POST,
            &format!("/2/users/{my_id}/bookmarks"),
            tok,
            Some(json!({"tweet_id": post})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(marked, json!({"data": {"bookmarked": true}}));
    let marks: Value = env
        .api(
            reqwest::Method::GET,
            &format!("/2/users/{my_id}/bookmarks"),
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(marks["data"][0]["id"], post.as_str());
    // Acting as someone else is forbidden.
    let other = &env.sandbox.demo_users()[1].0;
    let r = env
        .api(
            reqwest::Method::GET,
            &format!("/2/users/{other}/bookmarks"),
            tok,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let followed: Value = env
        .api(
            reqwest::Method::POST,
            &format!("/2/users/{my_id}/following"),
            tok,
            Some(json!({"target_user_id": other})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(followed["data"]["following"], true);
    let deleted: Value = env
        .api(
            reqwest::Method::DELETE,
            &format!("/2/tweets/{post}"),
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deleted, json!({"data": {"deleted": true}}));
    let gone: Value = env
        .api(
            reqwest::Method::GET,
            &format!("/2/tweets/{post}"),
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        gone["errors"][0]["type"],
        "https://api.twitter.com/2/problems/resource-not-found"
    );
    assert_eq!(env.sandbox.stats().api_calls["demo_user"], 9);
}

#[tokio::test]
async fn scopes_are_enforced_as_granted() {
    let env = start().await;
    let t = env.login(0, "tweet.read users.read offline.access").await;
    let tok = t["access_token"].as_str().unwrap();
    let r = env
        .api(
            reqwest::Method::POST,
            "/2/tweets",
            tok,
            Some(json!({"text": "no write scope"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("tweet.write"));
    // The app-only token reads public data but not user context.
    let r = env
        .api(
            reqwest::Method::GET,
            "/2/users/by/username/demo_user",
            "app-token",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", "app-token", None)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_are_isolated_and_the_document_describes_the_api() {
    let env = start().await;
    let a = env.login(0, ALL).await;
    let b = env.login(1, ALL).await;
    for (t, name) in [(&a, "demo_user"), (&b, "second_user")] {
        let me: Value = env
            .api(
                reqwest::Method::GET,
                "/2/users/me",
                t["access_token"].as_str().unwrap(),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["data"]["username"], name);
    }
    let doc: Value = env
        .http
        .get(env.url("/2/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["servers"][0]["url"], env.base.as_str());
    assert_eq!(
        doc["paths"]["/2/users/me"]["get"]["operationId"],
        "getUsersMe"
    );
    assert_eq!(
        doc["paths"]["/2/tweets"]["post"]["security"][0]["OAuth2UserToken"],
        json!(["tweet.read", "tweet.write", "users.read"])
    );
}
