//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02).
//!
//! A `client_id` that is an https URL names a JSON document describing the
//! client. Fetching it is an SSRF risk, so: https only; only globally
//! reachable unicast addresses ([`is_forbidden_ip`], checked on every
//! resolved address, and on IP literals); no proxy, whatever `HTTP_PROXY`,
//! `HTTPS_PROXY` or `ALL_PROXY` say (a proxy would resolve and connect in
//! our place, past those checks); redirects are not followed; only 200
//! counts; at most 5 KiB read within 5 seconds.
//!
//! Valid documents are cached per their `Cache-Control: max-age` (bounded).
//! A failed fetch or an invalid document is remembered for
//! [`FAILURE_CACHE_SECONDS`], so that naming one URL in every `/authorize`
//! costs at most one outbound fetch a minute, not one (of up to 5 seconds)
//! per request. A remembered failure is only reported again, never served as
//! a client; the CIMD draft's rule against caching errors is about not
//! treating them as metadata, and a minute's wait is the price of not being
//! a fetch amplifier. Both caches hold at most [`MAX_CACHE_ENTRIES`] URLs.

use crate::client::{Client, ClientKind, GrantType};
use crate::config::TokenAuthMethod;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;
use url::Url;

const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_CACHE_SECONDS: i64 = 60;
const DEFAULT_CACHE_SECONDS: i64 = 300;
const MAX_CACHE_SECONDS: i64 = 86_400;
/// Most URLs each cache (documents, failures) remembers.
pub const MAX_CACHE_ENTRIES: usize = 1024;
/// How long a failed fetch or invalid document is remembered.
pub const FAILURE_CACHE_SECONDS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    #[error("client_id URL is not valid for a metadata document: {0}")]
    BadUrl(&'static str),
    #[error("client metadata document could not be fetched: {0}")]
    Fetch(String),
    #[error("client metadata document is invalid: {0}")]
    Invalid(String),
}

/// Whether `client_id` is meant as a metadata document URL (any https URL).
pub fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Validate the shape of a client identifier URL (CIMD §3).
pub fn validate_url(client_id: &str, allow_loopback: bool) -> Result<Url, CimdError> {
    let url = Url::parse(client_id).map_err(|_| CimdError::BadUrl("not a URL"))?;
    let loopback_http = allow_loopback
        && url.scheme() == "http"
        && url
            .host_str()
            .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]");
    if url.scheme() != "https" && !loopback_http {
        return Err(CimdError::BadUrl("must use https"));
    }
    if client_id.contains('#') {
        return Err(CimdError::BadUrl("must not contain a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CimdError::BadUrl("must not contain user information"));
    }
    let raw_path = client_id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let raw_path = raw_path.split('?').next().unwrap_or("");
    if raw_path.is_empty() || raw_path == "/" {
        return Err(CimdError::BadUrl("must have a path"));
    }
    if raw_path.split('/').any(|seg| {
        seg == "."
            || seg == ".."
            || seg.eq_ignore_ascii_case("%2e")
            || seg.eq_ignore_ascii_case("%2e%2e")
    }) {
        return Err(CimdError::BadUrl("must not contain dot segments"));
    }
    // The URL must be in its canonical form, so that the string the document
    // names is the string we fetched.
    if url.as_str() != client_id {
        return Err(CimdError::BadUrl("must be in canonical form"));
    }
    Ok(url)
}

/// Whether an address is one a server-side fetch must never reach: anything
/// but a globally reachable unicast address.
///
/// IPv4: "this network" `0/8`, private `10/8`, `172.16/12`, `192.168/16`,
/// shared (CGNAT) `100.64/10`, loopback `127/8`, link-local `169.254/16`,
/// IETF protocol assignments `192.0.0/24`, documentation `192.0.2/24`,
/// `198.51.100/24`, `203.0.113/24`, the deprecated 6to4 relay anycast
/// `192.88.99/24`, benchmarking `198.18/15`, multicast `224/4`, reserved
/// `240/4` and broadcast.
///
/// IPv6: only global unicast `2000::/3` may be fetched, and within it not
/// the IETF protocol assignments `2001::/23` (Teredo `2001::/32` among
/// them), documentation `2001:db8::/32` and `3fff::/20`, or 6to4
/// `2002::/16`; so unspecified, loopback, IPv4-compatible `::a.b.c.d`,
/// NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, discard `100::/64`, unique
/// local `fc00::/7`, link-local `fe80::/10`, site-local `fec0::/10` and
/// multicast `ff00::/8` are all refused. Teredo, 6to4, NAT64 and
/// IPv4-compatible addresses reach an embedded IPv4 address through a relay,
/// which could be a private one; they are refused whatever they embed. An
/// IPv4-mapped address (`::ffff:a.b.c.d`) is the IPv4 address itself to the
/// socket layer, so it is judged as that address.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_v4(v4);
            }
            let s = v6.segments();
            let global_unicast = (s[0] & 0xe000) == 0x2000; // 2000::/3
            !global_unicast
                || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 (Teredo 2001::/32...)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[0] == 0x2002 // 6to4
                || (s[0] & 0xfff0) == 0x3ff0 // 3fff::/20 documentation
        }
    }
}

