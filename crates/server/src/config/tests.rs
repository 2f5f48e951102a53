//! Resolving configurations, good and bad.

use super::*;
use merge::Merge as _;

/// `base` with the settings `set` gives.
fn with(mut base: Settings, set: impl FnOnce(&mut Settings)) -> Settings {
    set(&mut base);
    base
}

/// The settings a command line gives, as clap reads it.
fn flags(args: &[&str]) -> Settings {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }
    let cli: Cli =
        clap::Parser::try_parse_from(std::iter::once("xmcp").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    cli.settings
}

fn demo() -> Settings {
    with(Settings::default(), |s| s.x.demo = Some(true))
}

#[test]
fn defaults_are_loopback_and_sqlite() {
    let c = Config::resolve(None, demo()).unwrap();
    assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8000/");
    assert_eq!(c.auth.issuer, "http://127.0.0.1:8000");
    assert_eq!(c.auth.resource, "http://127.0.0.1:8000/mcp");
    assert!(c.database_url.starts_with("sqlite://"));
    assert!(matches!(c.encryption_key, KeySource::DataDirFile(_)));
}

#[test]
fn errors_say_how_to_fix() {
    let cases = [
        (
            with(demo(), |s| {
                s.server.public_url = Some("http://mcp.example.com".into())
            }),
            "https",
        ),
        (
            with(demo(), |s| {
                s.server.public_url = Some("https://mcp.example.com/base".into())
            }),
            "bare origin",
        ),
        (
            with(demo(), |s| s.server.host = Some("0.0.0.0".parse().unwrap())),
            "XMCP_PUBLIC_URL",
        ),
        (
            with(demo(), |s| {
                s.store.database_url = Some("postgres://db/x".into())
            }),
            "xmcp gen-key",
        ),
        (
            with(demo(), |s| {
                s.keys.encryption_key = Some("short".to_owned().into())
            }),
            "xmcp gen-key",
        ),
        (Settings::default(), "--demo"),
        (
            with(demo(), |s| s.auth.refresh_grace = Some(600)),
            "XMCP_REFRESH_GRACE",
        ),
        (with(demo(), |s| s.log.log = Some("[[".into())), "XMCP_LOG"),
        (
            with(Settings::default(), |s| {
                s.x.x_client_id = Some("app".into());
                s.x.x_scopes = Some(vec!["tweet.read users.read".into()]);
            }),
            "offline.access",
        ),
        (
            with(Settings::default(), |s| {
                s.x.x_client_id = Some("app".into());
                s.x.x_token_url = Some("http://api.example.com/2/oauth2/token".into());
            }),
            "XMCP_X_TOKEN_URL",
        ),
        (
            with(demo(), |s| {
                s.x.x_client_secret_file = Some("/nonexistent".into())
            }),
            "XMCP_X_CLIENT_ID",
        ),
        (
            with(Settings::default(), |s| {
                s.x.x_client_id = Some("app".into());
                s.oidc.oidc_issuer = Some("https://id.example.com".into());
            }),
            "choose one",
        ),
        (
            with(Settings::default(), |s| {
                s.oidc.oidc_issuer = Some("https://id.example.com".into())
            }),
            "XMCP_OIDC_CLIENT_ID",
        ),
        (
            with(demo(), |s| {
                s.auth.upstream_callback_path = Some("callback".into())
            }),
            "XMCP_UPSTREAM_CALLBACK_PATH",
        ),
        (
            with(demo(), |s| s.x.x_refresh_margin = Some(-1)),
            "XMCP_X_REFRESH_MARGIN",
        ),
        (
            with(demo(), |s| s.tools.x_rate_limit_max_wait = Some(3600)),
            "XMCP_X_RATE_LIMIT_MAX_WAIT",
        ),
        (
            with(demo(), |s| {
                s.tools.x_openapi = Some("/nonexistent/openapi.json".into())
            }),
            "x_openapi /nonexistent/openapi.json is not a readable file",
        ),
        (
            with(demo(), |s| {
                s.tools.x_openapi = Some("http://api.example.com/2/openapi.json".into())
            }),
            "must use https",
        ),
        (
            with(Settings::default(), |s| {
                s.external.external_issuer = Some("https://auth.example.com".into())
            }),
            "exactly one of XMCP_EXTERNAL_JWKS_URL",
        ),
        (
            with(Settings::default(), |s| {
                s.external.external_issuer = Some("https://auth.example.com".into());
                s.external.external_introspection_url =
                    Some("https://auth.example.com/introspect".into());
            }),
            "XMCP_EXTERNAL_CLIENT_ID",
        ),
        (
            with(Settings::default(), |s| {
                s.external.external_issuer = Some("https://auth.example.com".into());
                s.external.external_jwks_url = Some("https://auth.example.com/jwks".into());
                s.x.x_client_id = Some("app".into());
            }),
            "cannot be combined",
        ),
    ];
    for (s, hint) in cases {
        let e = Config::resolve(None, s).unwrap_err().to_string();
        assert!(e.contains(hint), "{e}");
    }
}

