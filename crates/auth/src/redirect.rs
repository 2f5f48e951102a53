//! Redirect URI policy.
//!
//! Registration ([`validate_registered`]): https anywhere; http only on
//! loopback (`localhost`, `127.0.0.1`, `[::1]`); a private-use scheme only
//! when it is a reverse domain name (RFC 8252 §7.1, `com.example.app:/cb`)
//! or one of the native clients' schemes the [`SchemePolicy`] lists
//! (`cursor`, `vscode`...); never a scheme that launches an operating-system
//! handler or runs script (`ms-msdt:`, `search-ms:`, any `ms-*`, `intent:`,
//! `javascript:`, `data:`, `file:`...), whatever the list says; never a
//! fragment or user information.
//!
//! Matching ([`matches()`]): exact string comparison (RFC 3986 §6.2.1), except
//! that an `http` loopback redirect may use any port (RFC 8252 §7.3, OAuth 2.1
//! §8.4.2), with scheme, host, path and query still compared exactly.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect URI is not an absolute URI")]
    NotAbsolute,
    #[error("redirect URI must not contain a fragment")]
    Fragment,
    #[error("redirect URI scheme `{0}` is not allowed")]
    ForbiddenScheme(String),
    #[error(
        "redirect URI scheme `{0}` is not allowed: use https, http on loopback, a reverse-domain scheme (com.example.app) or a native client's scheme this server accepts"
    )]
    UnknownScheme(String),
    #[error("http redirect URIs are only allowed for loopback hosts; use https")]
    InsecureHttp,
    #[error("redirect URI must not contain user information")]
    UserInfo,
}

/// Schemes that launch an operating-system handler, run script or read
/// local files: never a redirect URI, even if an operator lists one.
/// Besides these, every `ms-` scheme (Windows protocol handlers such as
/// `ms-msdt:` and `ms-officecmd:`).
pub const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "jar",
    "view-source",
    "ftp",
    "ws",
    "wss",
    "intent",
    "search",
    "search-ms",
    "shell",
    "res",
    "mk",
    "its",
    "hcp",
    "help",
    "telnet",
    "ssh",
    "smb",
    "nfs",
    "ldap",
    "gopher",
    "mailto",
    "tel",
    "sms",
    "chrome",
    "edge",
    "microsoft-edge",
    "android-app",
];

/// The private-use schemes of native MCP clients accepted by default.
pub const NATIVE_SCHEMES: &[&str] = &[
    "cursor",
    "vscode",
    "vscode-insiders",
    "vscodium",
    "windsurf",
    "zed",
];

/// Whether a scheme is one [`FORBIDDEN_SCHEMES`] names or an `ms-` scheme.
pub fn is_forbidden_scheme(scheme: &str) -> bool {
    let scheme = scheme.to_ascii_lowercase();
    scheme.starts_with("ms-") || FORBIDDEN_SCHEMES.contains(&scheme.as_str())
}

/// Which private-use schemes registrations may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemePolicy {
    /// Native clients' schemes (lowercase), beyond reverse-domain ones.
    pub native: Vec<String>,
}

