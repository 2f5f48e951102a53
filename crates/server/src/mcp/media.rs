//! Media by URL: a model cannot write megabytes of base64, so a post's
//! media (and the `uploadMediaFromUrl` tool) are given as URLs. xmcp fetches
//! each, guarded (https only, never a private, loopback or otherwise
//! special address, no proxy, size and time limits, the content type
//! checked against the bytes), then uploads it to X with X's chunked upload
//! (initialize, append, finalize, then status until processed) and hands
//! back the media id.

use super::ledger::UpstreamCall;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use xmcp_x::{Caller, XApi, XRequest};

/// Bytes per append: X accepts larger segments, but each travels as
/// base64 in a JSON body, which proxies and the demo's own body limit must
/// let through.
const SEGMENT: usize = 1024 * 1024;

/// The longest wait for X to process a video, in all.
const PROCESSING_TIMEOUT: Duration = Duration::from_secs(120);

/// How media URLs are fetched.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The largest file fetched, in bytes.
    pub max_bytes: u64,
    /// How long one fetch may take.
    pub timeout: Duration,
    /// Fetch from private and loopback addresses, and over http (tests,
    /// and deployments that serve media from their own network). Off by
    /// default: a URL a model was given must not reach the server's
    /// neighbours.
    pub allow_private: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(60),
            allow_private: false,
        }
    }
}

/// Media types X accepts, with their category for posts and X's size
/// limit.
const TYPES: [(&str, &str, u64); 7] = [
    ("image/jpeg", "tweet_image", 5 << 20),
    ("image/png", "tweet_image", 5 << 20),
    ("image/webp", "tweet_image", 5 << 20),
    ("image/gif", "tweet_gif", 15 << 20),
    ("video/mp4", "tweet_video", 512 << 20),
    ("video/quicktime", "tweet_video", 512 << 20),
    ("video/webm", "tweet_video", 512 << 20),
];

/// DNS resolution that drops addresses a server-side fetch must never reach
/// (and fails if none remain), so a hostname cannot point at a neighbour.
struct Guarded;

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !xmcp_auth::cimd::is_forbidden_ip(a.ip()))
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

/// Fetches media URLs and uploads them to X.
pub struct MediaUploader {
    http: reqwest::Client,
    config: MediaConfig,
}

/// A file fetched from a URL.
struct Fetched {
    bytes: Vec<u8>,
    media_type: &'static str,
    category: &'static str,
}

/// A media file in X, ready to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub media_id: String,
    pub media_key: Option<String>,
}

impl MediaUploader {
    pub fn new(config: MediaConfig) -> Self {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Each hop is checked again: https only (the resolver checks
                // the address), and not many of them.
                if attempt.previous().len() >= 3 {
                    attempt.error("too many redirects")
                } else if attempt.url().scheme() != "https" {
                    attempt.error("a redirect away from https")
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!(
                "xmcp/",
                env!("CARGO_PKG_VERSION"),
                " (media fetch)"
            ));
        if !config.allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(Guarded));
        }
        Self {
            http: builder.build().unwrap_or_default(),
            config,
        }
    }

    /// Whether `url` may be fetched at all: https (http too when private
    /// addresses are allowed), with a host that is no private address.
    fn check_url(&self, url: &str) -> Result<url::Url, String> {
        let u = url::Url::parse(url).map_err(|_| format!("`{url}` is not a URL"))?;
        let scheme_ok =
            u.scheme() == "https" || (self.config.allow_private && u.scheme() == "http");
        if !scheme_ok {
            return Err(format!("`{url}`: only https URLs are fetched"));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!("`{url}`: URLs with credentials are not fetched"));
        }
        let literal = match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(format!("`{url}` has no host")),
        };
        if let Some(ip) = literal
            && !self.config.allow_private
            && xmcp_auth::cimd::is_forbidden_ip(ip)
        {
            return Err(format!(
                "`{url}`: private, loopback and other special addresses are not fetched"
            ));
        }
        Ok(u)
    }

    async fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let u = self.check_url(url)?;
        let mut resp = self
            .http
            .get(u)
            .send()
            .await
            .map_err(|e| format!("cannot fetch `{url}`: {}", describe(e)))?;
        if !resp.status().is_success() {
            return Err(format!("`{url}` answered HTTP {}", resp.status().as_u16()));
        }
        let declared = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let Some(&(media_type, category, x_limit)) = TYPES.iter().find(|(t, _, _)| *t == declared)
        else {
            return Err(format!(
                "`{url}` is `{declared}`, not an image or video X accepts (JPEG, PNG, WebP, GIF, MP4, MOV, WebM)"
            ));
        };
        let max = self.config.max_bytes.min(x_limit);
        if resp.content_length().is_some_and(|l| l > max) {
            return Err(format!("`{url}` is larger than {} MB", max >> 20));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("cannot fetch `{url}`: {}", describe(e)))?
        {
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(format!("`{url}` is larger than {} MB", max >> 20));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !content_matches(media_type, &bytes) {
            return Err(format!(
                "`{url}` says it is {media_type}, but its content is not"
            ));
        }
        Ok(Fetched {
            bytes,
            media_type,
            category,
        })
    }

    /// Fetch `url` and upload it to X for the caller (`category` overrides
    /// the one its type implies). Every call to X is added to `upstream`.
    pub async fn upload(
        &self,
        x: &XApi,
        user_id: &str,
        url: &str,
        category: Option<&str>,
        upstream: &mut Vec<UpstreamCall>,
    ) -> Result<Uploaded, String> {
        let file = self.fetch(url).await?;
        let category = category.unwrap_or(file.category);
        let caller = Caller::User(user_id);
        let init = call(
            x,
            caller,
            upstream,
            "POST",
            "/2/media/upload/initialize",
            "/2/media/upload/initialize",
            &[],
            Some(json!({"media_type": file.media_type, "total_bytes": file.bytes.len(), "media_category": category})),
        )
        .await?;
        let id = init["data"]["id"]
            .as_str()
            .ok_or("X's media upload gave no media id")?
            .to_owned();
        let path = |step: &str| format!("/2/media/upload/{id}/{step}");
        use base64::Engine;
        for (i, segment) in file.bytes.chunks(SEGMENT).enumerate() {
            let media = base64::engine::general_purpose::STANDARD.encode(segment);
            call(
                x,
                caller,
                upstream,
                "POST",
                "/2/media/upload/{id}/append",
                &path("append"),
                &[],
                Some(json!({"media": media, "segment_index": i})),
            )
            .await?;
        }
        let mut answer = call(
            x,
            caller,
            upstream,
            "POST",
            "/2/media/upload/{id}/finalize",
            &path("finalize"),
            &[],
            None,
        )
        .await?;
        let started = tokio::time::Instant::now();
        loop {
            let info = &answer["data"]["processing_info"];
            match info["state"].as_str() {
                None | Some("succeeded") => break,
                Some("failed") => {
                    return Err(format!(
                        "X could not process `{url}`: {}",
                        info["error"]["message"]
                            .as_str()
                            .unwrap_or("no reason given")
                    ));
                }
                Some(_) => {}
            }
            if started.elapsed() > PROCESSING_TIMEOUT {
                return Err(format!(
                    "X is still processing `{url}` (media id {id}); try again later"
                ));
            }
            let wait = info["check_after_secs"].as_u64().unwrap_or(1).clamp(1, 10);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            answer = call(
                x,
                caller,
                upstream,
                "GET",
                "/2/media/upload",
                "/2/media/upload",
                &[
                    ("command".into(), "STATUS".into()),
                    ("media_id".into(), id.clone()),
                ],
                None,
            )
            .await?;
        }
        Ok(Uploaded {
            media_key: answer["data"]["media_key"]
                .as_str()
                .or_else(|| init["data"]["media_key"].as_str())
                .map(str::to_owned),
            media_id: id,
        })
    }
}

