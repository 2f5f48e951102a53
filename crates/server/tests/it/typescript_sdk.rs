//! A second independent client: the official MCP TypeScript SDK's OAuth
//! client drives the whole flow (discovery, dynamic registration, PKCE with
//! a state, consent, token, tool calls, a resource, refresh when the server
//! refuses its token), in stateless and in stateful mode (where it also
//! opens the `GET` stream the server declines, and ends its session). Needs
//! `XMCP_TEST_TYPESCRIPT` naming a directory where `npm ci` was run in
//! `tests/typescript`, and `node` on PATH; `.ci/run` sets them up.

use crate::harness::*;
use serde_json::{Value, json};

xmcp_test_support::both_backends!(typescript_sdk_oauth_client_completes_the_flow_in_both_modes);

async fn typescript_sdk_oauth_client_completes_the_flow_in_both_modes(backend: Backend) {
    let Some(dir) =
        xmcp_store::testing::required("XMCP_TEST_TYPESCRIPT", "the TypeScript SDK test")
    else {
        return;
    };
    for stateful in [false, true] {
        let app = builder(backend)
            .settings(|s| s.server.mcp_stateful = Some(stateful))
            .spawn()
            .await;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/typescript/sdk_oauth_client.mjs"
        );
        let mut command = tokio::process::Command::new("node");
        command.arg(script).arg(app.url("/mcp")).current_dir(&dir);
        let who = format!("the TypeScript client (stateful: {stateful})");
        let report = crate::python_sdk::client_report(command, &who).await;

        // What the SDK sent to /authorize, and what came back.
        assert_eq!(
            report["authorization_params"],
            json!({"response_type": "code", "code_challenge_method": "S256", "resource": app.url("/mcp")})
        );
        assert_eq!(report["state_returned"], true);
        assert_eq!(report["iss"], app.base);
        assert_eq!(
            report["pages"],
            json!(["/authorize", "/i/oauth2/authorize"])
        );

        let tools = report["tools"].as_array().unwrap();
        let mut listed: Vec<Value> = app.default_tools().into_iter().map(Value::from).collect();
        let mut tools = tools.clone();
        listed.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        tools.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        assert_eq!(tools, listed, "{report}");
        for name in ["echo", "whoami", "getUsersMe", "createPosts"] {
            assert!(tools.contains(&json!(name)), "{name}: {report}");
        }
        assert_eq!(report["whoami"]["subject"], "x:1850000000000000001");
        assert_eq!(report["whoami"]["client_id"], report["client_id"]);
        assert_eq!(report["x_me"]["data"]["username"], "demo_user");
        assert_eq!(report["posted_is_error"], false);
        assert_eq!(report["me_resource"]["data"]["username"], "demo_user");
        assert_eq!(report["echo"], "from typescript");
        assert_eq!(report["echo_after_refresh"], "after refresh");
        assert_eq!(report["refreshed"], true, "{report}");

        let sessions = app.app.store.counts().await.unwrap();
        if stateful {
            // A session, kept across the refresh, then ended by the client.
            let session = report["session"]
                .as_str()
                .unwrap_or_else(|| panic!("{report}"));
            assert_eq!(session.len(), 43, "{report}");
            assert_eq!(report["session_after_refresh"], session);
            assert_eq!(report["session_after_end"], Value::Null);
        } else {
            assert_eq!(report["session"], Value::Null, "{report}");
        }
        assert!(sessions.contains(&("mcp_sessions", 0)), "{sessions:?}");
    }
}