/// The demo signs anyone in as its demo accounts: it stays on this
/// machine unless the operator says otherwise.
#[test]
fn the_demo_refuses_to_be_exposed_unless_asked() {
    let exposed = [
        with(demo(), |s| {
            s.server.host = Some("0.0.0.0".parse().unwrap());
            s.server.public_url = Some("http://127.0.0.1:8000".into());
        }),
        with(demo(), |s| {
            s.server.host = Some("192.168.1.5".parse().unwrap());
            s.server.public_url = Some("http://localhost:8000".into());
        }),
        with(demo(), |s| {
            s.server.public_url = Some("https://demo.example.com".into())
        }),
        with(demo(), |s| {
            s.server.host = Some("::".parse().unwrap());
            s.server.public_url = Some("https://demo.example.com".into());
        }),
    ];
    for s in exposed {
        let e = Config::resolve(None, s.clone()).unwrap_err().to_string();
        assert!(
            e.contains("--demo-public") && e.contains("XMCP_DEMO_PUBLIC=true"),
            "{e}"
        );
        let c = Config::resolve(None, with(s, |s| s.server.demo_public = Some(true))).unwrap();
        assert!(c.demo);
    }
    for local in ["127.0.0.1", "::1"] {
        let s = with(demo(), |s| s.server.host = Some(local.parse().unwrap()));
        assert!(Config::resolve(None, s).is_ok(), "{local}");
    }
    // Without the demo, the setting changes nothing.
    let s = with(Settings::default(), |s| {
        s.server.host = Some("0.0.0.0".parse().unwrap());
        s.server.public_url = Some("https://mcp.example.com".into());
        s.auth.users = vec![UserSettings {
            username: "alice".into(),
            password_hash: xmcp_crypto::password::hash("x"),
            display_name: None,
        }];
    });
    assert!(Config::resolve(None, s).is_ok());
}

#[test]
fn the_identity_provider_follows_the_settings() {
    let x = Config::resolve(
        None,
        with(Settings::default(), |s| {
            s.x.x_client_id = Some("app".into());
            s.x.x_client_secret = Some("shh-secret".to_owned().into());
        }),
    )
    .unwrap();
    let Identity::X(up) = &x.identity else {
        panic!("{:?}", x.identity)
    };
    assert_eq!(
        up.oauth.token_url.as_str(),
        "https://api.x.com/2/oauth2/token"
    );
    assert_eq!(up.oauth.required_scopes, DEFAULT_X_SCOPES);
    assert_eq!(up.refresh_margin, 60);
    assert!(!format!("{x:?}").contains("shh-secret"));
    let demo = Config::resolve(None, demo()).unwrap();
    assert!(matches!(demo.identity, Identity::DemoSandbox { .. }));
    let oidc = Config::resolve(
        None,
        with(Settings::default(), |s| {
            s.oidc.oidc_issuer = Some("https://id.example.com/realms/a".into());
            s.oidc.oidc_client_id = Some("xmcp".into());
        }),
    )
    .unwrap();
    assert!(matches!(oidc.identity, Identity::Oidc(_)));
}

#[test]
fn debug_output_hides_database_credentials() {
    let s = with(demo(), |s| {
        s.store.database_url = Some("postgres://app:hunter2@db.internal:5432/xmcp".into());
        s.keys.encryption_key = Some(
            xmcp_crypto::envelope::DataKey::generate("k")
                .unwrap()
                .export(),
        );
    });
    let c = Config::resolve(None, s).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("postgres://***@db.internal:5432/xmcp"),
        "{debug}"
    );
    assert_eq!(
        redacted_database_url("sqlite:///tmp/x.db"),
        "sqlite:///tmp/x.db"
    );
}

#[test]
fn list_settings_split_on_commas_and_spaces_and_drop_empty_items() {
    let c = Config::resolve(
        None,
        with(demo(), |s| {
            s.auth.introspection_clients = Some(vec!["a, b,".into(), " c".into()]);
            s.server.allowed_hosts = Some(vec!["h1 ,h2".into()]);
        }),
    )
    .unwrap();
    assert_eq!(c.auth.introspection_clients, ["a", "b", "c"]);
    assert_eq!(c.allowed_hosts[..2], ["h1", "h2"]);
}

#[test]
fn flags_override_file() {
    let file = Settings::from_toml("port = 9000\ndemo = true\n[[clients]]\nclient_id = \"cli\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n").unwrap();
    let c = Config::resolve(Some(file.clone()), Settings::default()).unwrap();
    assert_eq!(c.port, 9000);
    assert_eq!(c.auth.static_clients.len(), 1);
    let c = Config::resolve(
        Some(file),
        with(Settings::default(), |s| s.server.port = Some(9100)),
    )
    .unwrap();
    assert_eq!(c.port, 9100);
    assert!(Settings::from_toml("no_such_setting = 1").is_err());
}

