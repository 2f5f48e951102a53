//! X bills per call: what a call costs is said with it, spending caps stop
//! a model before it spends more than the operator allows (on every
//! instance at once), every call is audited, and a retried write happens
//! once.

use crate::harness::*;
use serde_json::{Value, json};
use xmcp_auth::Clock;
use xmcp_store::{AuditEntry, Spend};

xmcp_test_support::both_backends!(
    a_model_like_loop_stops_at_the_cap_on_every_instance,
    the_deployment_cap_counts_every_user_and_only_set_caps_are_kept,
    a_retried_or_repeated_write_posts_once,
);

const SCOPES: &str = "tweet.read tweet.write users.read like.read like.write";

async fn token(app: &Client) -> String {
    let client_id = app.register_public().await;
    let mut a = Authorize::new(app, &client_id, "http://127.0.0.1:5555/callback");
    a.scope = SCOPES.into();
    a.tokens_as(app, "demo_user").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn x_calls(app: &TestApp) -> u64 {
    app.sandbox()
        .stats()
        .api_calls
        .get("demo_user")
        .copied()
        .unwrap_or(0)
}

fn text(r: &Value) -> String {
    r["content"][0]["text"].as_str().unwrap_or("").to_owned()
}

async fn audit(app: &TestApp) -> Vec<AuditEntry> {
    app.app.store.list_audit(None, 0, 1_000).await.unwrap()
}

/// A user's spend today, as the store counts it for the caps.
async fn spend(app: &TestApp, user_id: &str) -> Spend {
    let day = app.clock.now().div_euclid(86_400);
    app.app
        .store
        .get_spend(day, &format!("user:{user_id}"))
        .await
        .unwrap()
}

async fn a_model_like_loop_stops_at_the_cap_on_every_instance(backend: Backend) {
    // $0.05 a day: five reads of one user at $0.010 each.
    let cap = |s: &mut xmcp_server::Settings| s.tools.spend_cap_user = Some("0.05".into());
    let a = builder(backend).settings(cap).spawn().await;
    let b = builder(backend).settings(cap).sharing(&a).spawn().await;
    let token = token(&a).await;
    let before = x_calls(&a);

    let mut done = 0;
    let mut refused = None;
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app.call_tool(&token, "getUsersMe", json!({})).await;
        if r["isError"] == true {
            refused = Some(r);
            break;
        }
        // Each answer says what it cost and what was spent today.
        let cost = &r["_meta"]["xmcp.dev/cost"];
        assert_eq!(cost["cost_usd"], 0.01, "{r}");
        assert_eq!(cost["daily_cap_usd"], 0.05, "{r}");
        done += 1;
        assert!(
            (cost["spent_today_usd"].as_f64().unwrap() - 0.01 * f64::from(done)).abs() < 1e-9,
            "{r}"
        );
    }
    assert_eq!(done, 5);
    let refused = refused.expect("the sixth call is refused");
    let said = text(&refused);
    assert!(
        said.contains("$0.05") && said.contains("$0.00 left") && said.contains("max_results"),
        "{said}"
    );
    // The refused call never reached X; each of the five is counted once.
    assert_eq!(x_calls(&a), before + 5);
    let user_id = {
        let me = a.call_tool(&token, "whoami", json!({})).await;
        me["structuredContent"]["user_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        spend(&a, &user_id).await,
        Spend {
            spent: 50_000,
            held: 0
        }
    );
    let entries = audit(&a).await;
    assert_eq!(entries.len(), 5, "{entries:?}");
    for e in &entries {
        assert_eq!(
            (
                e.tool.as_str(),
                e.method.as_str(),
                e.path.as_str(),
                e.status,
                e.cost
            ),
            ("getUsersMe", "GET", "/2/users/me", 200, 10_000)
        );
        assert_eq!(e.user_id, user_id);
        assert!(e.transaction_id.is_some(), "{e:?}");
    }
    // A call that could cost more than what is left is refused before it
    // is sent, saying how to ask for less; a new UTC day starts afresh.
    a.clock.advance(86_400);
    let token = self::token(&a).await;
    let big = a
        .call_tool(
            &token,
            "searchPostsRecent",
            json!({"query": "x", "max_results": 100}),
        )
        .await;
    assert_eq!(big["isError"], true, "{big}");
    assert!(text(&big).contains("up to $0.50"), "{big}");
    let small = a
        .call_tool(
            &token,
            "searchPostsRecent",
            json!({"query": "x", "max_results": 10}),
        )
        .await;
    assert_eq!(small["isError"], false, "{small}");
}

/// With no cap per user, one for the deployment counts the calls of every
/// user; a counter without a cap is not kept at all.
async fn the_deployment_cap_counts_every_user_and_only_set_caps_are_kept(backend: Backend) {
    let app = builder(backend)
        .settings(|s| {
            s.tools.spend_cap_user = Some("off".into());
            s.tools.spend_cap_deployment = Some("0.03".into());
        })
        .spawn()
        .await;
    let day = app.clock.now().div_euclid(86_400);
    let mut tokens = vec![];
    for user in ["demo_user", "second_user"] {
        let client_id = app.register_public().await;
        let mut a = Authorize::new(&app, &client_id, "http://127.0.0.1:5555/callback");
        a.scope = SCOPES.into();
        tokens.push(
            a.tokens_as(&app, user).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for i in 0..3 {
        let r = app.call_tool(&tokens[i % 2], "getUsersMe", json!({})).await;
        assert_eq!(r["isError"], false, "{r}");
        // No user cap: nothing to say about the user's day.
        assert!(
            r["_meta"]["xmcp.dev/cost"].get("spent_today_usd").is_none(),
            "{r}"
        );
    }
    let refused = app.call_tool(&tokens[1], "getUsersMe", json!({})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        text(&refused).contains("this server's daily spending cap of $0.03"),
        "{refused}"
    );
    assert_eq!(
        app.app.store.get_spend(day, "deployment").await.unwrap(),
        Spend {
            spent: 30_000,
            held: 0
        }
    );
    let whoami = app.call_tool(&tokens[0], "whoami", json!({})).await;
    let user_id = whoami["structuredContent"]["user_id"].as_str().unwrap();
    assert_eq!(spend(&app, user_id).await, Spend::default());
    assert_eq!(audit(&app).await.len(), 3);
}

async fn a_retried_or_repeated_write_posts_once(backend: Backend) {
    let app = spawn(backend).await;
    let token = token(&app).await;
    let before = x_calls(&app);
    let post = |text: &str, key: Option<&str>| {
        let mut args = json!({"text": text});
        if let Some(k) = key {
            args["idempotency_key"] = k.into();
        }
        args
    };
    // A retry with the same key (after a timeout, say) returns the first
    // result; X is called once.
    let first = app
        .call_tool(&token, "createPosts", post("once, with a key", Some("k-1")))
        .await;
    assert_eq!(first["isError"], false, "{first}");
    let again = app
        .call_tool(&token, "createPosts", post("once, with a key", Some("k-1")))
        .await;
    assert_eq!(again["structuredContent"], first["structuredContent"]);
    assert!(again["_meta"]["xmcp.dev/repeat"].is_string(), "{again}");
    assert_eq!(x_calls(&app), before + 1);
    // The same key through call_tool is the same call.
    let through = app
        .call_tool(
            &token,
            "call_tool",
            json!({"name": "createPosts", "arguments": post("once, with a key", Some("k-1"))}),
        )
        .await;
    assert_eq!(through["structuredContent"], first["structuredContent"]);
    assert_eq!(x_calls(&app), before + 1);

    // Without a key, the same call within the window is made once too...
    let a = app
        .call_tool(&token, "createPosts", post("twice?", None))
        .await;
    let b = app
        .call_tool(&token, "createPosts", post("twice?", None))
        .await;
    assert_eq!(a["isError"], false, "{a}");
    assert_eq!(a["structuredContent"], b["structuredContent"]);
    assert_eq!(x_calls(&app), before + 2);
    // ...and made again once the window has passed (a like: X refuses a
    // post that repeats another's text).
    let like = json!({"tweet_id": a["structuredContent"]["data"]["id"]});
    for _ in 0..2 {
        let r = app.call_tool(&token, "likePost", like.clone()).await;
        assert_eq!(r["isError"], false, "{r}");
    }
    assert_eq!(x_calls(&app), before + 3);
    app.clock.advance(61);
    let again = app.call_tool(&token, "likePost", like).await;
    assert!(again["_meta"]["xmcp.dev/repeat"].is_null(), "{again}");
    assert_eq!(again["isError"], false, "{again}");
    assert_eq!(x_calls(&app), before + 4);

    // A failed write leaves nothing behind: its retry is made.
    let too_long = "x".repeat(300);
    let failed = app
        .call_tool(&token, "createPosts", post(&too_long, Some("k-2")))
        .await;
    assert_eq!(failed["isError"], true, "{failed}");
    let retried = app
        .call_tool(&token, "createPosts", post(&too_long, Some("k-2")))
        .await;
    assert_eq!(retried["isError"], true);
    assert!(retried["_meta"]["xmcp.dev/repeat"].is_null(), "{retried}");

    // The audit trail names each call to X, never what was posted.
    let entries = audit(&app).await;
    let posts: Vec<&AuditEntry> = entries.iter().filter(|e| e.tool == "createPosts").collect();
    assert_eq!(posts.len(), 4, "{entries:?}");
    assert!(
        posts
            .iter()
            .all(|e| e.method == "POST" && e.path == "/2/tweets")
    );
    assert_eq!(
        posts
            .iter()
            .filter(|e| e.status == 201 && e.cost == 15_000)
            .count(),
        2,
        "{posts:?}"
    );
    // Failed requests cost nothing.
    assert!(
        posts
            .iter()
            .filter(|e| e.status != 201)
            .all(|e| e.cost == 0)
    );
    assert_eq!(entries.iter().filter(|e| e.tool == "likePost").count(), 2);
    let stored = format!("{entries:?}");
    assert!(!stored.contains("twice?") && !stored.contains("once, with a key"));
}

/// X's own billing, as the simulated X does it: once the app's credits are
/// spent, calls are refused with 402, which reaches the model as X's
/// problem with a sentence saying what to do (and `GET /2/users/me` still
/// answers, as X was seen to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_xs_credits_run_out_the_model_is_told_why() {
    let app = spawn(Backend::Sqlite).await;
    let token = token(&app).await;
    // Two user reads' worth ($0.010 each).
    app.sandbox().set_credits(Some(20_000));
    for _ in 0..2 {
        let r = app
            .call_tool(
                &token,
                "getUsersByUsername",
                json!({"username": "second_user"}),
            )
            .await;
        assert_eq!(r["isError"], false, "{r}");
    }
    assert_eq!(app.sandbox().credits(), Some(0));
    let r = app
        .call_tool(
            &token,
            "getUsersByUsername",
            json!({"username": "second_user"}),
        )
        .await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("no credits left"), "{r}");
    assert_eq!(r["structuredContent"]["status"], 402);
    assert_eq!(r["structuredContent"]["title"], "CreditsDepleted");
    let me = app.call_tool(&token, "getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    // A refused call costs nothing in xmcp's ledger either.
    let audit = app.app.store.list_audit(None, 0, 100).await.unwrap();
    let refused = audit.iter().find(|e| e.status == 402).expect("audited");
    assert_eq!(refused.cost, 0);
}

/// An app whose access level does not include an endpoint: X's 403
/// `client-not-enrolled` reaches the model with what the operator can do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_not_enrolled_for_an_endpoint_is_explained() {
    let app = spawn(Backend::Sqlite).await;
    let token = token(&app).await;
    app.sandbox().add_fault(
        "GET /2/tweets/search/recent=not-enrolled*1"
            .parse()
            .unwrap(),
    );
    let r = app
        .call_tool(&token, "searchPostsRecent", json!({"query": "x"}))
        .await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("access level"), "{r}");
    assert_eq!(
        r["structuredContent"]["body"]["reason"],
        "client-not-enrolled"
    );
}
