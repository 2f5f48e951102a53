//! The OAuth part of an MCP client: PKCE, the consent page as a browser
//! submits it, the upstream sign-in, and reading redirects and challenges.

use super::*;

/// PKCE pair.
pub fn pkce() -> (String, String) {
    xmcp_crypto::pkce_pair()
}

/// What the consent page carried.
pub struct ConsentPage {
    pub status: StatusCode,
    pub html: String,
    pub request_id: String,
    pub csrf_token: String,
    pub cookie: String,
    pub headers: HeaderMap,
}

impl ConsentPage {
    /// The page a response carries: its form's hidden fields and the
    /// consent cookie it sets.
    pub async fn read(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let cookie = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .next()
            .unwrap_or_default();
        let html = r.text().await.unwrap();
        ConsentPage {
            status,
            request_id: hidden(&html, "request_id"),
            csrf_token: hidden(&html, "csrf_token"),
            html,
            cookie,
            headers,
        }
    }
}

pub(super) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// An authorization request under construction.
pub struct Authorize {
    pub client_id: String,
    pub redirect_uri: String,
    pub verifier: String,
    pub challenge: String,
    pub state: String,
    pub scope: String,
    pub extra: Vec<(String, String)>,
    pub resource: Option<String>,
}

impl Authorize {
    pub fn new(app: &Client, client_id: &str, redirect_uri: &str) -> Self {
        let (verifier, challenge) = pkce();
        Self {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            verifier,
            challenge,
            state: xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<8>()),
            scope: "tweet.read users.read".into(),
            extra: vec![],
            resource: Some(app.url("/mcp")),
        }
    }

    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("code_challenge", &self.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &self.state)
            .append_pair("scope", &self.scope);
        if let Some(r) = &self.resource {
            q.append_pair("resource", r);
        }
        for (k, v) in &self.extra {
            q.append_pair(k, v);
        }
        q.finish()
    }

    /// GET /authorize with a custom query.
    pub async fn get_raw(app: &Client, query: &str) -> reqwest::Response {
        app.http
            .get(app.url(&format!("/authorize?{query}")))
            .send()
            .await
            .unwrap()
    }

    pub async fn consent_page(&self, app: &Client) -> ConsentPage {
        ConsentPage::read(Self::get_raw(app, &self.query()).await).await
    }

    /// Approve on the consent page and sign in as `user` (a sandbox demo
    /// username, or [`LOCAL_USER`] on a local-accounts app); returns the
    /// redirect to the client.
    pub async fn approve_as(&self, app: &Client, user: &str) -> url::Url {
        let page = self.consent_page(app).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        let mut fields = vec![("action", "approve")];
        if user == LOCAL_USER {
            fields.extend([("username", LOCAL_USER), ("password", LOCAL_PASSWORD)]);
        }
        let r = submit_consent(app, &page, &fields).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap_or_default()
        );
        finish_upstream(app, &page.cookie, r, user, None).await
    }

    /// Run authorize + consent + sign-in as the first demo user; the code.
    pub async fn code(&self, app: &Client) -> String {
        let loc = self.approve_as(app, "demo_user").await;
        let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
        assert_eq!(q.get("state"), Some(&self.state));
        assert_eq!(q.get("iss").map(String::as_str), Some(app.base.as_str()));
        q["code"].clone()
    }

    pub fn token_form<'a>(&'a self, code: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut f = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", self.verifier.as_str()),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
        ];
        if let Some(r) = &self.resource {
            f.push(("resource", r.as_str()));
        }
        f
    }

    /// The whole dance for a public client, signing in as `user`: tokens.
    pub async fn tokens_as(&self, app: &Client, user: &str) -> Value {
        let loc = self.approve_as(app, user).await;
        let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
        assert_eq!(q.get("state"), Some(&self.state), "{loc}");
        let (status, body, _) = app.token(&self.token_form(&q["code"])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The whole dance for a public client: tokens.
    pub async fn tokens(&self, app: &Client) -> Value {
        let code = self.code(app).await;
        let (status, body, headers) = app.token(&self.token_form(&code)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        body
    }
}

/// Play the browser after the consent form was submitted (`consented` is
/// its answer): if it leads to the simulated X, pick `user` on its login page
/// (granting `grant`, or every scope offered), follow the callback with the
/// consent `cookie`, and return where the browser ends up (the client's
/// redirect URI). A consent answer that already goes to the client is
/// returned as is.
pub async fn finish_upstream(
    app: &Client,
    cookie: &str,
    consented: reqwest::Response,
    user: &str,
    grant: Option<&[&str]>,
) -> url::Url {
    let to = consented.headers()[LOCATION].to_str().unwrap().to_owned();
    if !to.contains("/i/oauth2/authorize") {
        return url::Url::parse(&to).unwrap();
    }
    let callback = sign_in_at_sandbox(&app.http, &to, user, grant).await;
    let done = app
        .http
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        StatusCode::FOUND,
        "{}",
        done.text().await.unwrap_or_default()
    );
    url::Url::parse(done.headers()[LOCATION].to_str().unwrap()).unwrap()
}

/// Play the browser on the simulated X's login page at `authorize_url`:
/// pick `user`, grant `grant` (or every scope offered), allow, and return
/// the callback URL the browser is sent to.
pub async fn sign_in_at_sandbox(
    http: &reqwest::Client,
    authorize_url: &str,
    user: &str,
    grant: Option<&[&str]>,
) -> String {
    let page = http.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let mut form = hidden_fields(&html);
    let user_id = html
        .split("name=\"user_id\" value=\"")
        .skip(1)
        .find(|chunk| chunk.contains(&format!("@{user}<")))
        .and_then(|chunk| chunk.split('"').next())
        .unwrap_or_else(|| panic!("no demo user {user} on the login page"))
        .to_owned();
    form.push(("user_id".into(), user_id));
    let offered: Vec<String> = html
        .split("name=\"grant\" value=\"")
        .skip(1)
        .filter_map(|chunk| chunk.split('"').next().map(str::to_owned))
        .collect();
    for scope in offered {
        if grant.is_none_or(|g| g.contains(&scope.as_str())) {
            form.push(("grant".into(), scope));
        }
    }
    form.push(("action".into(), "allow".into()));
    let back = http.post(authorize_url).form(&form).send().await.unwrap();
    assert_eq!(
        back.status(),
        StatusCode::FOUND,
        "{}",
        back.text().await.unwrap_or_default()
    );
    back.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// `(name, value)` of every hidden input in a page.
pub(super) fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=hidden name=\"")
        .skip(1)
        .filter_map(|chunk| {
            let (name, rest) = chunk.split_once('"')?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), html_unescape(value)))
        })
        .collect()
}

pub(super) fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub async fn submit_consent(
    app: &Client,
    page: &ConsentPage,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![
        ("request_id", &page.request_id),
        ("csrf_token", &page.csrf_token),
    ];
    form.extend_from_slice(fields);
    app.http
        .post(app.url("/consent"))
        .header("cookie", &page.cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The `resource_metadata` URL from a 401 challenge.
pub fn resource_metadata(headers: &HeaderMap) -> String {
    let v = headers[WWW_AUTHENTICATE].to_str().unwrap();
    v.split("resource_metadata=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// Query parameters of a redirect `Location`.
pub fn redirect_params(resp: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let loc = resp.headers()[LOCATION].to_str().unwrap();
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}
