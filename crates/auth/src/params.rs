//! Form and query parameters as OAuth reads them (OAuth 2.1 §3.1, §3.2):
//! empty values count as absent, unknown parameters are ignored, and a
//! parameter that appears twice is an error.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("parameter `{0}` is repeated")]
    Repeated(String),
}

/// Parsed `application/x-www-form-urlencoded` parameters.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<String, String>,
    /// Parameters that may legitimately repeat (RFC 8707 `resource`).
    multi: HashMap<String, Vec<String>>,
}

/// Parameters allowed to appear more than once.
const MULTI: &[&str] = &["resource"];

impl Params {
    pub fn parse(input: &str) -> Result<Self, ParamsError> {
        let mut out = Params::default();
        for (k, v) in url::form_urlencoded::parse(input.as_bytes()) {
            if v.is_empty() {
                continue;
            }
            if MULTI.contains(&k.as_ref()) {
                out.multi
                    .entry(k.into_owned())
                    .or_default()
                    .push(v.into_owned());
                continue;
            }
            if out.values.contains_key(k.as_ref()) {
                return Err(ParamsError::Repeated(k.into_owned()));
            }
            out.values.insert(k.into_owned(), v.into_owned());
        }
        Ok(out)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// All values of a parameter that may repeat.
    pub fn all(&self, key: &str) -> &[String] {
        self.multi.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// The first parameter longer than its limit in `limits` (or than
    /// `default` for the others), with that limit; or a repeating one given
    /// more than [`MAX_REPEATS`] times. What an unauthenticated request may
    /// make the server store stays small.
    pub fn too_long(&self, limits: &[(&str, usize)], default: usize) -> Option<(String, usize)> {
        let limit = |k: &str| {
            limits
                .iter()
                .find(|(name, _)| *name == k)
                .map_or(default, |(_, n)| *n)
        };
        for (k, v) in &self.values {
            if v.len() > limit(k) {
                return Some((k.clone(), limit(k)));
            }
        }
        for (k, vs) in &self.multi {
            if vs.len() > MAX_REPEATS {
                return Some((k.clone(), limit(k)));
            }
            if vs.iter().any(|v| v.len() > limit(k)) {
                return Some((k.clone(), limit(k)));
            }
        }
        None
    }
}

/// Most values a repeating parameter may have.
pub const MAX_REPEATS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_is_absent_and_repeats_are_rejected() {
        let p = Params::parse("a=1&b=&resource=x&resource=y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.all("resource"), ["x", "y"]);
        assert_eq!(
            Params::parse("client_id=a&client_id=b").unwrap_err(),
            ParamsError::Repeated("client_id".into())
        );
        assert_eq!(Params::parse("x=%20+y").unwrap().get("x"), Some("  y"));
    }

    #[test]
    fn lengths_are_bounded() {
        let p = Params::parse(&format!("state={}&scope=a", "s".repeat(1025))).unwrap();
        assert_eq!(
            p.too_long(&[("state", 1024)], 2048),
            Some(("state".into(), 1024))
        );
        assert_eq!(p.too_long(&[("state", 2000)], 2048), None);
        let many = Params::parse("resource=a&resource=b&resource=c&resource=d&resource=e").unwrap();
        assert!(many.too_long(&[], 2048).is_some());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = Params::parse(&s);
        }

        #[test]
        fn round_trips_unique_pairs(pairs in proptest::collection::hash_map("[a-z_]{1,8}", ".{1,20}", 0..6)) {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let p = Params::parse(&encoded).unwrap();
            for (k, v) in &pairs {
                if MULTI.contains(&k.as_str()) {
                    prop_assert_eq!(p.all(k), std::slice::from_ref(v));
                } else {
                    prop_assert_eq!(p.get(k), Some(v.as_str()));
                }
            }
        }
    }
}