impl Default for SchemePolicy {
    fn default() -> Self {
        Self {
            native: NATIVE_SCHEMES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl SchemePolicy {
    /// A policy accepting `native` (refusing, with the reason, a scheme that
    /// is forbidden or not a scheme at all).
    pub fn new(native: Vec<String>) -> Result<Self, String> {
        let mut out = Vec::with_capacity(native.len());
        for s in native {
            let s = s.trim().trim_end_matches(':').to_ascii_lowercase();
            let valid = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !valid {
                return Err(format!("`{s}` is not a URI scheme"));
            }
            if is_forbidden_scheme(&s) || matches!(s.as_str(), "http" | "https") {
                return Err(format!(
                    "`{s}` cannot be a native client's scheme: it launches an operating-system handler, runs script, or is web"
                ));
            }
            out.push(s);
        }
        Ok(Self { native: out })
    }

    /// Whether a private-use scheme is accepted: a reverse domain name
    /// (RFC 8252 §7.1) or a listed native client's.
    fn accepts(&self, scheme: &str) -> bool {
        let reverse_domain = scheme.contains('.')
            && scheme
                .split('.')
                .all(|label| !label.is_empty() && label.len() <= 63);
        reverse_domain || self.native.iter().any(|n| n == scheme)
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Check a redirect URI a client wants to register, with the default
/// [`SchemePolicy`].
pub fn validate_registered(uri: &str) -> Result<Url, RedirectError> {
    validate_registered_with(uri, &SchemePolicy::default())
}

/// Check a redirect URI a client wants to register.
pub fn validate_registered_with(uri: &str, policy: &SchemePolicy) -> Result<Url, RedirectError> {
    if uri.contains('#') {
        return Err(RedirectError::Fragment);
    }
    let url = Url::parse(uri).map_err(|_| RedirectError::NotAbsolute)?;
    let scheme = url.scheme();
    if is_forbidden_scheme(scheme) {
        return Err(RedirectError::ForbiddenScheme(scheme.to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectError::UserInfo);
    }
    match scheme {
        "https" => {
            if url.host().is_none() {
                return Err(RedirectError::NotAbsolute);
            }
        }
        "http" => {
            if !is_loopback_host(&url) {
                return Err(RedirectError::InsecureHttp);
            }
        }
        other => {
            if !policy.accepts(other) {
                return Err(RedirectError::UnknownScheme(other.to_owned()));
            }
        }
    }
    Ok(url)
}

/// Whether the redirect URI in a request matches a registered one.
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    if reg.scheme() != "http" || req.scheme() != "http" || !is_loopback_host(&reg) {
        return false;
    }
    // Loopback: ignore the port only. Compare every other component on the
    // serialised form so that nothing else can vary.
    let strip = |u: &Url| {
        let mut u = u.clone();
        let _ = u.set_port(None);
        u
    };
    // The host must be byte-identical as written (no `localhost` vs `127.0.0.1`).
    reg.host_str() == req.host_str()
        && registered_host_literal(registered) == registered_host_literal(requested)
        && strip(&reg).as_str() == strip(&req).as_str()
        && !requested.contains('#')
}

/// The authority's host exactly as written in the string (lower-cased URL
/// parsing would otherwise let `LOCALHOST` match `localhost`).
fn registered_host_literal(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    Some(host)
}

/// Whether every registered redirect URI points at this machine (the consent
/// page warns about such clients, MCP security considerations).
pub fn all_loopback(uris: &[String]) -> bool {
    !uris.is_empty()
        && uris.iter().all(|u| {
            Url::parse(u)
                .map(|u| u.scheme() == "http" && is_loopback_host(&u))
                .unwrap_or(false)
        })
}

/// The host a redirect URI sends the user to, for display on the consent page.
pub fn display_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) => match u.host_str() {
            Some(h) => h.to_owned(),
            None => format!("{}:", u.scheme()),
        },
        Err(_) => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn registration_policy() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://chatgpt.com/connector_platform_oauth_redirect",
            "http://127.0.0.1:33418/callback",
            "http://localhost/callback",
            "http://[::1]:8080/cb",
            "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback",
            "vscode://vscode.github-authentication/did-authenticate",
        ] {
            assert!(validate_registered(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            validate_registered("javascript:alert(1)"),
            Err(RedirectError::ForbiddenScheme("javascript".into()))
        );
        assert!(matches!(
            validate_registered("data:text/html,hi"),
            Err(RedirectError::ForbiddenScheme(_))
        ));
        assert_eq!(
            validate_registered("http://evil.example.com/cb"),
            Err(RedirectError::InsecureHttp)
        );
        assert_eq!(
            validate_registered("https://a.example/cb#x"),
            Err(RedirectError::Fragment)
        );
        assert_eq!(
            validate_registered("/relative"),
            Err(RedirectError::NotAbsolute)
        );
        assert_eq!(
            validate_registered("https://u:p@a.example/cb"),
            Err(RedirectError::UserInfo)
        );
    }

    #[test]
    fn private_use_schemes_are_reverse_domains_or_listed_native_clients() {
        let policy = SchemePolicy::default();
        for ok in [
            "com.example.app:/oauth2redirect",
            "com.googleusercontent.apps.123:/cb",
            "vscode-insiders://vscode.github-authentication/did-authenticate",
            "windsurf://codeium.windsurf/oauth",
            "zed://oauth/callback",
        ] {
            assert!(validate_registered_with(ok, &policy).is_ok(), "{ok}");
        }
        for unknown in ["myapp://cb", "x:cb", "c:/windows"] {
            assert!(
                matches!(
                    validate_registered_with(unknown, &policy),
                    Err(RedirectError::UnknownScheme(_))
                ),
                "{unknown}"
            );
        }
        // Listed by an operator: accepted; handlers and script: never.
        let custom = SchemePolicy::new(vec!["MyApp".into()]).unwrap();
        assert!(validate_registered_with("myapp://cb", &custom).is_ok());
        assert!(validate_registered_with("cursor://cb", &custom).is_err());
        for bad in [
            "ms-msdt",
            "ms-officecmd",
            "search-ms",
            "intent",
            "javascript",
            "file",
            "https",
        ] {
            assert!(SchemePolicy::new(vec![bad.into()]).is_err(), "{bad}");
        }
        assert!(SchemePolicy::new(vec!["not a scheme".into()]).is_err());
    }

    proptest! {
        /// A scheme that launches an operating-system handler or runs
        /// script is refused however it is spelled, and whatever follows.
        #[test]
        fn os_handler_and_script_schemes_are_always_refused(
            scheme in prop::sample::select(vec![
                "ms-msdt", "ms-officecmd", "ms-settings", "ms-word", "search-ms", "search",
                "intent", "javascript", "data", "file", "vbscript", "jar", "view-source",
                "shell", "mailto",
            ]),
            upper in proptest::collection::vec(any::<bool>(), 16),
            rest in "[a-zA-Z0-9/:?=._-]{0,40}",
        ) {
            let spelled: String = scheme
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
                .collect();
            let uri = format!("{spelled}:{rest}");
            let policy = SchemePolicy { native: vec![scheme.to_owned()] };
            prop_assert!(validate_registered_with(&uri, &policy).is_err(), "{}", uri);
        }
    }

    #[test]
    fn exact_matching_with_loopback_port_rule() {
        let reg = "https://app.example/cb";
        assert!(matches(reg, reg));
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example.evil.com/cb",
            "https://app.example:443/cb",
            "https://app.example/c",
        ] {
            assert!(!matches(reg, bad), "{bad}");
        }
        assert!(matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/callback"
        ));
        assert!(matches(
            "http://[::1]/callback",
            "http://[::1]:51234/callback"
        ));
        assert!(matches(
            "http://localhost/callback",
            "http://localhost:3000/callback"
        ));
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5/callback2"
        ));
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://localhost:5/callback"
        ));
        assert!(!matches(
            "http://localhost/callback",
            "http://LOCALHOST:5/callback"
        ));
        assert!(!matches(
            "http://127.0.0.1/callback",
            "https://127.0.0.1:5/callback"
        ));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb?x=1"));
    }

    #[test]
    fn loopback_detection() {
        assert!(all_loopback(&[
            "http://127.0.0.1:1/cb".into(),
            "http://localhost/cb".into()
        ]));
        assert!(!all_loopback(&[
            "http://127.0.0.1:1/cb".into(),
            "https://a.example/cb".into()
        ]));
        assert!(!all_loopback(&[]));
        assert_eq!(display_host("https://claude.ai/x"), "claude.ai");
        assert_eq!(display_host("cursor://x/y"), "x");
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in ".{0,120}") {
            let _ = validate_registered(&s);
            let _ = matches(&s, &s);
            let _ = display_host(&s);
        }

        #[test]
        fn non_loopback_match_is_exact(host in "[a-z]{1,10}\\.example", path in "/[a-z]{0,8}", other in "/[a-z]{0,8}") {
            let a = format!("https://{host}{path}");
            let b = format!("https://{host}{other}");
            prop_assert_eq!(matches(&a, &b), a == b);
        }

        #[test]
        fn loopback_ignores_only_port(port in 1u16..65535, path in "/[a-z]{0,8}") {
            let reg = format!("http://127.0.0.1{path}");
            let with_port = format!("http://127.0.0.1:{port}{path}");
            prop_assert!(matches(&reg, &with_port));
            let other = format!("http://127.0.0.1:{port}{path}x");
            prop_assert!(!matches(&reg, &other));
        }
    }
}
