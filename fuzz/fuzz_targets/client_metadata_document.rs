//! Client ID metadata documents (fetched from anywhere): parsing never
//! panics, and an accepted document's redirect URIs are valid.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = "https://client.example/metadata.json";
    if let Ok(client) = xmcp_auth::cimd::parse_document(id, data) {
        assert_eq!(client.client_id, id);
        for uri in &client.redirect_uris {
            assert!(xmcp_auth::redirect::validate_registered(uri).is_ok(), "{uri:?}");
        }
    }
});
