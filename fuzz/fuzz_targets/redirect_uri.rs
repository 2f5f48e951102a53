//! The redirect-URI matcher: two strings (split at the first NUL). A match
//! is exact, or differs only in the port of an http loopback URI.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmcp_auth::redirect::{matches, validate_registered};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (registered, requested) = s.split_once('\0').unwrap_or((s, s));
    let valid = validate_registered(registered).is_ok();
    if !matches(registered, requested) || registered == requested {
        return;
    }
    // A non-identical match: only loopback http, only the port may differ.
    assert!(valid || registered.starts_with("http://"), "{registered:?} ~ {requested:?}");
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        panic!("matched unparsable URIs {registered:?} ~ {requested:?}");
    };
    assert_eq!(a.scheme(), "http");
    assert_eq!(b.scheme(), "http");
    assert_eq!(a.host_str(), b.host_str());
    assert_eq!(a.path(), b.path());
    assert_eq!(a.query(), b.query());
    assert_eq!(b.fragment(), None);
    assert_eq!(a.username(), b.username());
    assert_eq!(a.password(), b.password());
});
