//! Fault injection: make chosen endpoints fail the ways X fails.
//!
//! A fault names an endpoint as `METHOD /path/template` (the operation's path
//! in the sandbox's OpenAPI document, e.g. `POST /2/tweets` or
//! `GET /2/users/{id}/bookmarks`, and `POST /2/oauth2/token` for the token
//! endpoint), or `*` for every endpoint, and applies to the next `times`
//! matching requests (all of them when `times` is absent).

use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub endpoint: String,
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 Too Many Requests, the window resetting `reset_after` seconds from now.
    RateLimited {
        #[serde(default = "default_reset_after")]
        reset_after: i64,
    },
    /// A 5xx answer with X's problem body.
    ServerError { status: u16 },
    /// Answer normally, `millis` later.
    Slow { millis: u64 },
    /// 402 with X's `CreditsDepleted` problem (pay-per-use account out of credits).
    CreditsDepleted,
    /// 403 `client-not-enrolled`: the app is not attached to a project with
    /// access to the endpoint.
    NotEnrolled,
    /// The token endpoint refuses refresh tokens as X does for revoked or
    /// reused ones (`invalid_request`); other grants are unaffected.
    RefuseRefresh,
}

fn default_reset_after() -> i64 {
    60
}

impl Fault {
    pub fn matches(&self, endpoint: &str) -> bool {
        self.endpoint == "*" || self.endpoint.eq_ignore_ascii_case(endpoint)
    }
}

/// A fault description that does not parse; the message shows the syntax.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(String);

/// `ENDPOINT=WHAT[*TIMES]`, e.g. `GET /2/users/me=503*2`, `POST /2/tweets=429:900`,
/// `*=slow:250`, `GET /2/tweets/search/recent=402`,
/// `POST /2/oauth2/token=refuse-refresh`.
impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| {
            FaultParseError(format!(
                "bad fault {s:?}: {why}; expected ENDPOINT=WHAT[*TIMES] with WHAT one of \
                 429[:RESET_SECONDS], 500, 502, 503, 504, slow:MILLIS, 402, not-enrolled, refuse-refresh \
                 (e.g. \"GET /2/users/me=503*2\")"
            ))
        };
        let (endpoint, rest) = s.rsplit_once('=').ok_or_else(|| err("no '='"))?;
        let endpoint = endpoint.trim();
        if endpoint != "*" && !endpoint.contains(" /") {
            return Err(err("the endpoint must be `*` or `METHOD /path`"));
        }
        let (what, times) = match rest.split_once('*') {
            Some((w, t)) => (
                w,
                Some(t.trim().parse::<u32>().map_err(|_| err("bad count"))?),
            ),
            None => (rest, None),
        };
        let what = what.trim();
        let kind = match what.split_once(':') {
            Some(("429", secs)) => FaultKind::RateLimited {
                reset_after: secs.parse().map_err(|_| err("bad reset seconds"))?,
            },
            Some(("slow", ms)) => FaultKind::Slow {
                millis: ms.parse().map_err(|_| err("bad milliseconds"))?,
            },
            Some(_) => return Err(err("unknown fault")),
            None => match what {
                "429" => FaultKind::RateLimited {
                    reset_after: default_reset_after(),
                },
                "402" => FaultKind::CreditsDepleted,
                "not-enrolled" => FaultKind::NotEnrolled,
                "refuse-refresh" => FaultKind::RefuseRefresh,
                code @ ("500" | "502" | "503" | "504") => FaultKind::ServerError {
                    status: code.parse().map_err(|_| err("bad status"))?,
                },
                _ => return Err(err("unknown fault")),
            },
        };
        Ok(Fault {
            endpoint: endpoint.to_owned(),
            kind,
            times,
        })
    }
}

/// The active faults, in the order they were added.
#[derive(Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    pub fn new(faults: Vec<Fault>) -> Self {
        Self(faults)
    }

    pub fn add(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.0.clone()
    }

    /// The first fault for `endpoint` that `wanted` accepts, used up once.
    pub fn take(
        &mut self,
        endpoint: &str,
        wanted: impl Fn(&FaultKind) -> bool,
    ) -> Option<FaultKind> {
        let i = self
            .0
            .iter()
            .position(|f| f.matches(endpoint) && wanted(&f.kind))?;
        let kind = self.0[i].kind.clone();
        if let Some(t) = self.0[i].times.as_mut() {
            *t = t.saturating_sub(1);
            if *t == 0 {
                self.0.remove(i);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line_form() {
        assert_eq!(
            "GET /2/users/me=503*2".parse::<Fault>().unwrap(),
            Fault {
                endpoint: "GET /2/users/me".into(),
                kind: FaultKind::ServerError { status: 503 },
                times: Some(2)
            }
        );
        assert_eq!(
            "GET /2/tweets/search/recent=not-enrolled"
                .parse::<Fault>()
                .unwrap()
                .kind,
            FaultKind::NotEnrolled
        );
        assert_eq!(
            "POST /2/tweets=429:900".parse::<Fault>().unwrap().kind,
            FaultKind::RateLimited { reset_after: 900 }
        );
        assert_eq!(
            "*=slow:250".parse::<Fault>().unwrap().kind,
            FaultKind::Slow { millis: 250 }
        );
        assert_eq!(
            "POST /2/oauth2/token=refuse-refresh"
                .parse::<Fault>()
                .unwrap()
                .kind,
            FaultKind::RefuseRefresh
        );
        for bad in [
            "",
            "GET /2/users/me",
            "users=503",
            "GET /x=418",
            "GET /x=503*many",
        ] {
            let e = bad.parse::<Fault>().unwrap_err();
            assert!(e.to_string().contains("ENDPOINT=WHAT"), "{e}");
        }
    }

    #[test]
    fn counted_faults_are_used_up_and_uncounted_ones_stay() {
        let mut f = Faults::new(vec![
            "GET /2/users/me=503*1".parse().unwrap(),
            "*=402".parse().unwrap(),
        ]);
        let any = |_: &FaultKind| true;
        assert_eq!(
            f.take("GET /2/users/me", any),
            Some(FaultKind::ServerError { status: 503 })
        );
        assert_eq!(
            f.take("GET /2/users/me", any),
            Some(FaultKind::CreditsDepleted)
        );
        assert_eq!(
            f.take("GET /2/users/me", any),
            Some(FaultKind::CreditsDepleted)
        );
        assert_eq!(f.list().len(), 1);
        // A filter skips faults of other kinds.
        assert_eq!(
            f.take("POST /2/oauth2/token", |k| matches!(
                k,
                FaultKind::RefuseRefresh
            )),
            None
        );
    }

    #[test]
    fn json_form_round_trips() {
        let f: Fault = serde_json::from_str(
            r#"{"endpoint":"POST /2/tweets","fault":"rate_limited","times":1}"#,
        )
        .unwrap();
        assert_eq!(f.kind, FaultKind::RateLimited { reset_after: 60 });
        let back: Fault = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }
}