fn is_forbidden_v4(v4: std::net::Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 shared
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || o[0] >= 240 // reserved and broadcast
}

/// DNS resolution that drops forbidden addresses (and fails if none remain),
/// so a hostname cannot be pointed at an internal service.
struct GuardedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_forbidden_ip(a.ip()) || (allow_loopback && a.ip().is_loopback()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host} resolves only to addresses that may not be fetched").into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Values by URL until a time, at most [`MAX_CACHE_ENTRIES`] of them: when
/// full, expired entries go, and if none had expired, everything does.
struct Expiring<V> {
    entries: Mutex<HashMap<String, (V, i64)>>,
}

impl<V: Clone> Expiring<V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str, now: i64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.clone())
    }

    fn insert(&self, key: &str, value: V, until: i64, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_CACHE_ENTRIES && !entries.contains_key(key) {
            entries.retain(|_, (_, u)| *u > now);
            if entries.len() >= MAX_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (value, until));
    }
}

/// Fetches, validates and caches client metadata documents.
pub struct CimdResolver {
    http: reqwest::Client,
    allow_loopback: bool,
    /// Which private-use redirect URI schemes documents may use.
    schemes: crate::redirect::SchemePolicy,
    documents: Expiring<Client>,
    failures: Expiring<CimdError>,
}

impl std::fmt::Debug for CimdResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolver").finish_non_exhaustive()
    }
}

