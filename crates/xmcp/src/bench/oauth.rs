//! A token through the real OAuth flow, as a browser submits the forms;
//! and the token endpoint under load.

use super::*;

/// The attributes of one HTML start tag (`rest` is what follows its name),
/// quoted or not, entity-decoded for the few entities our pages emit.
pub(super) fn attributes(rest: &str) -> Vec<(String, String)> {
    let tag = rest.split('>').next().unwrap_or_default();
    let mut out = Vec::new();
    let mut chars = tag.trim_end_matches('/').trim().chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars
            .by_ref()
            .skip_while(|c| c.is_whitespace())
            .take_while(|c| !c.is_whitespace() && *c != '=')
            .collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            value = chars.by_ref().take_while(|c| *c != '"').collect();
        } else if chars.peek().is_some_and(|c| !c.is_whitespace()) {
            value = chars.by_ref().take_while(|c| !c.is_whitespace()).collect();
        }
        if !name.is_empty() {
            let value = value
                .replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            out.push((name, value));
        }
    }
    out
}

/// A page's form as a browser submits it untouched: its action, hidden
/// inputs, checked radios and checkboxes, and the first submit button.
pub(super) fn form_as_served(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let get = |attrs: &[(String, String)], k: &str| {
        attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    let action = get(&attributes(html.split("<form").nth(1)?), "action").unwrap_or_default();
    let mut fields = Vec::new();
    for input in html.split("<input").skip(1) {
        let a = attributes(input);
        let kind = get(&a, "type").unwrap_or_else(|| "text".into());
        let checked = a.iter().any(|(n, _)| n == "checked");
        if (kind == "hidden" || (matches!(kind.as_str(), "radio" | "checkbox") && checked))
            && let (Some(name), Some(value)) = (get(&a, "name"), get(&a, "value"))
        {
            fields.push((name, value));
        }
    }
    if let Some(button) = html.split("<button").nth(1) {
        let a = attributes(button);
        if let (Some(name), Some(value)) = (get(&a, "name"), get(&a, "value")) {
            fields.push((name, value));
        }
    }
    Some((action, fields))
}

/// Register, authorize, consent, sign in at the (simulated) X and exchange
/// the code, as a client and its user would.
pub(super) async fn obtain_token(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let reg: Value = http
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none", "client_name": "xmcp bench"}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = reg["client_id"]
        .as_str()
        .context("registration failed")?
        .to_owned();
    let (verifier, challenge) = xmcp_crypto::pkce_pair();
    let redirect = "http://127.0.0.1:1/callback";
    let authorize = url::Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", redirect),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("resource", &format!("{base}/mcp")),
        ],
    )?;
    // Play the browser: submit our consent page, then the simulated X's
    // login page, as served (defaults preselected), until the redirect back.
    let mut cookies: Vec<String> = Vec::new();
    let mut url = authorize.to_string();
    let mut resp = http.get(&url).send().await?;
    let location = loop {
        for c in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some(pair) = c.to_str().ok().and_then(|v| v.split(';').next()) {
                cookies.push(pair.to_owned());
            }
        }
        if resp.status().is_redirection() {
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .context("a redirect without a location")?;
            let to = url::Url::parse(&url)?.join(to)?.to_string();
            if to.starts_with(redirect) {
                break to;
            }
            url = to;
            resp = http
                .get(&url)
                .header("cookie", cookies.join("; "))
                .send()
                .await?;
            continue;
        }
        anyhow::ensure!(
            resp.status().is_success(),
            "sign-in page {url}: HTTP {}",
            resp.status()
        );
        let html = resp.text().await?;
        let (action, form) = form_as_served(&html).context("no form on the sign-in page")?;
        url = url::Url::parse(&url)?.join(&action)?.to_string();
        resp = http
            .post(&url)
            .header("cookie", cookies.join("; "))
            .form(&form)
            .send()
            .await?;
    };
    let location = location.as_str();
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let tokens: Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
            ("redirect_uri", redirect),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(tokens["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned())
}

/// The token endpoint: refresh grants (each worker rotates its own chain)
/// and code grants (codes minted straight into the store, so only `/token`
/// is timed).
#[allow(clippy::print_stdout)]
pub(super) async fn token_endpoint(
    http: &reqwest::Client,
    base: &str,
    app: &Arc<App>,
    duration: Duration,
) -> anyhow::Result<()> {
    let reg: Value = http
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none", "client_name": "xmcp bench"}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = reg["client_id"]
        .as_str()
        .context("registration failed")?
        .to_owned();
    let user = app
        .store
        .upsert_user(
            &xmcp_store::UserIdentity {
                subject: "bench:user".into(),
                username: Some("bench".into()),
                display_name: None,
            },
            app.clock.now(),
        )
        .await?;
    let (verifier, challenge) = xmcp_crypto::pkce_pair();
    let redirect = "http://127.0.0.1:1/callback";
    let resource = format!("{base}/mcp");
    let mint_code = || {
        let code = xmcp_crypto::token::NewToken::generate(
            xmcp_crypto::token::TokenKind::AuthorizationCode,
        );
        let now = app.clock.now();
        let record = xmcp_store::AuthorizationCode {
            hash: code.hash().clone(),
            kind: xmcp_store::CodeKind::Redirect,
            client_id: client_id.clone(),
            redirect_uri: redirect.into(),
            redirect_uri_explicit: true,
            code_challenge: challenge.clone(),
            resource: resource.clone(),
            scope: "users.read".into(),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + 600,
            used_at: None,
        };
        (code.plaintext().to_owned(), record)
    };
    println!(
        "token endpoint, {} s per grant, concurrency 16:",
        duration.as_secs()
    );
    for grant in ["authorization_code", "refresh_token"] {
        let workers = 16;
        // Each worker gets its own codes (or a refresh chain to rotate).
        let mut seeds = Vec::new();
        for _ in 0..workers {
            let (code, record) = mint_code();
            app.store.insert_code(&record).await?;
            seeds.push(code);
        }
        if grant == "refresh_token" {
            for seed in &mut seeds {
                let t: Value = http
                    .post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", seed.as_str()),
                        ("code_verifier", &verifier),
                        ("client_id", &client_id),
                        ("redirect_uri", redirect),
                    ])
                    .send()
                    .await?
                    .json()
                    .await?;
                *seed = t["refresh_token"]
                    .as_str()
                    .context("no refresh token")?
                    .to_owned();
            }
        }
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for seed in seeds {
            let (http, base, client_id, verifier) = (
                http.clone(),
                base.to_owned(),
                client_id.clone(),
                verifier.clone(),
            );
            let app = app.clone();
            let (challenge, resource, user_id) =
                (challenge.clone(), resource.clone(), user.id.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut refresh = seed;
                while Instant::now() < deadline {
                    let code;
                    let form: Vec<(&str, &str)> = if grant == "refresh_token" {
                        vec![
                            ("grant_type", grant),
                            ("refresh_token", &refresh),
                            ("client_id", &client_id),
                        ]
                    } else {
                        // A fresh code per request, minted outside the timing.
                        let c = xmcp_crypto::token::NewToken::generate(
                            xmcp_crypto::token::TokenKind::AuthorizationCode,
                        );
                        let now = app.clock.now();
                        let ok = app
                            .store
                            .insert_code(&xmcp_store::AuthorizationCode {
                                hash: c.hash().clone(),
                                kind: xmcp_store::CodeKind::Redirect,
                                client_id: client_id.clone(),
                                redirect_uri: redirect.into(),
                                redirect_uri_explicit: true,
                                code_challenge: challenge.clone(),
                                resource: resource.clone(),
                                scope: "users.read".into(),
                                user_id: user_id.clone(),
                                created_at: now,
                                expires_at: now + 600,
                                used_at: None,
                            })
                            .await;
                        if ok.is_err() {
                            errors += 1;
                            continue;
                        }
                        code = c.plaintext().to_owned();
                        vec![
                            ("grant_type", grant),
                            ("code", &code),
                            ("code_verifier", &verifier),
                            ("client_id", &client_id),
                            ("redirect_uri", redirect),
                        ]
                    };
                    let t = Instant::now();
                    match http.post(format!("{base}/token")).form(&form).send().await {
                        Ok(r) if r.status().is_success() => {
                            let body: Value = r.json().await.unwrap_or_default();
                            lat.push(t.elapsed());
                            if let Some(next) = body["refresh_token"].as_str() {
                                refresh = next.to_owned();
                            }
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            all.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed();
        all.sort();
        let pct = |p: f64| {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "  {grant:<18} {:>8.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {errors}",
            all.len() as f64 / elapsed.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
    }
    Ok(())
}
