//! Server-rendered pages: the consent page and error pages. No JavaScript;
//! every interpolated value is HTML-escaped. Response headers (CSP with
//! `frame-ancestors 'none'`, `X-Frame-Options: DENY`, `no-store`) are added by
//! the routes.

use crate::client::{Client, ClientKind};
use crate::config::AuthConfig;
use crate::identity::LoginForm;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use std::collections::BTreeMap;

/// An error page the user sees instead of a redirect.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorView {
    pub status: u16,
    pub title: String,
    pub message: String,
}

impl ErrorView {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            title: "This sign-in request cannot continue".into(),
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: 403,
            title: "This sign-in request was refused".into(),
            message: message.into(),
        }
    }
    /// A page that ends a flow well (status 200).
    pub fn notice(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: 200,
            title: title.into(),
            message: message.into(),
        }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: 503,
            title: "Temporarily unavailable".into(),
            message: message.into(),
        }
    }

    pub fn render(&self) -> String {
        page(
            &self.title,
            &format!(
                "<h1>{}</h1><p>{}</p>",
                text(&self.title),
                text(&self.message)
            ),
        )
    }
}

/// Everything the consent page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentView {
    pub client_name: String,
    pub client_id: String,
    pub client_kind: ClientKind,
    pub redirect_host: String,
    pub redirect_uri: String,
    pub all_loopback: bool,
    pub scopes: Vec<String>,
    pub request_id: String,
    pub csrf_token: String,
    pub provider: String,
    pub login: LoginForm,
    pub message: Option<String>,
    /// Approving a device (RFC 8628): no redirect follows.
    pub device: bool,
    /// What the operator wants every user to know before allowing, such as
    /// a daily spending cap.
    pub notes: Vec<String>,
    /// What each scope allows, in plain words.
    pub scope_words: BTreeMap<String, String>,
    /// What access is asked to ("the X API").
    pub service_name: String,
}

impl ConsentView {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: &Client,
        redirect_uri: &str,
        scope: &str,
        request_id: &str,
        csrf_token: &str,
        provider: &str,
        login: LoginForm,
        message: Option<String>,
    ) -> Self {
        Self {
            client_name: client.display_name().to_owned(),
            client_id: client.client_id.clone(),
            client_kind: client.kind,
            redirect_host: crate::redirect::display_host(redirect_uri),
            redirect_uri: redirect_uri.to_owned(),
            all_loopback: crate::redirect::all_loopback(std::slice::from_ref(
                &redirect_uri.to_owned(),
            )),
            scopes: scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            request_id: request_id.to_owned(),
            csrf_token: csrf_token.to_owned(),
            provider: provider.to_owned(),
            login,
            message,
            device: false,
            notes: Vec::new(),
            scope_words: BTreeMap::new(),
            service_name: "this server".into(),
        }
    }

    /// Show what `config` adds to every consent page: the operator's notes
    /// and the scopes in plain words.
    pub fn as_configured(mut self, config: &AuthConfig) -> Self {
        self.notes = config.consent_notes.clone();
        self.scope_words = config.scope_words.clone();
        self.service_name = config.service_name.clone();
        self
    }

    /// The consent page for a device authorization entered at `/device`.
    pub fn for_device(mut self) -> Self {
        self.device = true;
        self
    }

    pub fn render(&self) -> String {
        let provenance = match self.client_kind {
            ClientKind::Static => "pre-registered by the operator of this server".to_owned(),
            ClientKind::Dynamic => {
                "registered itself moments ago; its name is self-asserted".to_owned()
            }
            ClientKind::MetadataDocument => format!(
                "described by a document at {} (name self-asserted)",
                crate::redirect::display_host(&self.client_id)
            ),
        };
        let mut body = format!(
            "<h1>Allow <q>{name}</q> to use {service} as you?</h1>\
             <p class=\"muted\">This application was {prov}.</p>",
            name = text(&self.client_name),
            service = text(&self.service_name),
            prov = text(&provenance),
        );
        if self.device {
            body.push_str(
                "<p class=\"warn\">You entered a code shown by a device or program. \
                 Only continue if you started it yourself just now: whoever holds that device gets this access.</p>",
            );
        } else {
            body.push_str(&format!(
                "<dl><dt>After you decide, you will be sent to</dt><dd><strong>{host}</strong> <code>{uri}</code></dd></dl>",
                host = text(&self.redirect_host),
                uri = text(&self.redirect_uri),
            ));
        }
        if self.all_loopback && !self.device {
            body.push_str(
                "<p class=\"warn\">This application runs on this computer (its address is localhost). \
                 Only continue if you started it yourself just now.</p>",
            );
        }
        let (write, read): (Vec<&String>, Vec<&String>) =
            self.scopes.iter().partition(|s| is_write_scope(s));
        for (heading, class, scopes) in [
            ("It could change things as you:", "write", write),
            ("It could read:", "read", read),
        ] {
            if scopes.is_empty() {
                continue;
            }
            body.push_str(&format!("<p>{heading}</p><ul class=\"scopes {class}\">"));
            for s in scopes {
                match self.scope_words.get(s.as_str()) {
                    Some(words) => body.push_str(&format!(
                        "<li>{} <code>{}</code></li>",
                        text(words),
                        text(s)
                    )),
                    None => body.push_str(&format!("<li><code>{}</code></li>", text(s))),
                }
            }
            body.push_str("</ul>");
        }
        for note in &self.notes {
            body.push_str(&format!("<p class=\"note\">{}</p>", text(note)));
        }
        if let Some(m) = &self.message {
            body.push_str(&format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                text(m)
            ));
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"/consent\">\
             <input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">",
            rid = attr(&self.request_id),
            csrf = attr(&self.csrf_token),
        ));
        match &self.login {
            LoginForm::None => {}
            LoginForm::Password => body.push_str(&format!(
                "<fieldset><legend>Sign in ({})</legend>\
                 <label>Username <input name=\"username\" autocomplete=\"username\" required></label>\
                 <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
                 </fieldset>",
                text(&self.provider)
            )),
            LoginForm::ChooseUser(users) => {
                body.push_str(&format!("<fieldset><legend>Sign in as ({})</legend>", text(&self.provider)));
                for (i, (username, label)) in users.iter().enumerate() {
                    body.push_str(&format!(
                        "<label><input type=\"radio\" name=\"username\" value=\"{}\"{}> {}</label>",
                        attr(username),
                        if i == 0 { " checked" } else { "" },
                        text(label)
                    ));
                }
                body.push_str("</fieldset>");
            }
        }
        body.push_str(
            "<div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\
             <button type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button></div></form>",
        );
        page("Authorize access", &body)
    }
}

