//! The simulated X API v2: one table of operations ([`OPS`]) drives routing,
//! authentication, scope checks, rate limits, fault injection and the OpenAPI
//! document; [`execute`] does the work of each operation.

mod ops;
mod problem;
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

    fn views(&self) -> Result<Views, Problem> {
        Ok(Views {
            user_fields: self.list(&["user.fields"], USER_FIELDS)?,
            post_fields: self.list(&["post.fields", "tweet.fields"], POST_FIELDS)?,
            expansions: Vec::new(),
        })
    }
}

type Outcome = Result<(StatusCode, Value), Problem>;

fn execute(sb: &Sandbox, op: &Op, req: &ApiRequest<'_>) -> Outcome {
    let ok = |v: Value| Ok((StatusCode::OK, v));
    let mut views = req.views()?;
    let allowed = if RETURNS_POSTS.contains(&op.id) {
        POST_EXPANSIONS
    } else {
        USER_EXPANSIONS
    };
    let expansions = req.list(&["expansions"], allowed)?;
    views.expansions = expansions;
    let mut w = sb.world();
    match op.id {
        "getUsersMe" => {
            let me = req.caller.user_id.as_deref().unwrap_or_default();
            let u = w.user(me).ok_or_else(Problem::unauthorized)?;
            ok(json!({"data": views.user(&w, u)}))
        }
        "getUsersById" => match w.user(req.param("id")) {
            Some(u) => ok(json!({"data": views.user(&w, u)})),
            None => ok(json!({"errors": [not_found("user", "id", req.param("id"))]})),
        },
        "getUsersByUsername" => match w.user_by_name(req.param("username")) {
            Some(u) => ok(json!({"data": views.user(&w, u)})),
            None => ok(json!({"errors": [not_found("user", "username", req.param("username"))]})),
        },
        "getUsersByIds" | "getUsersByUsernames" => {
            let (param, by_name) = if op.id == "getUsersByIds" {
                ("ids", false)
            } else {
                ("usernames", true)
            };
            let raw = req.query(param).filter(|v| !v.is_empty()).ok_or_else(|| {
                Problem::invalid(
                    &format!("The `{param}` query parameter can not be empty"),
                    param,
                )
            })?;
            let mut data = Vec::new();
            let mut errors = Vec::new();
            for v in raw.split(',').map(str::trim) {
                let found = if by_name {
                    w.user_by_name(v)
                } else {
                    w.user(v)
                };
                match found {
                    Some(u) => data.push(views.user(&w, u)),
                    None => errors.push(not_found(
                        "user",
                        if by_name { "usernames" } else { "ids" },
                        v,
                    )),
                }
            }
            let mut out = json!({});
            if !data.is_empty() {
                out["data"] = data.into();
            }
            if !errors.is_empty() {
                out["errors"] = errors.into();
            }
            ok(out)
        }
        "mediaUpload"
        | "initializeMediaUpload"
        | "appendMediaUpload"
        | "finalizeMediaUpload"
        | "getMediaUploadStatus" => media(&mut w, op.id, req),
        "getUsage" => {
            if req.caller.user_id.is_some() {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "Unsupported Authentication",
                    "Authenticating with OAuth 2.0 User Context is forbidden for this endpoint.  Supported authentication types are [OAuth 2.0 Application-Only].",
                    "https://api.twitter.com/2/problems/unsupported-authentication",
                ));
            }
            let days = match req.query("days").map(str::parse::<i64>) {
                None => 7,
                Some(Ok(d)) if (1..=90).contains(&d) => d,
                Some(_) => return Err(Problem::invalid("`days` must be from 1 to 90.", "days")),
            };
            drop(w);
            ok(sb.billing().usage(days, req.now))
        }
        "createPosts" => {
            let body = req.json()?;
            let text = body["text"].as_str().unwrap_or_default();
            let me = req.caller.user_id.clone().unwrap_or_default();
            let media_ids: Vec<String> = match &body["media"]["media_ids"] {
                Value::Null => Vec::new(),
                Value::Array(ids) => ids
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        Problem::invalid("Your media IDs are invalid.", "media.media_ids")
                    })?,
                _ => {
                    return Err(Problem::invalid(
                        "Your media IDs are invalid.",
                        "media.media_ids",
                    ));
                }
            };
            let media_keys = if media_ids.is_empty() {
                Vec::new()
            } else if media_ids.len() > 4 {
                return Err(Problem::invalid(
                    "A post carries at most 4 media.",
                    "media.media_ids",
                ));
            } else {
                w.uploads
                    .attachable(&me, &media_ids, req.now)
                    .ok_or_else(|| {
                        Problem::invalid("Your media IDs are invalid.", "media.media_ids")
                    })?
            };
            if text.is_empty() && media_keys.is_empty() {
                return Err(Problem::invalid("`text` must not be empty.", "text"));
            }
            if text.chars().count() > 280 {
                return Err(Problem::forbidden(
                    "You are not permitted to create a Post longer than 280 characters.",
                ));
            }
            let reply = match body["reply"]["in_reply_to_tweet_id"].as_str() {
                Some(id) => {
                    let id = post_id(id, "in_reply_to_tweet_id")?;
                    if !w.posts.contains_key(&id) {
                        return Err(Problem::invalid(
                            "The post you are replying to does not exist.",
                            "in_reply_to_tweet_id",
                        ));
                    }
                    Some(id)
                }
                None => None,
            };
            if !text.is_empty()
                && w.posts
                    .values()
                    .any(|p| p.author_id == me && p.text == text && req.now - p.created_at < 86_400)
            {
                return Err(Problem::forbidden(
                    "You are not allowed to create a Tweet with duplicate content.",
                ));
            }
            let p = w.add_post(&me, text, reply, req.now);
            if !media_keys.is_empty()
                && let Some(post) = w.posts.get_mut(&p.id)
            {
                post.media_keys = media_keys;
            }
            Ok((
                StatusCode::CREATED,
                json!({"data": {"id": p.id.to_string(), "text": p.text, "edit_history_tweet_ids": [p.id.to_string()]}}),
            ))
        }
        "getPostsById" => {
            let id = post_id(req.param("id"), "id")?;
            match w.posts.get(&id) {
                Some(p) => {
                    let mut out = json!({"data": views.post(&w, p)});
                    views.include_authors(&w, &[p], &mut out);
                    ok(out)
                }
                None => ok(json!({"errors": [not_found("tweet", "id", req.param("id"))]})),
            }
        }
        "getPostsByIds" => {
            let raw = req.query("ids").filter(|v| !v.is_empty()).ok_or_else(|| {
                Problem::invalid("The `ids` query parameter can not be empty", "ids")
            })?;
            let mut found = Vec::new();
            let mut errors = Vec::new();
            for v in raw.split(',').map(str::trim) {
                match post_id(v, "ids")? {
                    id if w.posts.contains_key(&id) => found.push(id),
                    _ => errors.push(not_found("tweet", "ids", v)),
                }
            }
            let posts: Vec<&Post> = found.iter().filter_map(|id| w.posts.get(id)).collect();
            let mut out = views.posts(&w, &posts);
            if !errors.is_empty() {
                out["errors"] = errors.into();
            }
            ok(out)
        }
        "deletePosts" => {
            let id = post_id(req.param("id"), "id")?;
            let me = req.caller.user_id.as_deref().unwrap_or_default();
            match w.posts.get(&id) {
                None => ok(json!({"data": {"deleted": false}})),
                Some(p) if p.author_id != me => Err(Problem::forbidden(
                    "You are not permitted to delete this Post.",
                )),
                Some(_) => {
                    w.delete_post(id);
                    ok(json!({"data": {"deleted": true}}))
                }
            }
        }
        "searchPostsRecent" => {
            let query = req.query("query").unwrap_or_default().trim().to_owned();
            if query.is_empty() {
                return Err(Problem::invalid(
                    "The `query` query parameter can not be empty",
                    "query",
                ));
            }
            let matches = search(&w, &query);
            let (posts, meta) = page(req, matches, 10, 100)?;
            let mut out = views.posts(&w, &posts);
            out["meta"] = meta;
            ok(out)
        }
        "getUsersPosts" => {
            let id = req.param("id").to_owned();
            let posts: Vec<&Post> = w.posts.values().filter(|p| p.author_id == id).collect();
            let (posts, meta) = page(req, posts, 5, 100)?;
            let mut out = views.posts(&w, &posts);
            out["meta"] = meta;
            ok(out)
        }
        "getUsersTimeline" => {
            let me = req.acting_user("id")?;
            let following: Vec<String> = w.following_of(&me).iter().map(|u| u.id.clone()).collect();
            let posts: Vec<&Post> = w
                .posts
                .values()
                .filter(|p| p.author_id == me || following.contains(&p.author_id))
                .collect();
            let (posts, meta) = page(req, posts, 1, 100)?;
            let mut out = views.posts(&w, &posts);
            out["meta"] = meta;
            ok(out)
        }
        "likePost" | "createUsersBookmark" => {
            let me = req.acting_user("id")?;
            let body = req.json()?;
            let raw = body["tweet_id"].as_str().unwrap_or_default();
            let id = post_id(raw, "tweet_id")?;
            if !w.posts.contains_key(&id) {
                return Err(Problem::invalid(
                    &format!("Could not find tweet with tweet_id: [{raw}]."),
                    "tweet_id",
                ));
            }
            if op.id == "likePost" {
                if !w.likes.iter().any(|(u, p)| *u == me && *p == id) {
                    w.likes.push((me, id));
                }
                ok(json!({"data": {"liked": true}}))
            } else {
                let list = w.bookmarks.entry(me).or_default();
                if !list.contains(&id) {
                    list.insert(0, id);
                }
                ok(json!({"data": {"bookmarked": true}}))
            }
        }
        "unlikePost" => {
            let me = req.acting_user("id")?;
            let id = post_id(req.param("tweet_id"), "tweet_id")?;
            w.likes.retain(|(u, p)| !(*u == me && *p == id));
            ok(json!({"data": {"liked": false}}))
        }
        "deleteUsersBookmark" => {
            let me = req.acting_user("id")?;
            let id = post_id(req.param("tweet_id"), "tweet_id")?;
            if let Some(list) = w.bookmarks.get_mut(&me) {
                list.retain(|p| *p != id);
            }
            ok(json!({"data": {"bookmarked": false}}))
        }
        "getUsersLikedPosts" => {
            let me = req.acting_user("id")?;
            let ids: Vec<u64> = w
                .likes
                .iter()
                .rev()
                .filter(|(u, _)| *u == me)
                .map(|(_, p)| *p)
                .collect();
            let posts: Vec<&Post> = ids.iter().filter_map(|id| w.posts.get(id)).collect();
            let mut out = views.posts(&w, &posts);
            out["meta"] = json!({"result_count": posts.len()});
            ok(out)
        }
        "getUsersBookmarks" => {
            let me = req.acting_user("id")?;
            let ids = w.bookmarks.get(&me).cloned().unwrap_or_default();
            let posts: Vec<&Post> = ids.iter().filter_map(|id| w.posts.get(id)).collect();
            let mut out = views.posts(&w, &posts);
            out["meta"] = json!({"result_count": posts.len()});
            ok(out)
        }
        "getPostsLikingUsers" => {
            let id = post_id(req.param("id"), "id")?;
            let users: Vec<&User> = w
                .likes
                .iter()
                .filter(|(_, p)| *p == id)
                .filter_map(|(u, _)| w.user(u))
                .collect();
            ok(views.users(&w, &users))
        }
        "getUsersFollowing" => ok(views.users(&w, &w.following_of(req.param("id")))),
        "getUsersFollowers" => ok(views.users(&w, &w.followers_of(req.param("id")))),
        "followUser" => {
            let me = req.acting_user("id")?;
            let body = req.json()?;
            let target = body["target_user_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if w.user(&target).is_none() {
                return Err(Problem::invalid(
                    &format!("Could not find user with target_user_id: [{target}]."),
                    "target_user_id",
                ));
            }
            if target == me {
                return Err(Problem::forbidden("You cannot follow yourself."));
            }
            w.follows.insert((me, target));
            ok(json!({"data": {"following": true, "pending_follow": false}}))
        }
        "unfollowUser" => {
            let me = req.acting_user("source_user_id")?;
            let target = req.param("target_user_id").to_owned();
            w.follows.remove(&(me, target));
            ok(json!({"data": {"following": false}}))
        }
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            "This operation is not simulated.",
            "about:blank",
        )),
    }
}

