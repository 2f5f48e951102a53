//! The simulated X API v2: one table of operations ([`OPS`], in `ops.rs`)
//! drives routing, authentication, scope checks, rate limits, fault injection
//! and the OpenAPI document, and names the handler that does each
//! operation's work; the handlers live in one file per family of operations.
//! A new simulated endpoint is one handler in its family's file and one row
//! in the table.

mod bookmarks;
mod follows;
mod likes;
mod media;
mod ops;
mod posts;
mod problem;
mod search;
mod timelines;
mod usage;
mod users;
mod views;

use crate::Sandbox;
use crate::faults::FaultKind;
use crate::world::{Post, User, World, rfc3339};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
pub use ops::*;
pub use problem::*;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use views::*;

pub fn routes() -> Router<Sandbox> {
    let mut by_path: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in OPS.iter().enumerate() {
        by_path.entry(op.path).or_default().push(i);
    }
    let mut router = Router::new();
    for (path, ops) in by_path {
        let mut methods = axum::routing::MethodRouter::new();
        for i in ops {
            let filter = match OPS[i].method {
                "POST" => MethodFilter::POST,
                "DELETE" => MethodFilter::DELETE,
                "PUT" => MethodFilter::PUT,
                _ => MethodFilter::GET,
            };
            methods = methods.merge(on(
                filter,
                move |State(sb): State<Sandbox>,
                      params: Option<Path<HashMap<String, String>>>,
                      RawQuery(query): RawQuery,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    handle(
                        &sb,
                        &OPS[i],
                        params.map(|p| p.0).unwrap_or_default(),
                        query.unwrap_or_default(),
                        &headers,
                        &body,
                    )
                    .await
                },
            ));
        }
        router = router.route(path, methods);
    }
    router
}

/// Who is calling: a user (OAuth 2.0 user context) or the app.
struct Caller {
    user_id: Option<String>,
    username: String,
    scopes: Vec<String>,
}

fn authenticate(sb: &Sandbox, headers: &HeaderMap, now: i64) -> Result<Caller, Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or_else(Problem::unauthorized)?;
    if let Some(app) = &sb.inner.config.app_bearer_token
        && xmcp_crypto::constant_time_eq(app.as_bytes(), token.as_bytes())
    {
        return Ok(Caller {
            user_id: None,
            username: "app".into(),
            scopes: Vec::new(),
        });
    }
    let world = sb.world();
    let t = world
        .access
        .get(token)
        .filter(|t| t.expires_at > now)
        .ok_or_else(Problem::unauthorized)?;
    let username = world
        .user(&t.user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    Ok(Caller {
        user_id: Some(t.user_id.clone()),
        username,
        scopes: t.scope.split(' ').map(str::to_owned).collect(),
    })
}

async fn handle(
    sb: &Sandbox,
    op: &'static Op,
    params: HashMap<String, String>,
    query: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let txid = transaction_id();
    let endpoint = format!("{} {}", op.method, op.path);
    match sb.take_fault(&endpoint, |k| !matches!(k, FaultKind::RefuseRefresh)) {
        Some(FaultKind::Slow { millis }) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        }
        Some(kind) => return fault_response(&sb.now(), &kind),
        None => {}
    }
    let now = sb.now();
    let caller = match authenticate(sb, headers, now) {
        Ok(c) => c,
        Err(p) => return p.into_response(&txid),
    };
    match &caller.user_id {
        None if !op.app_only => {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "Unsupported Authentication",
                "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
                "https://api.twitter.com/2/problems/unsupported-authentication",
            )
            .into_response(&txid);
        }
        Some(_) => {
            let missing: Vec<&str> = op
                .scopes
                .iter()
                .copied()
                .filter(|s| !caller.scopes.iter().any(|c| c == s))
                .collect();
            if !missing.is_empty() {
                return Problem::forbidden(&format!(
                    "Your token lacks the scopes this endpoint needs: {}",
                    missing.join(", ")
                ))
                .into_response(&txid);
            }
        }
        None => {}
    }
    if sb.billing().refuses(op.id) {
        return Problem::credits_depleted().into_response(&txid);
    }
    let key = caller.user_id.clone().unwrap_or_else(|| "app".into());
    let limited = if sb.rate_limited() {
        sb.world().consume(&key, op.id, op.limit, now)
    } else {
        Ok(crate::world::Window {
            reset: now,
            used: 0,
        })
    };
    let window = match limited {
        Ok(w) => w,
        Err(w) => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Too Many Requests",
                "about:blank",
            );
            p.headers = rate_headers(op.limit, 0, w.reset);
            return p.into_response(&txid);
        }
    };
    let rate = rate_headers(op.limit, op.limit - window.used, window.reset);
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let req = ApiRequest {
        params,
        query,
        body,
        caller: &caller,
        now,
    };
    let result = execute(sb, op, &req);
    match result {
        Ok((status, value)) => {
            sb.count(|s| *s.api_calls.entry(caller.username.clone()).or_default() += 1);
            let fields = serde_json::from_slice::<Map<String, Value>>(body).unwrap_or_default();
            sb.billing()
                .charge(op.method, op.path, &fields, status.as_u16(), &value, now);
            let mut resp = (status, axum::Json(value)).into_response();
            let h = resp.headers_mut();
            for (k, v) in rate {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            }
            if let Ok(v) = HeaderValue::from_str(&txid) {
                h.insert("x-transaction-id", v);
            }
            resp
        }
        Err(mut p) => {
            p.headers.extend(rate);
            p.into_response(&txid)
        }
    }
}

