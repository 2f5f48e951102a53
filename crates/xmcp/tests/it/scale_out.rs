//! Scale-out: three real `xmcp serve` processes on one PostgreSQL database
//! behind one public address, started at once (concurrent migrations), a
//! flow that hops between them at every step, an instance killed mid-flow,
//! X's token refreshed once for calls spread over every instance, and our
//! refresh token rotated once under concurrent refreshes on every instance.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use xmcp_test_support::{
    Authorize, Client, XmcpProcess, finish_upstream, free_port, submit_consent,
};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xmcp"))
}

struct Cluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    public: String,
}

impl Cluster {
    async fn instance(&self, name: &str, port: u16) -> XmcpProcess {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let data = self.dir.path().join(name);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        XmcpProcess::start(
            &bin(),
            port,
            &["--data-dir", data.to_str().unwrap()],
            &env,
            log,
        )
        .await
    }
}

async fn sandbox_stats(x: &XmcpProcess) -> Value {
    x.http
        .get(x.url("/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_serve_one_flow_hopping_between_them() {
    if xmcp_store::testing::required("XMCP_TEST_DATABASE_URL", "the scale-out test").is_none() {
        return;
    }
    let Some(db) = xmcp_store::testing::TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [pa, pb, pc, px] = [free_port(), free_port(), free_port(), free_port()];
    // The load balancer's address is A's: the issuer, the resource and
    // X's callback are the same for every instance.
    let public = format!("http://127.0.0.1:{pa}");
    // X's access tokens live 3605 s and are refreshed 3600 s before they
    // expire: 5 s after each sign-in or refresh.
    let x = XmcpProcess::start_sandbox_with(
        &bin(),
        px,
        &format!("{public}/upstream/callback"),
        &["--access-token-ttl", "3605"],
        std::fs::File::create(dir.path().join("x.log")).unwrap(),
    )
    .await;
    let key = xmcp_crypto::envelope::DataKey::generate("k1").unwrap();
    let mut env = XmcpProcess::x_env(&x.base);
    env.extend([
        ("XMCP_DATABASE_URL".to_owned(), db.url.clone()),
        ("XMCP_PUBLIC_URL".to_owned(), public.clone()),
        (
            "XMCP_ENCRYPTION_KEY".to_owned(),
            secrecy::ExposeSecret::expose_secret(&key.export()).to_owned(),
        ),
        ("XMCP_X_REFRESH_MARGIN".to_owned(), "3600".to_owned()),
    ]);
    let cluster = Cluster { dir, env, public };

    // All three start at once: their migrations race on one database.
    let (a, b, c) = tokio::join!(
        cluster.instance("a", pa),
        cluster.instance("b", pb),
        cluster.instance("c", pc)
    );
    for i in [&a, &b, &c] {
        let ready = i.http.get(i.url("/ready")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
    }

    // Register on A, authorize on B.
    let client_id = a.register_public().await;
    let mut auth = Authorize::new(&b, &client_id, "http://127.0.0.1:7777/callback");
    auth.resource = Some(format!("{}/mcp", cluster.public));
    let page = auth.consent_page(&b).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Test Client"));

    // B dies (SIGKILL, no draining) right after serving the consent page.
    drop(b);

    // Consent on C, sign in at X, callback on A.
    let consented = submit_consent(&c, &page, &[("action", "approve")]).await;
    assert_eq!(consented.status(), StatusCode::SEE_OTHER);
    let back = finish_upstream(&a, &page.cookie, consented, "demo_user", None).await;
    let params: std::collections::HashMap<String, String> =
        back.query_pairs().into_owned().collect();
    assert_eq!(params["iss"], cluster.public);
    assert_eq!(params["state"], auth.state);

    // Token on C.
    let (status, tokens, _) = c.token(&auth.token_form(&params["code"])).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // B comes back (a supervisor restarted it); tool calls alternate.
    let b = cluster.instance("b2", pb).await;
    for (i, inst) in [&a, &b, &c, &a, &b, &c].into_iter().enumerate() {
        let me = inst.call_tool(&access, "whoami", json!({})).await;
        assert_eq!(
            me["structuredContent"]["username"], "demo_user",
            "call {i}: {me}"
        );
    }

    // X's token is now past its (shortened) refresh point: twelve calls
    // spread over the three instances make exactly one refresh at X.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let before = sandbox_stats(&x).await["refreshes"].as_u64().unwrap();
    let bases: Vec<String> = (0..12).map(|i| [&a, &b, &c][i % 3].base.clone()).collect();
    let results = join_all(bases.into_iter().map(|base| {
        let access = access.clone();
        tokio::spawn(async move {
            Client::new(base)
                .call_tool(&access, "getUsersMe", json!({}))
                .await
        })
    }))
    .await;
    for r in &results {
        assert_eq!(r["isError"], false, "{r}");
        assert_eq!(r["structuredContent"]["data"]["username"], "demo_user");
    }
    let after = sandbox_stats(&x).await["refreshes"].as_u64().unwrap();
    assert_eq!(
        after - before,
        1,
        "one X refresh for twelve calls on three instances"
    );

    // Refresh on B; the new access token works on A.
    let form = |rt: &str| {
        vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), rt.to_owned()),
            ("client_id".to_owned(), client_id.clone()),
        ]
    };
    let refresh_on = |inst: &XmcpProcess, rt: &str| {
        let req = inst.http.post(inst.url("/token")).form(&form(rt));
        tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        })
    };
    let (status, t2) = refresh_on(&b, &refresh).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{t2}");
    let access2 = t2["access_token"].as_str().unwrap().to_owned();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_owned();
    let me = a.call_tool(&access2, "whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["username"], "demo_user");

    // The same refresh token on all three at once: one rotation; the
    // parallel requests inside the grace window get the same successor.
    let parallel = join_all(
        [&a, &b, &c, &a, &b, &c]
            .into_iter()
            .map(|inst| refresh_on(inst, &refresh2)),
    )
    .await;
    let mut successors: Vec<String> = parallel
        .iter()
        .map(|(s, body)| {
            assert_eq!(*s, StatusCode::OK, "{body}");
            body["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    successors.dedup();
    assert_eq!(
        successors.len(),
        1,
        "one successor for concurrent refreshes"
    );
    let refresh3 = successors.remove(0);

    // Revoke on A: the grant is gone everywhere.
    let r = a
        .post_form(
            "/revoke",
            &[("token", &refresh3), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for inst in [&a, &b, &c] {
        let r = inst.mcp(Some(&access2), "tools/list", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let (status, body) = refresh_on(&c, &refresh3).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    drop(db);
}

/// Run tasks concurrently; their results in order.
async fn join_all<T: Send + 'static>(
    tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.into_iter().collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}