/// Recent search with the operators people use most: words (all must
/// appear, case-insensitive), `"exact phrases"`, `from:username` and `-word`.
/// The media upload operations (see [`crate::media`]).
fn media(w: &mut World, op: &str, req: &ApiRequest<'_>) -> Outcome {
    let me = req.caller.user_id.clone().unwrap_or_default();
    let now = req.now;
    let id = req.param("id").to_owned();
    let result = match op {
        "getMediaUploadStatus" => {
            let id = req.query("media_id").unwrap_or_default().to_owned();
            match req.query("command") {
                None | Some("STATUS") => w.uploads.status(&me, &id, now),
                Some(_) => Err(crate::media::MediaError::Invalid(
                    "`command` must be STATUS.".into(),
                    "command",
                )),
            }
        }
        "finalizeMediaUpload" => w.uploads.finalize(&me, &id, now),
        _ => {
            let body = req.json()?;
            match op {
                "mediaUpload" => w.uploads.upload(&me, &body, now),
                "initializeMediaUpload" => w.uploads.initialize(&me, &body, now),
                _ => w.uploads.append(&me, &id, &body, now),
            }
        }
    };
    match result {
        Ok(v) => Ok((StatusCode::OK, v)),
        Err(crate::media::MediaError::Invalid(detail, parameter)) => {
            Err(Problem::invalid(&detail, parameter))
        }
        Err(crate::media::MediaError::Forbidden(detail)) => Err(Problem::forbidden(&detail)),
        Err(crate::media::MediaError::NotFound(id)) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            &format!(
                "Media id {id} was not found (or was uploaded by another account, or expired)."
            ),
            "https://api.twitter.com/2/problems/invalid-request",
        )),
    }
}

