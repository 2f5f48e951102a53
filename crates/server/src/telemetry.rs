//! Structured logs: text or JSON on stderr, filtered by `XMCP_LOG`.
//! What never to log: tokens, codes, secrets, passwords, query strings of
//! OAuth endpoints. Spans on credential paths use `skip_all`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// The MCP SDK logs its own plumbing at `info`: in stateless mode, three
/// lines for every request ("Service initialized as server", "input stream
/// terminated", "serve finished"). Unless `filter` says what to do with
/// `rmcp`, only its warnings and errors are kept; `XMCP_LOG=info,rmcp=info`
/// brings the rest back.
pub fn directives(filter: &str) -> String {
    if filter.split(',').any(|d| d.trim().starts_with("rmcp")) {
        filter.to_owned()
    } else if filter.trim().is_empty() {
        "rmcp=warn".to_owned()
    } else {
        format!("{filter},rmcp=warn")
    }
}

/// Install the global subscriber. Call once, early.
pub fn init(format: LogFormat, filter: &str) {
    let filter =
        EnvFilter::try_new(directives(filter)).unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    // Colours only on a terminal: not in files, pipes or the journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn the_sdk_is_quiet_unless_the_filter_names_it() {
        assert_eq!(directives("info"), "info,rmcp=warn");
        assert_eq!(directives("xmcp=debug,info"), "xmcp=debug,info,rmcp=warn");
        assert_eq!(directives(""), "rmcp=warn");
        assert_eq!(directives("info,rmcp=debug"), "info,rmcp=debug");
        assert_eq!(
            directives("info, rmcp::service=trace"),
            "info, rmcp::service=trace"
        );
        for f in ["info", "warn,xmcp=trace", "", "debug,rmcp=info"] {
            assert!(
                tracing_subscriber::EnvFilter::try_new(directives(f)).is_ok(),
                "{f}"
            );
        }
    }
}