impl CimdResolver {
    pub fn new(allow_loopback: bool) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .dns_resolver(GuardedResolver { allow_loopback })
            .user_agent(concat!(
                "xmcp/",
                env!("CARGO_PKG_VERSION"),
                " (client metadata fetch)"
            ))
            .build()
            .unwrap_or_default();
        Self {
            http,
            allow_loopback,
            schemes: crate::redirect::SchemePolicy::default(),
            documents: Expiring::new(),
            failures: Expiring::new(),
        }
    }

    /// Accept the redirect URI schemes of `schemes`.
    pub fn with_schemes(mut self, schemes: crate::redirect::SchemePolicy) -> Self {
        self.schemes = schemes;
        self
    }

    /// Resolve a metadata-document client, from cache or by fetching it.
    pub async fn resolve(&self, client_id: &str, now: i64) -> Result<Client, CimdError> {
        if let Some(c) = self.documents.get(client_id, now) {
            return Ok(c);
        }
        let url = validate_url(client_id, self.allow_loopback)?;
        if let Some(failed) = self.failures.get(client_id, now) {
            return Err(failed);
        }
        if let Some(host) = url.host() {
            let literal = match host {
                url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            };
            if let Some(ip) = literal
                && is_forbidden_ip(ip)
                && !(self.allow_loopback && ip.is_loopback())
            {
                return Err(CimdError::Fetch("address may not be fetched".into()));
            }
        }
        let fetched = match self.fetch(url).await {
            Ok((body, max_age)) => {
                parse_document_with(client_id, &body, &self.schemes).map(|c| (c, max_age))
            }
            Err(e) => Err(e),
        };
        let (client, max_age) = match fetched {
            Ok(ok) => ok,
            Err(e) => {
                self.failures
                    .insert(client_id, e.clone(), now + FAILURE_CACHE_SECONDS, now);
                return Err(e);
            }
        };
        let ttl = max_age
            .unwrap_or(DEFAULT_CACHE_SECONDS)
            .clamp(MIN_CACHE_SECONDS, MAX_CACHE_SECONDS);
        self.documents
            .insert(client_id, client.clone(), now + ttl, now);
        Ok(client)
    }

    async fn fetch(&self, url: Url) -> Result<(Vec<u8>, Option<i64>), CimdError> {
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| CimdError::Fetch(describe_reqwest(&e)))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(CimdError::Fetch(format!(
                "status {} (only 200 is accepted; redirects are not followed)",
                resp.status().as_u16()
            )));
        }
        if resp
            .content_length()
            .is_some_and(|l| l as usize > MAX_DOCUMENT_BYTES)
        {
            return Err(CimdError::Fetch("document larger than 5 KiB".into()));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| CimdError::Fetch(describe_reqwest(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(CimdError::Fetch("document larger than 5 KiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect (or the address may not be fetched)".into()
    } else {
        "request failed".into()
    }
}

fn parse_max_age(cache_control: &str) -> Option<i64> {
    let mut max_age = None;
    for directive in cache_control.split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return Some(0);
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse().ok();
        }
    }
    max_age
}

/// Validate a fetched document (CIMD §4.1) and turn it into a client.
pub fn parse_document(client_id: &str, body: &[u8]) -> Result<Client, CimdError> {
    parse_document_with(client_id, body, &crate::redirect::SchemePolicy::default())
}

/// [`parse_document`], with the redirect URI schemes `schemes` accepts.
pub fn parse_document_with(
    client_id: &str,
    body: &[u8],
    schemes: &crate::redirect::SchemePolicy,
) -> Result<Client, CimdError> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| CimdError::Invalid("not JSON".into()))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| CimdError::Invalid("not a JSON object".into()))?;
    if obj.get("client_id").and_then(|v| v.as_str()) != Some(client_id) {
        return Err(CimdError::Invalid(
            "client_id in the document does not equal its URL".into(),
        ));
    }
    for forbidden in ["client_secret", "client_secret_expires_at"] {
        if obj.contains_key(forbidden) {
            return Err(CimdError::Invalid(format!(
                "document must not contain `{forbidden}`"
            )));
        }
    }
    let auth = obj
        .get("token_endpoint_auth_method")
        .and_then(|v| v.as_str())
        .unwrap_or("none");
    if auth != "none" {
        return Err(CimdError::Invalid(format!(
            "token_endpoint_auth_method `{auth}` is not supported for metadata document clients (use `none`)"
        )));
    }
    let redirect_uris: Vec<String> = obj
        .get("redirect_uris")
        .and_then(|v| v.as_array())
        .ok_or_else(|| CimdError::Invalid("redirect_uris is required".into()))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| CimdError::Invalid("redirect_uris must be strings".into()))
        })
        .collect::<Result<_, _>>()?;
    if redirect_uris.is_empty() {
        return Err(CimdError::Invalid("redirect_uris is empty".into()));
    }
    for uri in &redirect_uris {
        crate::redirect::validate_registered_with(uri, schemes)
            .map_err(|e| CimdError::Invalid(format!("{uri}: {e}")))?;
    }
    let client_name = obj
        .get("client_name")
        .and_then(|v| v.as_str())
        .map(|n| crate::registration::clean_name(n))
        .transpose()
        .map_err(|e| CimdError::Invalid(e.into()))?;
    let grant_types = obj
        .get("grant_types")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_else(|| GrantType::names(&GrantType::REGISTERED_BY_DEFAULT));
    Ok(Client {
        client_id: client_id.to_owned(),
        kind: ClientKind::MetadataDocument,
        client_name,
        redirect_uris,
        auth_method: TokenAuthMethod::None,
        grant_types,
        scope: obj.get("scope").and_then(|v| v.as_str()).map(str::to_owned),
        secret_hash: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        assert!(validate_url("https://client.example/meta.json", false).is_ok());
        for (bad, _) in [
            ("http://client.example/meta.json", "http"),
            ("https://client.example", "no path"),
            ("https://client.example/", "root path"),
            ("https://client.example/a/../meta.json", "dot segment"),
            ("https://client.example/meta.json#x", "fragment"),
            ("https://u:p@client.example/meta.json", "userinfo"),
            ("https://CLIENT.example/meta.json", "not canonical"),
        ] {
            assert!(validate_url(bad, false).is_err(), "{bad}");
        }
        assert!(validate_url("http://127.0.0.1:8080/meta.json", true).is_ok());
        assert!(validate_url("http://10.0.0.1/meta.json", true).is_err());
    }

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::a00:1",         // IPv4-compatible ::10.0.0.1
            "::8.8.8.8",       // IPv4-compatible, even of a public address
            "::ffff:10.0.0.1", // IPv4-mapped private
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",   // NAT64 of 10.0.0.1
            "64:ff9b::808:808", // NAT64, even of a public address
            "64:ff9b:1::1",
            "100::1",  // discard
            "2001::1", // Teredo
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",       // benchmarking
            "2001:db8::1",     // documentation
            "3fff::1",         // documentation
            "2002:a00:1::1",   // 6to4 of 10.0.0.1
            "2002:808:808::1", // 6to4, even of a public address
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1", // site-local
            "ff02::1",
            "4000::1", // not global unicast
        ] {
            assert!(is_forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "::ffff:8.8.8.8",
            "2606:4700::1111",
            "2a00:1450:4001:81c::200e",
            "2001:4860:4860::8888",
        ] {
            assert!(!is_forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_mapped_address_is_judged_as_its_ipv4_address(v4 in proptest::prelude::any::<u32>()) {
            let v4 = std::net::Ipv4Addr::from(v4);
            proptest::prop_assert_eq!(
                is_forbidden_ip(IpAddr::V6(v4.to_ipv6_mapped())),
                is_forbidden_ip(IpAddr::V4(v4))
            );
        }

        #[test]
        fn addresses_that_embed_ipv4_through_a_relay_are_refused(
            v4 in proptest::prelude::any::<u32>(),
            low in proptest::prelude::any::<u64>(),
        ) {
            let v4 = u128::from(v4);
            for ip in [
                v4,                                     // IPv4-compatible ::a.b.c.d
                (0x0064_ff9b_u128 << 96) | v4,          // NAT64
                (0x2002_u128 << 112) | (v4 << 80) | u128::from(low & 0xffff_ffff_ffff), // 6to4
                (0x2001_0000_u128 << 96) | (u128::from(low) << 32) | v4, // Teredo
            ] {
                let ip = IpAddr::V6(std::net::Ipv6Addr::from(ip));
                proptest::prop_assert!(is_forbidden_ip(ip), "{}", ip);
            }
        }

        #[test]
        fn nothing_outside_global_unicast_is_fetched(bits in proptest::prelude::any::<u128>()) {
            let ip = std::net::Ipv6Addr::from(bits);
            if (bits >> 125) != 0b001 && ip.to_ipv4_mapped().is_none() {
                proptest::prop_assert!(is_forbidden_ip(IpAddr::V6(ip)), "{}", ip);
            }
        }
    }

    #[test]
    fn document_rules() {
        let id = "https://client.example/meta.json";
        let ok = serde_json::json!({"client_id": id, "client_name": "Example", "redirect_uris": ["http://127.0.0.1/cb"]});
        let c = parse_document(id, ok.to_string().as_bytes()).unwrap();
        assert_eq!(c.client_name.as_deref(), Some("Example"));
        assert!(c.allows_refresh());
        let wrong_id = serde_json::json!({"client_id": "https://other.example/meta.json", "redirect_uris": ["http://127.0.0.1/cb"]});
        assert!(parse_document(id, wrong_id.to_string().as_bytes()).is_err());
        let secret = serde_json::json!({"client_id": id, "client_secret": "s", "redirect_uris": ["http://127.0.0.1/cb"]});
        assert!(parse_document(id, secret.to_string().as_bytes()).is_err());
        let basic = serde_json::json!({"client_id": id, "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["http://127.0.0.1/cb"]});
        assert!(parse_document(id, basic.to_string().as_bytes()).is_err());
        let js = serde_json::json!({"client_id": id, "redirect_uris": ["javascript:alert(1)"]});
        assert!(parse_document(id, js.to_string().as_bytes()).is_err());
        assert!(parse_document(id, b"not json").is_err());
    }

    #[test]
    fn cache_control() {
        assert_eq!(parse_max_age("public, max-age=600"), Some(600));
        assert_eq!(parse_max_age("no-store"), Some(0));
        assert_eq!(parse_max_age("public"), None);
    }
}
