//! The authorize query and the token form: `Params::parse` never panics,
//! and what it accepts has no repeated single-valued parameter.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmcp_auth::params::Params;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Params::parse(s) {
        for key in ["client_id", "redirect_uri", "code", "grant_type", "code_verifier", "state"] {
            // `get` answers for single-valued keys; it must not panic.
            let _ = p.get(key);
        }
        let _ = p.all("resource");
    }
});