fn rate_headers(limit: u32, remaining: u32, reset: i64) -> Vec<(&'static str, String)> {
    vec![
        ("x-rate-limit-limit", limit.to_string()),
        ("x-rate-limit-remaining", remaining.to_string()),
        ("x-rate-limit-reset", reset.to_string()),
    ]
}

struct ApiRequest<'a> {
    params: HashMap<String, String>,
    query: Vec<(String, String)>,
    body: &'a [u8],
    caller: &'a Caller,
    now: i64,
}

impl ApiRequest<'_> {
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A comma-separated list parameter, each value checked against `allowed`.
    fn list(&self, names: &[&str], allowed: &[&str]) -> Result<Vec<String>, Problem> {
        let Some((name, raw)) = names.iter().find_map(|n| self.query(n).map(|v| (*n, v))) else {
            return Ok(Vec::new());
        };
        let values: Vec<String> = raw.split(',').map(|v| v.trim().to_owned()).collect();
        if let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str())) {
            return Err(Problem::invalid(
                &format!(
                    "The `{name}` query parameter value [{bad}] is not one of [{}]",
                    allowed.join(",")
                ),
                name,
            ));
        }
        Ok(values)
    }

    /// The body as JSON, or X's error for a body it cannot read.
    fn json(&self) -> Result<Value, Problem> {
        serde_json::from_slice(self.body)
            .map_err(|_| Problem::invalid("The request body is not valid JSON.", "body"))
    }

    /// `{id}` must be the authenticated user, as X requires on these routes.
    fn acting_user(&self, param: &str) -> Result<String, Problem> {
        let id = self.param(param);
        match &self.caller.user_id {
            Some(me) if me == id => Ok(id.to_owned()),
            _ => Err(Problem::forbidden(
                "You are not permitted to perform this action.",
            )),
        }
    }

    /// For liking and bookmarking: `{id}` must be the caller, and the body's
    /// `tweet_id` a post that exists.
    fn acting_user_and_post(&self, w: &World) -> Result<(String, u64), Problem> {
        let me = self.acting_user("id")?;
        let body = self.json()?;
        let raw = body["tweet_id"].as_str().unwrap_or_default();
        let id = post_id(raw, "tweet_id")?;
        if !w.posts.contains_key(&id) {
            return Err(Problem::invalid(
                &format!("Could not find tweet with tweet_id: [{raw}]."),
                "tweet_id",
            ));
        }
        Ok((me, id))
    }

    fn views(&self) -> Result<Views, Problem> {
        Ok(Views {
            user_fields: self.list(&["user.fields"], USER_FIELDS)?,
            post_fields: self.list(&["post.fields", "tweet.fields"], POST_FIELDS)?,
            expansions: Vec::new(),
        })
    }
}

type Outcome = Result<(StatusCode, Value), Problem>;

/// Parses the fields and expansions asked for, then runs the operation's
/// handler.
fn execute(sb: &Sandbox, op: &Op, req: &ApiRequest<'_>) -> Outcome {
    let mut views = req.views()?;
    let allowed = if RETURNS_POSTS.contains(&op.id) {
        POST_EXPANSIONS
    } else {
        USER_EXPANSIONS
    };
    let expansions = req.list(&["expansions"], allowed)?;
    views.expansions = expansions;
    (op.handler)(sb, req, &views)
}

/// A `200 OK` with this body.
fn ok(v: Value) -> Outcome {
    Ok((StatusCode::OK, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_unique_id_and_route() {
        let mut ids: Vec<_> = OPS.iter().map(|o| o.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), OPS.len());
        let mut routes: Vec<_> = OPS.iter().map(|o| (o.method, o.path)).collect();
        routes.sort_unstable();
        routes.dedup();
        assert_eq!(routes.len(), OPS.len());
    }
}
