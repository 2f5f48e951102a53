//! RFC 7591 registration bodies: `validate` never panics, and what it
//! accepts is safe to store and show.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scopes = xmcp_auth::config::default_scopes();
    if let Ok(meta) = xmcp_auth::registration::validate(data, &scopes) {
        for uri in &meta.redirect_uris {
            assert!(
                xmcp_auth::redirect::validate_registered(uri).is_ok(),
                "accepted an invalid redirect URI {uri:?}"
            );
        }
        if let Some(name) = &meta.client_name {
            assert!(!name.chars().any(char::is_control), "control character in {name:?}");
            assert!(name.chars().count() <= 100);
        }
        let _ = serde_json::to_value(&meta);
    }
});
