//! Whole OAuth flows over real HTTP, as an MCP client drives them.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

xmcp_test_support::both_backends!(
    dcr_client_discovers_registers_authorizes_calls_refreshes_revokes,
    cimd_client_served_by_the_test,
    static_confidential_client_basic_and_post_with_introspection,
    two_users_are_isolated,
    jwt_access_tokens_verify_with_the_published_key_set_and_rotate,
);

async fn dcr_client_discovers_registers_authorizes_calls_refreshes_revokes(backend: Backend) {
    let app = spawn(backend).await;

    // Discovery starts from a 401 on the MCP endpoint.
    let r = app.mcp(None, "initialize", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        !challenge.contains("error="),
        "no error code without credentials: {challenge}"
    );
    let prm_url = resource_metadata(r.headers());
    assert_eq!(
        prm_url,
        app.url("/.well-known/oauth-protected-resource/mcp")
    );
    let prm: Value = app
        .http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], app.url("/mcp"));
    assert_eq!(prm["authorization_servers"], json!([app.base]));
    assert!(
        !prm["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access"))
    );
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let meta: Value = app
        .http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], issuer);
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        meta["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    // No OpenID Connect discovery document: it would have to name an ID
    // token signing algorithm and a key set for ID tokens we never issue.
    // MCP clients probe RFC 8414 first (for an issuer without a path) and
    // stop at the document above.
    let oidc = app
        .http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(oidc.status(), StatusCode::NOT_FOUND);

    // Register, authorize, consent, token.
    let client_id = app.register_public().await;
    let auth = Authorize::new(&app, &client_id, "http://127.0.0.1:49152/callback");
    let tokens = auth.tokens(&app).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("xmcp_at_"));
    assert!(refresh.starts_with("xmcp_rt_"));
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "tweet.read users.read");

    // Tools see the principal.
    let me = app.call_tool(access, "whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["subject"], "x:1850000000000000001");
    assert_eq!(me["structuredContent"]["client_id"], client_id);
    let echo = app
        .call_tool(access, "echo", json!({"message": "hello"}))
        .await;
    assert_eq!(echo["content"][0]["text"], "hello");
    let names = |list: Value| -> Vec<String> {
        list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = names(
        app.mcp_at(
            "/mcp",
            Some(access),
            &[("x-mcp-toolsets", "all")],
            "tools/list",
            json!({}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap(),
    );
    // Ours, then one per operation of the simulated X's OpenAPI document.
    assert_eq!(all[..3], ["whoami", "echo", "rate_limits"]);
    assert!(all.contains(&"getUsersMe".to_owned()), "{all:?}");
    assert!(all.contains(&"createPosts".to_owned()), "{all:?}");
    let operations = app.sandbox().openapi()["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum::<usize>();
    // And the tool that uploads media from a URL.
    assert!(all.contains(&"uploadMediaFromUrl".to_owned()), "{all:?}");
    assert_eq!(all.len(), 3 + operations + 1);
    // By default: ours, the core operations, and the search tools that
    // reach the rest.
    let listed = names(
        app.mcp(Some(access), "tools/list", json!({}))
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!(listed[..3], ["whoami", "echo", "rate_limits"]);
    assert_eq!(
        listed[listed.len() - 3..],
        ["search_tools", "describe_tools", "call_tool"]
    );
    assert!(listed.contains(&"createPosts".to_owned()), "{listed:?}");
    assert!(listed.len() < all.len(), "{listed:?}");

    // Refresh rotates.
    let (status, refreshed, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
            ("resource", &app.url("/mcp")),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let access2 = refreshed["access_token"].as_str().unwrap();
    let refresh2 = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(access2, access);
    assert_ne!(refresh2, refresh);
    assert_eq!(
        app.call_tool(access2, "whoami", json!({})).await["structuredContent"]["subject"],
        "x:1850000000000000001"
    );

    // Revoking the refresh token revokes the grant: tokens stop working.
    let r = app
        .post_form(
            "/revoke",
            &[
                ("token", refresh2),
                ("token_type_hint", "refresh_token"),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.mcp(Some(access2), "tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let (status, body, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh2),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Revoking garbage is still 200 (RFC 7009 §2.2).
    let r = app
        .post_form(
            "/revoke",
            &[("token", "garbage"), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Serve a client metadata document on 127.0.0.1 and return its URL.
pub async fn serve_metadata_document(redirect: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/oauth/client.json",
        listener.local_addr().unwrap().port()
    );
    let doc = json!({
        "client_id": url,
        "client_name": "Metadata Document Client",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    let router = axum::Router::new().route(
        "/oauth/client.json",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

async fn cimd_client_served_by_the_test(backend: Backend) {
    let app = spawn(backend).await;
    let client_id = serve_metadata_document("http://127.0.0.1/callback").await;
    let auth = Authorize::new(&app, &client_id, "http://127.0.0.1:40000/callback");
    let page = auth.consent_page(&app).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Metadata Document Client"));
    assert!(page.html.contains("described by a document at 127.0.0.1"));
    let tokens = auth.tokens(&app).await;
    let me = app
        .call_tool(
            tokens["access_token"].as_str().unwrap(),
            "whoami",
            json!({}),
        )
        .await;
    assert_eq!(me["structuredContent"]["client_id"], client_id);

    // A redirect URI the document does not list is refused without redirecting.
    let bad = Authorize::new(&app, &client_id, "http://127.0.0.1:40000/other");
    let r = Authorize::get_raw(&app, &bad.query()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
}

async fn static_confidential_client_basic_and_post_with_introspection(backend: Backend) {
    let app = spawn(backend).await;
    let redirect = "https://app.example.com/callback";
    for method in ["basic", "post"] {
        let auth = Authorize::new(&app, CONFIDENTIAL_ID, redirect);
        let code = auth.code(&app).await;
        let mut form = auth.token_form(&code);
        let req = app.http.post(app.url("/token"));
        let req = if method == "basic" {
            form.retain(|(k, _)| *k != "client_id");
            req.basic_auth(CONFIDENTIAL_ID, Some(CONFIDENTIAL_SECRET))
        } else {
            form.push(("client_secret", CONFIDENTIAL_SECRET));
            req
        };
        let r = req.form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{method}");
        let tokens: Value = r.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap();

        let intro: Value = app
            .http
            .post(app.url("/introspect"))
            .basic_auth(CONFIDENTIAL_ID, Some(CONFIDENTIAL_SECRET))
            .form(&[("token", access)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(intro["active"], true);
        assert_eq!(intro["aud"], app.url("/mcp"));
        assert_eq!(intro["iss"], app.base);
        assert_eq!(intro["sub"], "x:1850000000000000001");
        assert_eq!(intro["client_id"], CONFIDENTIAL_ID);

        let r = app
            .http
            .post(app.url("/revoke"))
            .basic_auth(CONFIDENTIAL_ID, Some(CONFIDENTIAL_SECRET))
            .form(&[("token", access)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let intro: Value = app
            .http
            .post(app.url("/introspect"))
            .form(&[
                ("token", access),
                ("client_id", CONFIDENTIAL_ID),
                ("client_secret", CONFIDENTIAL_SECRET),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(intro, json!({"active": false}));
    }
    // Introspection requires authentication.
    let r = app.post_form("/introspect", &[("token", "x")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A public client may not introspect.
    let r = app
        .post_form(
            "/introspect",
            &[("token", "x"), ("client_id", PUBLIC_STATIC_ID)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn two_users_are_isolated(backend: Backend) {
    let app = spawn(backend).await;
    let client_id = app.register_public().await;
    let a = Authorize::new(&app, &client_id, "http://127.0.0.1:5000/callback");
    let code_a = {
        let loc = a.approve_as(&app, "demo_user").await;
        loc.query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    };
    let b = Authorize::new(&app, &client_id, "http://127.0.0.1:5000/callback");
    let code_b = {
        let loc = b.approve_as(&app, "second_user").await;
        loc.query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    };
    let ta = app.token(&a.token_form(&code_a)).await.1;
    let tb = app.token(&b.token_form(&code_b)).await.1;
    let who_a = app
        .call_tool(ta["access_token"].as_str().unwrap(), "whoami", json!({}))
        .await;
    let who_b = app
        .call_tool(tb["access_token"].as_str().unwrap(), "whoami", json!({}))
        .await;
    assert_eq!(
        who_a["structuredContent"]["subject"],
        "x:1850000000000000001"
    );
    assert_eq!(
        who_b["structuredContent"]["subject"],
        "x:1850000000000000002"
    );
    assert_ne!(
        who_a["structuredContent"]["user_id"],
        who_b["structuredContent"]["user_id"]
    );
    // Calls to X, interleaved and at the same time, each use their own
    // user's X token.
    let before = app.sandbox().stats().api_calls;
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let client = app.client.clone();
            let token = if i % 2 == 0 { &ta } else { &tb };
            let token = token["access_token"].as_str().unwrap().to_owned();
            tokio::spawn(
                async move { (i, client.call_tool(&token, "getUsersMe", json!({})).await) },
            )
        })
        .collect();
    for t in tasks {
        let (i, me) = t.await.unwrap();
        let expected = if i % 2 == 0 {
            "demo_user"
        } else {
            "second_user"
        };
        assert_eq!(
            me["structuredContent"]["data"]["username"], expected,
            "{me}"
        );
    }
    let after = app.sandbox().stats().api_calls;
    let made = |u: &str| after[u] - before[u];
    assert_eq!((made("demo_user"), made("second_user")), (3, 3));
}

/// Decode and check a JWT access token with the published key set, as an
/// external resource server would.
fn verify_with_jwks(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or("kid not published")?;
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn jwt_access_tokens_verify_with_the_published_key_set_and_rotate(backend: Backend) {
    let app = builder(backend)
        .settings(|s| s.auth.access_token_format = Some("jwt".into()))
        .spawn()
        .await;
    let meta: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["jwks_uri"], app.url("/jwks.json"));
    let jwks = || async {
        app.http
            .get(app.url("/jwks.json"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(jwks().await["keys"].as_array().unwrap().len(), 1);

    let client_id = app.register_public().await;
    let tokens = Authorize::new(&app, &client_id, "http://127.0.0.1:9/callback")
        .tokens(&app)
        .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let claims = verify_with_jwks(&access, &jwks().await, &app.base, &app.url("/mcp")).unwrap();
    assert_eq!(claims["sub"], "x:1850000000000000001");
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["scope"], "tweet.read users.read");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        app.app.config.auth.access_token_ttl
    );
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(
        app.call_tool(&access, "whoami", json!({})).await["structuredContent"]["subject"],
        "x:1850000000000000001"
    );

    // A tampered signature, and a genuinely signed token for another audience.
    let mut tampered = access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        app.mcp(Some(&tampered), "tools/list", json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let keys = app.app.auth.jwt_keys().unwrap();
    let now = xmcp_auth::Clock::now(app.clock.as_ref());
    let foreign = keys
        .sign(
            &xmcp_auth::jwt::AccessClaims {
                iss: app.base.clone(),
                sub: "x:1850000000000000001".into(),
                aud: "https://other.example/mcp".into(),
                client_id: client_id.clone(),
                scope: "tweet.read".into(),
                iat: now,
                exp: now + 600,
                jti: "x".into(),
            },
            now,
        )
        .await
        .unwrap();
    let r = app.mcp(Some(&foreign), "tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // Rotation: new tokens use the new key; tokens of the old key stay valid.
    let new_kid = keys.rotate(now).await.unwrap();
    assert_eq!(jwks().await["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.mcp(Some(&access), "tools/list", json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    let (status, refreshed, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    let access2 = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(access2).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    verify_with_jwks(access2, &jwks().await, &app.base, &app.url("/mcp")).unwrap();

    // Revocation is immediate for JWTs too: the store is consulted.
    let r = app
        .post_form(
            "/revoke",
            &[
                ("token", refreshed["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.mcp(Some(access2), "tools/list", json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Once the old key's tokens have all expired, it is no longer published.
    app.clock.advance(app.app.config.auth.access_token_ttl + 1);
    keys.reload(xmcp_auth::Clock::now(app.clock.as_ref()))
        .await
        .unwrap();
    assert_eq!(jwks().await["keys"].as_array().unwrap().len(), 1);
}
