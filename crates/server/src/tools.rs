//! Where the X tools come from: X's OpenAPI document, read from a file or
//! fetched from a URL (the last good copy cached in the data directory for
//! when X cannot be reached), or the demo's simulated X.

use crate::config::{Config, Identity, OpenApiSource};
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;
use xmcp_openapi::{Catalog, Options};

/// Largest OpenAPI document accepted (X's is about 1 MB).
const MAX_DOCUMENT: usize = 32 * 1024 * 1024;

/// Names of the tools xmcp defines itself; an X operation with one of
/// them is renamed.
pub const BUILTIN_TOOLS: [&str; 3] = ["whoami", "echo", "rate_limits"];

/// The cached copy of a fetched document.
pub fn cache_path(config: &Config) -> PathBuf {
    config.data_dir.join("x-openapi.json")
}

fn options(config: &Config) -> Options {
    Options {
        allow: config.tools.allow.clone(),
        deny: config.tools.deny.clone(),
        tags: config.tools.tags.clone(),
        app_token: config.tools.app_token.is_some(),
        reserved: BUILTIN_TOOLS.map(String::from).to_vec(),
    }
}

/// How old a cached document `xmcp stdio` uses without fetching a new one:
/// a desktop client starts it often, and waits for it.
pub const LOCAL_CACHE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Build the catalog for this configuration. `embedded` is the demo's
/// simulated X's document. Servers without X (local accounts, OIDC,
/// resource-server-only) get an empty catalog.
pub async fn load(config: &Config, embedded: Option<serde_json::Value>) -> anyhow::Result<Catalog> {
    load_with(config, embedded, None).await
}

/// [`load`], but a document fetched from a URL whose cached copy is younger
/// than `cache_max_age` is read from the cache without fetching.
pub async fn load_with(
    config: &Config,
    embedded: Option<serde_json::Value>,
    cache_max_age: Option<Duration>,
) -> anyhow::Result<Catalog> {
    let options = options(config);
    let source = match (&config.identity, &config.tools.openapi, embedded) {
        (Identity::X(_) | Identity::DemoSandbox { .. }, Some(source), _) => source.clone(),
        (Identity::DemoSandbox { .. }, None, Some(doc)) => {
            return report(xmcp_openapi::convert(&doc, &options)?, "the simulated X");
        }
        (Identity::X(x), None, _) => OpenApiSource::Url(
            x.oauth
                .api_url
                .join("/2/openapi.json")
                .map_err(|e| anyhow::anyhow!("X's OpenAPI URL: {e}"))?,
        ),
        _ => return Ok(Catalog::empty()),
    };
    match source {
        OpenApiSource::File(path) => {
            let bytes = std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read X's OpenAPI document {}: {e} (XMCP_X_OPENAPI)",
                    path.display()
                )
            })?;
            let catalog = xmcp_openapi::load(&bytes, &options)
                .map_err(|e| anyhow::anyhow!("{} (XMCP_X_OPENAPI={})", e, path.display()))?;
            report(catalog, &path.display().to_string())
        }
        OpenApiSource::Url(url) => {
            let cache = cache_path(config);
            if let Some(max_age) = cache_max_age
                && let Some(catalog) = fresh_cache(&cache, max_age, &options)
            {
                return report(catalog, &cache.display().to_string());
            }
            let fetched = match fetch(&url).await {
                Ok(bytes) => match xmcp_openapi::load(&bytes, &options) {
                    Ok(catalog) => {
                        write_cache(&cache, &bytes);
                        return report(catalog, url.as_str());
                    }
                    Err(e) => format!("{url} is not a usable OpenAPI document: {e}"),
                },
                Err(e) => e,
            };
            match std::fs::read(&cache) {
                Ok(bytes) => {
                    tracing::warn!(
                        problem = %fetched,
                        cache = %cache.display(),
                        "using the cached copy of X's OpenAPI document"
                    );
                    let catalog = xmcp_openapi::load(&bytes, &options)?;
                    report(catalog, &cache.display().to_string())
                }
                Err(_) => Err(anyhow::anyhow!(
                    "{fetched}, and there is no cached copy at {}; set XMCP_X_OPENAPI to a local copy of X's OpenAPI document",
                    cache.display()
                )),
            }
        }
    }
}

/// The cached document, if it is younger than `max_age` and still usable.
fn fresh_cache(path: &Path, max_age: Duration, options: &Options) -> Option<Catalog> {
    let age = std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()?;
    if age > max_age {
        return None;
    }
    xmcp_openapi::load(&std::fs::read(path).ok()?, options).ok()
}

fn report(catalog: Catalog, from: &str) -> anyhow::Result<Catalog> {
    for w in &catalog.warnings {
        tracing::warn!("{w}");
    }
    for s in &catalog.skipped {
        tracing::debug!(operation = %s.operation, reason = %s.reason, "not a tool");
    }
    if catalog.tools.is_empty() {
        tracing::warn!(
            from,
            "no X operation became a tool; check XMCP_TOOLS_ALLOW, XMCP_TOOLS_DENY and XMCP_TOOLS_TAGS"
        );
    }
    tracing::info!(
        from,
        version = %catalog.version,
        tools = catalog.tools.len(),
        skipped = catalog.skipped.len(),
        "X tools loaded"
    );
    Ok(catalog)
}

async fn fetch(url: &Url) -> Result<Vec<u8>, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("xmcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered HTTP {}", resp.status().as_u16()));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("cannot fetch {url}: {}", e.without_url()))?
    {
        if bytes.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("{url} is larger than {MAX_DOCUMENT} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Replace the cache atomically; failing to write it only costs the
/// fallback.
fn write_cache(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("json.tmp");
    let result = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
        .and_then(|()| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        tracing::warn!(error = %e, path = %path.display(), "cannot cache X's OpenAPI document");
    }
}