fn search<'a>(w: &'a World, query: &str) -> Vec<&'a Post> {
    let mut must = Vec::new();
    let mut not = Vec::new();
    let mut from = None;
    let mut rest = query;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(q) = rest.strip_prefix('"') {
            let (phrase, after) = q.split_once('"').unwrap_or((q, ""));
            must.push(phrase.to_lowercase());
            rest = after;
            continue;
        }
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        rest = after;
        if let Some(user) = word.strip_prefix("from:") {
            from = w
                .user_by_name(user.trim_start_matches('@'))
                .map(|u| u.id.clone());
            if from.is_none() {
                return Vec::new();
            }
        } else if let Some(neg) = word.strip_prefix('-') {
            not.push(neg.to_lowercase());
        } else if !word.is_empty() {
            must.push(word.to_lowercase());
        }
    }
    w.posts
        .values()
        .filter(|p| {
            let text = p.text.to_lowercase();
            from.as_ref().is_none_or(|f| *f == p.author_id)
                && must.iter().all(|m| text.contains(m.as_str()))
                && !not.iter().any(|n| text.contains(n.as_str()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_supports_words_phrases_from_and_negation() {
        let w = World::seeded(1_000_000);
        assert_eq!(search(&w, "sandbox").len(), 3);
        assert_eq!(search(&w, "\"simulated X\"").len(), 1);
        assert_eq!(search(&w, "sandbox -memory").len(), 2);
        assert_eq!(search(&w, "from:sandbox_news").len(), 3);
        assert_eq!(search(&w, "from:nobody sandbox").len(), 0);
    }

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