/// Whether `scope` lets a client change things (post, follow, send):
/// shown apart from reading.
pub fn is_write_scope(scope: &str) -> bool {
    scope.ends_with(".write")
}

/// The page where a user enters the code a device shows (RFC 8628 §3.3).
pub fn device_code_page(prefill: Option<&str>, message: Option<&str>) -> String {
    let mut body = String::from(
        "<h1>Connect a device</h1><p>Enter the code your device or program shows.</p>",
    );
    if let Some(m) = message {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            text(m)
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/device\"><label>Code \
         <input name=\"user_code\" value=\"{}\" autocomplete=\"off\" autocapitalize=\"characters\" \
         spellcheck=\"false\" maxlength=\"20\" required autofocus></label>\
         <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"approve\">Continue</button></div></form>",
        attr(prefill.unwrap_or(""))
    ));
    page("Connect a device", &body)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title} · xmcp</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>",
        title = text(title),
    )
}

/// The stylesheet of every page xmcp and its simulated X serve (one file,
/// so the demo looks like one product).
const STYLE: &str = include_str!("../../../assets/pages.css");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::config::TokenAuthMethod;

    #[test]
    fn consent_page_escapes_self_asserted_metadata() {
        let client = Client {
            client_id: "c1".into(),
            kind: ClientKind::Dynamic,
            client_name: Some("<script>alert(1)</script>".into()),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            auth_method: TokenAuthMethod::None,
            grant_types: vec![],
            scope: None,
            secret_hash: None,
        };
        let v = ConsentView::new(
            &client,
            "http://127.0.0.1:9/cb",
            "a b",
            "rid\"",
            "csrf",
            "local",
            LoginForm::Password,
            None,
        );
        let html = v.render();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("value=\"rid&quot;\""));
        assert!(html.contains("runs on this computer"));
        assert!(html.contains("registered itself"));
    }

    /// Scopes the configuration describes read in plain words on the
    /// consent page, writes apart from reads; a scope nobody described is
    /// still shown, as is.
    #[test]
    fn configured_scopes_read_in_plain_words() {
        let mut config =
            AuthConfig::new(&url::Url::parse("https://as.example").unwrap(), Vec::new());
        config
            .scope_words
            .insert("like.write".into(), "Like and unlike posts as you".into());
        let client = Client {
            client_id: "c1".into(),
            kind: ClientKind::Static,
            client_name: None,
            redirect_uris: vec![],
            auth_method: TokenAuthMethod::None,
            grant_types: vec![],
            scope: None,
            secret_hash: None,
        };
        let html = ConsentView::new(
            &client,
            "https://app.example/cb",
            "custom.<scope> like.write",
            "rid",
            "csrf",
            "X",
            LoginForm::None,
            None,
        )
        .as_configured(&config)
        .render();
        assert!(html.contains("<li><code>custom.&lt;scope&gt;</code></li>"));
        assert!(html.contains(
            "<ul class=\"scopes write\"><li>Like and unlike posts as you <code>like.write</code></li></ul>"
        ));
    }
}
