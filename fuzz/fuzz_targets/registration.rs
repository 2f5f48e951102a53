//! RFC 7591 registration bodies: `validate` never panics, and what it
//! accepts is safe to store and show.
#![no_main]
use libfuzzer_sys::fuzz_target;

/// Scopes a server grants: some of X's, as xmcp's configuration gives them.
const SCOPES: [&str; 6] = [
    "tweet.read",
    "tweet.write",
    "users.read",
    "like.write",
    "dm.read",
    "media.write",
];

fuzz_target!(|data: &[u8]| {
    let scopes: Vec<String> = SCOPES.iter().map(|s| (*s).to_owned()).collect();
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
