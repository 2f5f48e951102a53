//! `tools`, `bench` and `--version`: what the binary reports about X's
//! document and about itself.

use super::*;

#[test]
pub(super) fn tools_lists_what_xs_document_gives_and_why_the_rest_is_skipped() {
    let doc = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/x-api/openapi.json"
    );
    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--json"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tools: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tools.len(), 131);
    let create = tools.iter().find(|t| t["name"] == "createPosts").unwrap();
    // MCP's default for an absent readOnlyHint: the tool writes.
    assert_ne!(create["annotations"]["readOnlyHint"], true);
    assert_eq!(create["annotations"]["destructiveHint"], false);
    assert_eq!(create["_meta"]["xmcp.dev/x"]["op"], "POST /2/tweets");

    // What tools/list weighs, per selection, and the toolsets.
    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--stats"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let default = text
        .lines()
        .find(|l| l.starts_with("default (/mcp)"))
        .unwrap_or_else(|| panic!("{text}"));
    let bytes: usize = default.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(bytes <= 32_000, "{default}");
    for row in ["/mcp/x/all", "/mcp/readonly", "/mcp/x/posts", "/mcp/x/dm"] {
        assert!(text.contains(row), "{row}: {text}");
    }
    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--toolsets"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("core (20 operations")),
        "{text}"
    );

    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--deny", "get*,search*"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("createPosts"), "{text}");
    assert!(!text.contains("getUsersMe "), "{text}");
    assert!(text.contains("streamPosts: a streaming endpoint"), "{text}");

    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", "/nonexistent/openapi.json"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/openapi.json"));
}

/// Run `xmcp bench` briefly with `args`: the first row of its table, by
/// column, and all it printed.
pub(super) async fn bench_row(args: &[&str]) -> (Vec<(String, String)>, String) {
    let mut command = tokio::process::Command::new(bin());
    command
        .args([
            "bench",
            "--seconds",
            "1",
            "--rounds",
            "1",
            "--concurrency",
            "2",
        ])
        .args(args)
        .env("XMCP_LOG", "off")
        .env_remove("XMCP_BENCH_DATABASE_URL")
        .kill_on_drop(true);
    // A bound, not a measurement: the run takes a few seconds.
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), command.output())
        .await
        .expect("the bench finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("concurrency"));
    let heading = lines.next().expect("a table heading");
    let row = lines.next().expect("a table row");
    // Columns are right-aligned: a value ends where its heading ends.
    let mut columns = Vec::new();
    let mut from = 0;
    for value in row.split_whitespace() {
        let end = value.as_ptr() as usize - row.as_ptr() as usize + value.len();
        let name = heading.get(from..end).unwrap_or_default().trim().to_owned();
        columns.push((name, value.to_owned()));
        from = end;
    }
    assert_eq!(
        heading.len(),
        from,
        "every heading has a value:\n{heading}\n{row}"
    );
    (columns, stdout.into_owned())
}

pub(super) fn number(row: &[(String, String)], column: &str) -> f64 {
    let (_, v) = row
        .iter()
        .find(|(n, _)| n == column)
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"));
    v.parse()
        .unwrap_or_else(|_| panic!("{column} is {v}, not a number: {row:?}"))
}

#[tokio::test]
pub(super) async fn the_bench_measures_xmcp_and_every_reference_without_errors() {
    // Stateless with opaque tokens, and the alternatives CI installs:
    // FastMCP (Python) and the TypeScript SDK.
    let python = std::env::var("XMCP_TEST_PYTHON").ok();
    let typescript = std::env::var("XMCP_TEST_TYPESCRIPT").ok();
    let mut args = vec![];
    let mut targets = vec!["req/s", "sdk req/s", "handler req/s", "bare req/s"];
    if let Some(p) = &python {
        args.extend(["--python", p.as_str()]);
        targets.push("fastmcp req/s");
    }
    if let Some(dir) = &typescript {
        args.extend(["--typescript", dir.as_str()]);
        targets.push("typescript req/s");
    }
    let (row, out) = bench_row(&args).await;
    assert_eq!(number(&row, "errors"), 0.0, "{row:?}");
    for t in targets {
        assert!(number(&row, t) > 0.0, "{t}: {row:?}");
    }
    // Calls that reach X, through xmcp and directly: none failed, and
    // each call through xmcp left one audit row.
    let mut x = out
        .lines()
        .skip_while(|l| !l.starts_with("calls that reach X"))
        .skip(1);
    let heading = x.next().expect("the X calls' heading");
    assert!(heading.trim_end().ends_with("errors"), "{heading}");
    let cells: Vec<&str> = x
        .next()
        .expect("an X calls row")
        .split_whitespace()
        .collect();
    assert_eq!(cells.len(), 9, "{cells:?}");
    assert_eq!(cells[8], "0", "errors: {cells:?}");
    let audited = out
        .lines()
        .find_map(|l| l.strip_prefix("audit rows written: "))
        .expect("the audit count");
    let (rows, calls) = audited.split_once(" for ").unwrap();
    assert_eq!(rows, calls.split_whitespace().next().unwrap(), "{audited}");
    assert!(rows.parse::<u64>().unwrap() > 0);
    assert!(out.contains("ledger writes per call to X"), "{out}");
    assert!(out.contains("/mcp (default)"), "{out}");
    for ratio in ["sdk/bare", "handler/bare", "xmcp/bare"] {
        let r = number(&row, ratio);
        assert!(r > 0.0 && r.is_finite(), "{ratio}: {row:?}");
    }

    // Stateful, with JWT access tokens: sessions opened on xmcp and the SDK.
    let (row, out) = bench_row(&["--stateful", "--token-format", "jwt"]).await;
    assert_eq!(number(&row, "errors"), 0.0, "{row:?}");
    for t in ["req/s", "sdk req/s", "handler req/s", "bare req/s"] {
        assert!(number(&row, t) > 0.0, "{t}: {row:?}");
    }
    // And what a thousand open sessions weigh on each.
    let sessions = out
        .lines()
        .find(|l| l.starts_with("memory of 1000 open sessions:"))
        .unwrap_or_else(|| panic!("no session memory in:\n{out}"));
    assert!(
        sessions.contains(" xmcp ") && sessions.contains(" sdk "),
        "{sessions}"
    );
}

#[test]
pub(super) fn the_version_names_the_x_document_the_tools_were_checked_against() {
    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "xmcp {} (tools checked against X API OpenAPI {})\n",
            env!("CARGO_PKG_VERSION"),
            xmcp_openapi::X_OPENAPI_CHECKED
        )
    );
}
