//! Resolving configurations, good and bad.

use super::*;

fn demo() -> Settings {
    Settings {
        demo: Some(true),
        ..Default::default()
    }
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
            Settings {
                public_url: Some("http://mcp.example.com".into()),
                ..demo()
            },
            "https",
        ),
        (
            Settings {
                public_url: Some("https://mcp.example.com/base".into()),
                ..demo()
            },
            "bare origin",
        ),
        (
            Settings {
                host: Some("0.0.0.0".parse().unwrap()),
                ..demo()
            },
            "XMCP_PUBLIC_URL",
        ),
        (
            Settings {
                database_url: Some("postgres://db/x".into()),
                ..demo()
            },
            "xmcp gen-key",
        ),
        (
            Settings {
                encryption_key: Some("short".to_owned().into()),
                ..demo()
            },
            "xmcp gen-key",
        ),
        (Settings::default(), "--demo"),
        (
            Settings {
                refresh_grace: Some(600),
                ..demo()
            },
            "XMCP_REFRESH_GRACE",
        ),
        (
            Settings {
                log: Some("[[".into()),
                ..demo()
            },
            "XMCP_LOG",
        ),
        (
            Settings {
                x_client_id: Some("app".into()),
                x_scopes: Some(vec!["tweet.read users.read".into()]),
                ..Default::default()
            },
            "offline.access",
        ),
        (
            Settings {
                x_client_id: Some("app".into()),
                x_token_url: Some("http://api.example.com/2/oauth2/token".into()),
                ..Default::default()
            },
            "XMCP_X_TOKEN_URL",
        ),
        (
            Settings {
                x_client_secret_file: Some("/nonexistent".into()),
                ..demo()
            },
            "XMCP_X_CLIENT_ID",
        ),
        (
            Settings {
                x_client_id: Some("app".into()),
                oidc_issuer: Some("https://id.example.com".into()),
                ..Default::default()
            },
            "choose one",
        ),
        (
            Settings {
                oidc_issuer: Some("https://id.example.com".into()),
                ..Default::default()
            },
            "XMCP_OIDC_CLIENT_ID",
        ),
        (
            Settings {
                upstream_callback_path: Some("callback".into()),
                ..demo()
            },
            "XMCP_UPSTREAM_CALLBACK_PATH",
        ),
        (
            Settings {
                x_refresh_margin: Some(-1),
                ..demo()
            },
            "XMCP_X_REFRESH_MARGIN",
        ),
        (
            Settings {
                x_rate_limit_max_wait: Some(3600),
                ..demo()
            },
            "XMCP_X_RATE_LIMIT_MAX_WAIT",
        ),
        (
            Settings {
                x_openapi: Some("/nonexistent/openapi.json".into()),
                ..demo()
            },
            "x_openapi /nonexistent/openapi.json is not a readable file",
        ),
        (
            Settings {
                x_openapi: Some("http://api.example.com/2/openapi.json".into()),
                ..demo()
            },
            "must use https",
        ),
        (
            Settings {
                external_issuer: Some("https://auth.example.com".into()),
                ..Default::default()
            },
            "exactly one of XMCP_EXTERNAL_JWKS_URL",
        ),
        (
            Settings {
                external_issuer: Some("https://auth.example.com".into()),
                external_introspection_url: Some("https://auth.example.com/introspect".into()),
                ..Default::default()
            },
            "XMCP_EXTERNAL_CLIENT_ID",
        ),
        (
            Settings {
                external_issuer: Some("https://auth.example.com".into()),
                external_jwks_url: Some("https://auth.example.com/jwks".into()),
                x_client_id: Some("app".into()),
                ..Default::default()
            },
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
        Settings {
            host: Some("0.0.0.0".parse().unwrap()),
            public_url: Some("http://127.0.0.1:8000".into()),
            ..demo()
        },
        Settings {
            host: Some("192.168.1.5".parse().unwrap()),
            public_url: Some("http://localhost:8000".into()),
            ..demo()
        },
        Settings {
            public_url: Some("https://demo.example.com".into()),
            ..demo()
        },
        Settings {
            host: Some("::".parse().unwrap()),
            public_url: Some("https://demo.example.com".into()),
            ..demo()
        },
    ];
    for s in exposed {
        let e = Config::resolve(None, s.clone()).unwrap_err().to_string();
        assert!(
            e.contains("--demo-public") && e.contains("XMCP_DEMO_PUBLIC=true"),
            "{e}"
        );
        let c = Config::resolve(
            None,
            Settings {
                demo_public: Some(true),
                ..s
            },
        )
        .unwrap();
        assert!(c.demo);
    }
    for local in ["127.0.0.1", "::1"] {
        let s = Settings {
            host: Some(local.parse().unwrap()),
            ..demo()
        };
        assert!(Config::resolve(None, s).is_ok(), "{local}");
    }
    // Without the demo, the setting changes nothing.
    let s = Settings {
        host: Some("0.0.0.0".parse().unwrap()),
        public_url: Some("https://mcp.example.com".into()),
        users: vec![UserSettings {
            username: "alice".into(),
            password_hash: xmcp_crypto::password::hash("x"),
            display_name: None,
        }],
        ..Default::default()
    };
    assert!(Config::resolve(None, s).is_ok());
}

#[test]
fn the_identity_provider_follows_the_settings() {
    let x = Config::resolve(
        None,
        Settings {
            x_client_id: Some("app".into()),
            x_client_secret: Some("shh-secret".to_owned().into()),
            ..Default::default()
        },
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
        Settings {
            oidc_issuer: Some("https://id.example.com/realms/a".into()),
            oidc_client_id: Some("xmcp".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(oidc.identity, Identity::Oidc(_)));
}

#[test]
fn debug_output_hides_database_credentials() {
    let s = Settings {
        database_url: Some("postgres://app:hunter2@db.internal:5432/xmcp".into()),
        encryption_key: Some(
            xmcp_crypto::envelope::DataKey::generate("k")
                .unwrap()
                .export(),
        ),
        ..demo()
    };
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
fn flags_override_file() {
    let file: Settings = toml::from_str("port = 9000\ndemo = true\n[[clients]]\nclient_id = \"cli\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n").unwrap();
    let c = Config::resolve(Some(file.clone()), Settings::default()).unwrap();
    assert_eq!(c.port, 9000);
    assert_eq!(c.auth.static_clients.len(), 1);
    let c = Config::resolve(
        Some(file),
        Settings {
            port: Some(9100),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.port, 9100);
    assert!(toml::from_str::<Settings>("no_such_setting = 1").is_err());
}