/// One declaration gives each setting its TOML key, flag and variable, by
/// one rule: `key`, `--key-with-dashes`, `XMCP_KEY`. A secret has a flag
/// and a variable but no key: the file names its `*_file` instead. Only the
/// `[[clients]]` and `[[users]]` tables are the file's alone.
#[test]
fn each_setting_is_a_key_a_flag_and_a_variable_by_one_rule() {
    use clap::Args;
    let cmd = Settings::augment_args(clap::Command::new("settings"));
    let keys: std::collections::BTreeSet<&str> = Settings::keys().iter().copied().collect();
    let mut flags = std::collections::BTreeSet::new();
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        assert_eq!(a.get_long(), Some(id.replace('_', "-").as_str()), "{id}");
        assert_eq!(
            a.get_env().and_then(|e| e.to_str()),
            Some(format!("XMCP_{}", id.to_uppercase()).as_str()),
            "{id}"
        );
        assert!(
            keys.contains(id) || keys.contains(format!("{id}_file").as_str()),
            "{id} is neither a key of the file nor a secret with a `_file` key"
        );
        flags.insert(id);
    }
    let file_only: Vec<_> = keys.difference(&flags).collect();
    assert_eq!(file_only, [&"clients", &"users"]);
    assert!(keys.len() > 60, "{keys:?}");
}

#[test]
fn the_file_holds_no_secret_and_an_absent_flag_keeps_the_files_value() {
    for secret in [
        "encryption_key",
        "previous_encryption_keys",
        "x_client_secret",
        "x_bearer_token",
        "oidc_client_secret",
        "external_client_secret",
        "metrics_token",
    ] {
        let e = Settings::from_toml(&format!("log = \"info\"\n{secret} = \"s3cret\""))
            .err()
            .unwrap_or_else(|| panic!("{secret} is refused in the file"));
        assert!(
            e.contains(&format!("line 2, column 1: unknown field `{secret}`")),
            "{e}"
        );
        assert!(
            e.contains(&format!("set `{secret}_file`"))
                && e.contains(&format!("XMCP_{}", secret.to_uppercase())),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }
    // `x_prices_file` is a setting, but `x_prices` is no secret.
    let e = Settings::from_toml("x_prices = \"a\"").err().unwrap();
    assert!(
        e.contains("unknown field `x_prices`, expected one of")
            && !e.contains("a secret is not read"),
        "{e}"
    );

    let file = Settings::from_toml(
        "demo = true\ntools_readonly = true\nhost = \"127.0.0.2\"\nport = 9000",
    )
    .unwrap();
    // Flags as clap reads them: those absent (a `--demo` not given is
    // `false`) leave the file's value; given ones win.
    let mut flags = flags(&["--port", "9100"]);
    flags.merge(file);
    assert_eq!(flags.x.demo, Some(true));
    assert_eq!(flags.tools.tools_readonly, Some(true));
    assert_eq!(flags.server.host, Some("127.0.0.2".parse().unwrap()));
    assert_eq!(flags.server.port, Some(9100));
}

/// A switch is set by a flag alone or with a value, and a flag (or its
/// variable) that says `false` turns off what the file turned on.
#[test]
fn a_switch_given_as_false_beats_the_files_true() {
    let file = Settings::from_toml("demo = true\ndemo_public = true").unwrap();
    for (args, expected) in [
        (&[][..], Some(true)),
        (&["--demo", "--demo-public"][..], Some(true)),
        (&["--demo=false", "--demo-public", "no"][..], Some(false)),
    ] {
        let mut s = flags(args);
        s.merge(file.clone());
        assert_eq!(
            (s.x.demo, s.server.demo_public),
            (expected, expected),
            "{args:?}"
        );
    }
    assert_eq!(flags(&["--demo"]).x.demo, Some(true));
    assert_eq!(flags(&[]).x.demo, None);
}

proptest::proptest! {
    /// A file of any text is read or refused with a message, never a
    /// panic; a key no setting has is always refused, naming its line.
    #[test]
    fn any_file_is_read_or_refused(
        text in "\\PC{0,200}",
        key in "[a-z][a-z0-9_]{0,24}",
        line in 0usize..5,
    ) {
        let _ = Settings::from_toml(&text);
        proptest::prop_assume!(!Settings::keys().contains(&key.as_str()));
        let file = format!("port = 1\n{}{key} = 1\n", "\n".repeat(line));
        let e = Settings::from_toml(&file).err().unwrap_or_default();
        let at = format!("line {}, column 1: unknown field `{key}`", line + 2);
        proptest::prop_assert!(e.contains(&at), "{}", e);
    }
}
