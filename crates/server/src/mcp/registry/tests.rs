//! The registry with tool sources of the tests' own.

use super::*;
use rmcp::model::ToolAnnotations;
use serde_json::json;
use std::collections::BTreeSet;

/// Tools named by their toolset and whether they only read; calls
/// answer with the tool's name.
struct Fake(
    Vec<(
        &'static str,
        Option<&'static str>,
        bool,
        &'static [&'static str],
    )>,
);

#[async_trait::async_trait]
impl ToolSource for Fake {
    fn tools(&self) -> Vec<ToolDef> {
        self.0
            .iter()
            .map(|(name, set, read_only, scopes)| ToolDef {
                tool: Tool::new(*name, "", super::super::builtin::no_arguments())
                    .annotate(ToolAnnotations::new().read_only(*read_only)),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                toolset: set.map(str::to_owned),
                core: *name == "read_post",
                public: false,
                full_schema: None,
                once: false,
            })
            .collect()
    }

    async fn call(&self, call: Call<'_>) -> Called {
        CallToolResponse::from(CallToolResult::success(vec![ContentBlock::text(
            call.name.to_owned(),
        )]))
        .into()
    }
}

fn registry() -> Registry {
    let fake = Fake(vec![
        ("whoami", None, true, &["users.read"]),
        ("sign_in", None, false, &[]),
        ("read_post", Some("posts"), true, &["tweet.read"]),
        ("write_post", Some("posts"), false, &["tweet.write"]),
        ("read_dm", Some("dm"), true, &["dm.read"]),
        ("broadcast", Some("spaces"), false, &["broadcast.write"]),
    ]);
    Registry::new(
        vec![Arc::new(fake)],
        RegistryConfig {
            toolsets: vec!["core".into()],
            read_only: false,
            issuable: ["users.read", "tweet.read", "tweet.write", "dm.read"]
                .map(String::from)
                .to_vec(),
            how_to_grant: GRANT_BY_REAUTHORIZING,
        },
    )
}

fn names(r: &Registry, v: &View) -> Vec<String> {
    r.list(v).into_iter().map(|t| t.name.to_string()).collect()
}

fn sel(sets: &[&str], read_only: bool) -> Selection {
    Selection {
        toolsets: (!sets.is_empty()).then(|| {
            sets.iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>()
        }),
        read_only,
    }
}

fn principal(scopes: &[&str]) -> Principal {
    Principal {
        user_id: "u".into(),
        subject: "x:1".into(),
        username: None,
        client_id: "c".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        grant_id: "g".into(),
        expires_at: 0,
        resource: None,
    }
}

fn text(r: &CallToolResponse) -> String {
    let CallToolResponse::Complete(r) = r else {
        panic!("a result")
    };
    r.content[0].as_text().unwrap().text.clone()
}

#[test]
fn selections_narrow_what_is_listed_and_callable() {
    let r = registry();
    // Default: the built-in tools, core, and the search tools for the
    // rest.
    assert_eq!(
        names(&r, &r.view(&[])),
        [
            "whoami",
            "sign_in",
            "read_post",
            "search_tools",
            "describe_tools",
            "call_tool"
        ]
    );
    // Named toolsets: exactly those, no search tools.
    assert_eq!(
        names(&r, &r.view(&[&sel(&["posts"], false)])),
        ["whoami", "sign_in", "read_post", "write_post"]
    );
    // Read-only: no tool that writes, built-in ones included.
    let ro = r.view(&[&sel(&["posts"], true)]);
    assert_eq!(names(&r, &ro), ["whoami", "read_post"]);
    // Selections intersect.
    assert_eq!(
        names(
            &r,
            &r.view(&[&sel(&["posts"], false), &sel(&["dm"], false)])
        ),
        ["whoami", "sign_in"]
    );
    assert!(r.check(&sel(&["posts", "all"], false)).is_ok());
    assert!(
        r.check(&sel(&["nope"], false))
            .unwrap_err()
            .contains("nope")
    );
}

