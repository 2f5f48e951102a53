//! Structured logs: text or JSON on stderr, filtered by `XMCP_LOG`.
//! What never to log: tokens, codes, secrets, passwords, query strings of
//! OAuth endpoints. Spans on credential paths use `skip_all`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Call once, early.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
