//! `gen-key`, `hash-password`, and `rotate-key` re-sealing everything
//! sealed with the data key, in the local store and in JWT mode.

use super::*;

#[test]
pub(super) fn gen_key_and_hash_password() {
    let out = std::process::Command::new(bin())
        .args(["gen-key", "--id", "prod-2026"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(key.starts_with("prod-2026:"));
    assert!(xmcp_crypto::envelope::DataKey::parse(key.trim()).is_ok());

    use std::io::Write;
    let mut child = std::process::Command::new(bin())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(xmcp_crypto::password::verify("correct horse", hash.trim()));
}

#[tokio::test]
pub(super) async fn rotate_key_reseals_upstream_tokens_in_the_local_store() {
    use xmcp_crypto::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // First start creates the key file and the database.
    let (proc, _) = start_demo(dir.path(), free_port(), "a.log", "info").await;
    assert!(proc.stop().success());
    let key_path = data.join("encryption.key");
    let old = xmcp_crypto::envelope::DataKey::parse(
        std::fs::read_to_string(&key_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let old_id = old.id().to_owned();
    let ring = xmcp_crypto::envelope::Keyring::new(old, vec![]);
    let store = xmcp_store::connect(&format!("sqlite://{}", data.join("xmcp.db").display()), 1)
        .await
        .unwrap();
    let user = store
        .upsert_user(
            &xmcp_store::UserIdentity {
                subject: "x:1".into(),
                username: None,
                display_name: None,
            },
            1,
        )
        .await
        .unwrap();
    let aad = |f: &str| match f {
        "access" => xmcp_store::SealedColumn::UpstreamAccess.aad(&user.id),
        _ => xmcp_store::SealedColumn::UpstreamRefresh.aad(&user.id),
    };
    store
        .put_upstream_tokens(&xmcp_store::UpstreamTokens {
            user_id: user.id.clone(),
            provider: "x".into(),
            access_sealed: ring.seal(b"upstream-access", aad("access").as_bytes()),
            refresh_sealed: Some(ring.seal(b"upstream-refresh", aad("refresh").as_bytes())),
            expires_at: None,
            scope: "tweet.read".into(),
            updated_at: 1,
            reauth_required_at: None,
        })
        .await
        .unwrap();
    drop(store);

    let out = std::process::Command::new(bin())
        .args(["rotate-key", "--demo", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 1 row"));

    let text = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "the old key is gone after the rotation"
    );
    let new = xmcp_crypto::envelope::DataKey::parse(text.trim()).unwrap();
    assert_ne!(new.id(), old_id);
    let ring = xmcp_crypto::envelope::Keyring::new(new, vec![]);
    let store = xmcp_store::connect(&format!("sqlite://{}", data.join("xmcp.db").display()), 1)
        .await
        .unwrap();
    let row = store.get_upstream_tokens(&user.id).await.unwrap().unwrap();
    assert_eq!(
        ring.open(&row.access_sealed, aad("access").as_bytes())
            .unwrap()
            .expose_secret()
            .as_slice(),
        b"upstream-access"
    );
    assert_eq!(
        ring.open(
            row.refresh_sealed.as_deref().unwrap(),
            aad("refresh").as_bytes()
        )
        .unwrap()
        .expose_secret()
        .as_slice(),
        b"upstream-refresh"
    );
}

/// `xmcp serve` with JWT access tokens, signing users in with a separate
/// `xmcp sandbox`.
pub(super) async fn start_jwt(dir: &Path, port: u16, x_base: &str, log: &str) -> XmcpProcess {
    let (file, _) = log_file(dir, log);
    let data = dir.join("data");
    let mut env = XmcpProcess::x_env(x_base);
    env.push(("XMCP_ACCESS_TOKEN_FORMAT".into(), "jwt".into()));
    env.push(("XMCP_REFRESH_GRACE".into(), "60".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    XmcpProcess::start(
        &bin(),
        port,
        &["--data-dir", data.to_str().unwrap()],
        &env,
        file,
    )
    .await
}

/// Every kind of value sealed with the data key, written by a real server
/// (JWT signing key, X tokens, a pending authorization's upstream verifier,
/// a rotated refresh token's successor) or the bridge, is re-sealed by
/// `rotate-key`: after a restart the server signs and verifies tokens,
/// reaches X, and serves a parallel refresh from before the rotation; and
/// nothing in the store is sealed under the old key any more.
#[tokio::test]
pub(super) async fn rotate_key_in_jwt_mode_reseals_everything_sealed_with_the_data_key() {
    use xmcp_crypto::ExposeSecret;
    use xmcp_crypto::envelope::{DataKey, Keyring};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/upstream/callback");
    let (x_log, _) = log_file(dir.path(), "x.log");
    let x = XmcpProcess::start_sandbox(&bin(), free_port(), &callback, x_log).await;

    let proc = start_jwt(dir.path(), port, &x.base, "a.log").await;
    let client_id = proc.register_public().await;
    let auth = Authorize::new(&proc, &client_id, "http://127.0.0.1:7777/callback");
    let tokens = auth.tokens(&proc).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(access.split('.').count(), 3, "a JWT: {access}");
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |proc: &XmcpProcess, token: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let client = proc.client.clone();
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            client.token(&form).await
        }
    };
    // A refresh leaves the old token's successor sealed for the grace window.
    let (status, successor, _) = refresh(&proc, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{successor}");
    // A second sign-in waits at X: its upstream PKCE verifier is sealed.
    let second = Authorize::new(&proc, &client_id, "http://127.0.0.1:7777/callback");
    let page = second.consent_page(&proc).await;
    let r = submit_consent(&proc, &page, &[("action", "approve")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(proc.stop().success());

    // The bridge's credentials, in the same store, sealed as it seals them.
    let key_path = data.join("encryption.key");
    let old = DataKey::parse(
        std::fs::read_to_string(&key_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let old_id = old.id().to_owned();
    let db_url = format!("sqlite://{}", data.join("xmcp.db").display());
    let store = xmcp_store::connect(&db_url, 1).await.unwrap();
    let bridge_name = xmcp_server::bridge::credentials_name(
        &url::Url::parse("https://mcp.example.com/mcp").unwrap(),
    );
    let old_ring = Keyring::new(old, vec![]);
    store
        .put_local_state(
            &bridge_name,
            &old_ring.seal(b"bridge credentials", bridge_name.as_bytes()),
            1,
        )
        .await
        .unwrap();
    let sealed_before = store.list_sealed().await.unwrap();
    let columns = |values: &[xmcp_store::SealedValue]| {
        let mut c: Vec<String> = values.iter().map(|v| format!("{:?}", v.column)).collect();
        c.sort();
        c.dedup();
        c
    };
    assert_eq!(
        columns(&sealed_before),
        [
            "LocalState",
            "PendingVerifier",
            "RefreshSuccessor",
            "SigningKey",
            "UpstreamAccess",
            "UpstreamRefresh"
        ],
        "values of every kind are sealed before the rotation"
    );
    assert!(
        sealed_before
            .iter()
            .all(|v| Keyring::key_id_of(&v.sealed) == Some(old_id.as_str()))
    );
    drop(store);

    let env = XmcpProcess::x_env(&x.base);
    let out = std::process::Command::new(bin())
        .args(["rotate-key", "--data-dir", data.to_str().unwrap()])
        .env_remove("XMCP_DATABASE_URL")
        .env_remove("XMCP_CONFIG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("XMCP_ACCESS_TOKEN_FORMAT", "jwt")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("({} sealed value(s))", sealed_before.len())),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(text.lines().count(), 1, "the old key is gone");
    let new = DataKey::parse(text.trim()).unwrap();
    assert_ne!(new.id(), old_id);

    // Nothing is sealed under the old key any more.
    let store = xmcp_store::connect(&db_url, 1).await.unwrap();
    let sealed_after = store.list_sealed().await.unwrap();
    assert_eq!(columns(&sealed_after), columns(&sealed_before));
    for v in &sealed_after {
        assert_eq!(Keyring::key_id_of(&v.sealed), Some(new.id()), "{v:?}");
    }
    let new_ring = Keyring::new(DataKey::parse(text.trim()).unwrap(), vec![]);
    let bridge = store.get_local_state(&bridge_name).await.unwrap().unwrap();
    assert_eq!(
        new_ring
            .open(&bridge, bridge_name.as_bytes())
            .unwrap()
            .expose_secret()
            .as_slice(),
        b"bridge credentials"
    );
    drop(store);

    // The restarted server opens its signing key and the X tokens.
    let proc = start_jwt(dir.path(), port, &x.base, "b.log").await;
    let me = proc.call_tool(&access, "whoami", json!({})).await;
    assert_eq!(
        me["structuredContent"]["subject"],
        format!("x:{DEMO_USER_ID}"),
        "{me}"
    );
    let me = proc.call_tool(&access, "getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    // A parallel refresh from before the rotation gets the same successor.
    let (status, again, _) = refresh(&proc, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["access_token"], successor["access_token"]);
    // And new tokens are signed.
    let (status, next, _) = refresh(&proc, successor["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let next_access = next["access_token"].as_str().unwrap();
    let me = proc.call_tool(next_access, "getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
}