/// What went wrong with a fetch, with the cause a guard gave (reqwest's own
/// message says only "error sending request").
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "it took too long".into();
    }
    let e = e.without_url();
    let mut said = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        said = format!("{said}: {s}");
        source = s.source();
    }
    said
}

/// Whether `bytes` begin as files of `media_type` do.
fn content_matches(media_type: &str, bytes: &[u8]) -> bool {
    match media_type {
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "video/mp4" | "video/quicktime" => bytes.len() > 8 && &bytes[4..8] == b"ftyp",
        "video/webm" => bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]),
        _ => false,
    }
}

/// One call to X's media upload, recorded in `upstream`; X's answer, or
/// what went wrong in words.
#[allow(clippy::too_many_arguments)]
async fn call(
    x: &XApi,
    caller: Caller<'_>,
    upstream: &mut Vec<UpstreamCall>,
    method: &str,
    template: &str,
    path: &str,
    query: &[(String, String)],
    body: Option<Value>,
) -> Result<Value, String> {
    let scopes = vec!["media.write".to_owned()];
    let endpoint = format!("{method} {template}");
    let req = XRequest {
        method: reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?,
        endpoint: &endpoint,
        path,
        query,
        body: body.as_ref(),
        scopes: &scopes,
    };
    let resp = x.call_as(caller, &req).await.map_err(|e| {
        if let xmcp_x::XCallError::Unreachable(_) = e {
            upstream.push(UpstreamCall {
                method: method.into(),
                path: template.into(),
                status: 0,
                transaction_id: None,
                cost: 0,
            });
        }
        e.to_string()
    })?;
    upstream.push(UpstreamCall {
        method: method.into(),
        path: template.into(),
        status: resp.status,
        transaction_id: resp.transaction_id.clone(),
        // X's pricing lists no charge for uploading media: the post that
        // attaches it is charged.
        cost: 0,
    });
    if !resp.is_success() {
        let said = resp.body["detail"]
            .as_str()
            .or_else(|| resp.body["errors"][0]["message"].as_str())
            .or_else(|| resp.body["title"].as_str())
            .unwrap_or("no reason given");
        return Err(format!(
            "X refused the media upload ({endpoint}: HTTP {}): {said}",
            resp.status
        ));
    }
    Ok(resp.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_to_public_hosts_are_fetched_by_default() {
        let strict = MediaUploader::new(MediaConfig::default());
        for bad in [
            "http://example.com/a.png",
            "https://127.0.0.1/a.png",
            "https://[::1]/a.png",
            "https://10.0.0.5/a.png",
            "https://169.254.169.254/latest/meta-data",
            "https://user:pw@example.com/a.png",
            "file:///etc/passwd",
            "ftp://example.com/a.png",
            "not a url",
        ] {
            assert!(strict.check_url(bad).is_err(), "{bad}");
        }
        assert!(strict.check_url("https://example.com/a.png").is_ok());
        let open = MediaUploader::new(MediaConfig {
            allow_private: true,
            ..MediaConfig::default()
        });
        assert!(open.check_url("http://127.0.0.1:9/a.png").is_ok());
        assert!(open.check_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn content_must_be_what_it_says() {
        assert!(content_matches("image/png", b"\x89PNG\r\n\x1a\n..."));
        assert!(!content_matches("image/png", b"<html>"));
        assert!(content_matches("video/mp4", b"\0\0\0\x18ftypmp42"));
        assert!(!content_matches("video/mp4", b"GIF89a"));
    }
}