#[test]
fn a_wider_selection_covers_a_narrower_one_and_never_the_reverse() {
    let r = registry();
    let everything = Selection::everything();
    let posts = sel(&["posts"], false);
    let posts_ro = sel(&["posts"], true);
    assert!(r.covers(&everything, &posts));
    assert!(r.covers(&posts, &posts_ro));
    assert!(r.covers(&sel(&["all"], false), &everything));
    assert!(!r.covers(&posts, &everything));
    assert!(!r.covers(&posts_ro, &posts));
    assert!(!r.covers(&sel(&[], true), &posts));
    assert!(!r.covers(&posts, &sel(&["dm"], false)));
    // A narrower resource names only its tools' scopes.
    assert_eq!(r.scopes_for(&posts_ro), ["tweet.read", "users.read"]);
}

#[tokio::test]
async fn dispatch_decides_whichever_way_a_tool_is_called() {
    let r = registry();
    let all = principal(&["users.read", "tweet.read", "tweet.write", "dm.read"]);
    let call = |view: View, name: &'static str, args: Value, p: Principal| {
        let r = &r;
        async move {
            let args = args.as_object().cloned().unwrap_or_default();
            r.call(&view, name, args, Ok(&p)).await
        }
    };
    let ok = call(r.view(&[]), "write_post", json!({}), all.clone()).await;
    assert_eq!(text(&ok.unwrap()), "write_post");
    // Not listed by default, callable by name and through call_tool.
    let through = call(
        r.view(&[]),
        "call_tool",
        json!({"name": "read_dm"}),
        all.clone(),
    )
    .await;
    assert_eq!(text(&through.unwrap()), "read_dm");
    // Read-only: refused by name and through call_tool.
    for (name, args) in [
        ("write_post", json!({})),
        ("call_tool", json!({"name": "write_post"})),
    ] {
        let refused = call(r.view(&[&sel(&[], true)]), name, args, all.clone()).await;
        assert!(text(&refused.unwrap()).contains("read-only"));
    }
    // Outside the selection: refused, naming the toolset.
    let refused = call(
        r.view(&[&sel(&["dm"], false)]),
        "write_post",
        json!({}),
        all.clone(),
    )
    .await;
    assert!(text(&refused.unwrap()).contains("`posts`"));
    // Scopes: missing, and not grantable at all.
    let narrow = principal(&["users.read", "tweet.read"]);
    let refused = call(r.view(&[]), "write_post", json!({}), narrow.clone()).await;
    assert!(text(&refused.unwrap()).contains("tweet.write"));
    let refused = call(r.view(&[]), "broadcast", json!({}), all.clone()).await;
    assert!(text(&refused.unwrap()).contains("XMCP_SCOPES"));
    // call_tool does not call itself.
    let refused = call(
        r.view(&[]),
        "call_tool",
        json!({"name": "call_tool"}),
        all.clone(),
    )
    .await;
    assert!(text(&refused.unwrap()).contains("search tools"));
    // Unknown names are the caller's error.
    assert!(
        call(r.view(&[]), "nope", json!({}), all.clone())
            .await
            .is_err()
    );
    // Nobody signed in: only public tools run.
    let v = r.view(&[]);
    let refused = r.call(&v, "whoami", Map::new(), Err("nobody")).await;
    assert_eq!(text(&refused.unwrap()), "nobody");
    // Step-up is offered only where it can help.
    assert_eq!(
        r.step_up_scopes(&r.view(&[]), "write_post", None),
        Some(&["tweet.write".to_owned()][..])
    );
    assert_eq!(
        r.step_up_scopes(&r.view(&[&sel(&[], true)]), "write_post", None),
        None
    );
    assert_eq!(r.step_up_scopes(&r.view(&[]), "broadcast", None), None);
    let args = json!({"name": "write_post"});
    assert_eq!(
        r.step_up_scopes(&r.view(&[]), "call_tool", args.as_object()),
        Some(&["tweet.write".to_owned()][..])
    );
}
