//! Users and posts as X renders them: the fields and expansions asked
//! for, not-found errors, pages.

use super::*;

/// Which optional fields to render.
pub(super) struct Views {
    pub(super) user_fields: Vec<String>,
    pub(super) post_fields: Vec<String>,
    pub(super) expansions: Vec<String>,
}

impl Views {
    pub(super) fn user(&self, w: &World, u: &User) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), u.id.clone().into());
        m.insert("name".into(), u.name.clone().into());
        m.insert("username".into(), u.username.clone().into());
        for f in &self.user_fields {
            let v = match f.as_str() {
                "created_at" => rfc3339(u.created_at).into(),
                "description" => u.description.clone().into(),
                "protected" | "verified" => false.into(),
                "public_metrics" => json!({
                    "followers_count": w.followers_of(&u.id).len(),
                    "following_count": w.following_of(&u.id).len(),
                    "tweet_count": w.posts.values().filter(|p| p.author_id == u.id).count(),
                    "listed_count": 0,
                    "like_count": w.likes.iter().filter(|(who, _)| *who == u.id).count(),
                }),
                "profile_image_url" => format!(
                    "https://pbs.twimg.com/profile_images/{}/sandbox_normal.png",
                    u.id
                )
                .into(),
                "url" | "location" => "".into(),
                _ => continue,
            };
            m.insert(f.clone(), v);
        }
        Value::Object(m)
    }

    pub(super) fn post(&self, w: &World, p: &Post) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), p.id.to_string().into());
        m.insert("text".into(), p.text.clone().into());
        m.insert("edit_history_tweet_ids".into(), json!([p.id.to_string()]));
        for f in &self.post_fields {
            let v = match f.as_str() {
                "author_id" => p.author_id.clone().into(),
                "created_at" => rfc3339(p.created_at).into(),
                "conversation_id" => p.conversation_id.to_string().into(),
                "lang" => "en".into(),
                "possibly_sensitive" => false.into(),
                "reply_settings" => "everyone".into(),
                "public_metrics" => json!({
                    "retweet_count": 0,
                    "reply_count": w.reply_count(p.id),
                    "like_count": w.like_count(p.id),
                    "quote_count": 0,
                    "bookmark_count": w.bookmarks.values().filter(|b| b.contains(&p.id)).count(),
                    "impression_count": 0,
                }),
                _ => continue,
            };
            m.insert(f.clone(), v);
        }
        if !p.media_keys.is_empty() {
            m.insert("attachments".into(), json!({"media_keys": p.media_keys}));
        }
        // `author_id` is always useful to X clients; X includes it when expanded.
        if self.expansions.iter().any(|e| e == "author_id") {
            m.insert("author_id".into(), p.author_id.clone().into());
        }
        if let Some(r) = p.in_reply_to {
            m.insert(
                "referenced_tweets".into(),
                json!([{"type": "replied_to", "id": r.to_string()}]),
            );
        }
        Value::Object(m)
    }

    /// `{"data": [...], "includes": {...}, "meta": {...}}` for a list of posts.
    pub(super) fn posts(&self, w: &World, posts: &[&Post]) -> Value {
        let mut out = json!({});
        if !posts.is_empty() {
            out["data"] = posts.iter().map(|p| self.post(w, p)).collect();
        }
        self.include_authors(w, posts, &mut out);
        out
    }

    pub(super) fn include_authors(&self, w: &World, posts: &[&Post], out: &mut Value) {
        if !self.expansions.iter().any(|e| e == "author_id") || posts.is_empty() {
            return;
        }
        let mut ids: Vec<&str> = posts.iter().map(|p| p.author_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let users: Vec<Value> = ids
            .iter()
            .filter_map(|id| w.user(id))
            .map(|u| self.user(w, u))
            .collect();
        out["includes"] = json!({"users": users});
    }

    pub(super) fn users(&self, w: &World, users: &[&User]) -> Value {
        if users.is_empty() {
            return json!({"meta": {"result_count": 0}});
        }
        json!({
            "data": users.iter().map(|u| self.user(w, u)).collect::<Vec<_>>(),
            "meta": {"result_count": users.len()},
        })
    }
}

pub(super) fn not_found(kind: &str, param: &str, value: &str) -> Value {
    let (title, what) = if kind == "user" {
        ("Not Found Error", "user")
    } else {
        ("Not Found Error", "tweet")
    };
    json!({
        "value": value,
        "detail": format!("Could not find {what} with {param}: [{value}]."),
        "title": title,
        "resource_type": kind,
        "parameter": param,
        "resource_id": value,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    })
}

pub(super) fn post_id(raw: &str, param: &str) -> Result<u64, Problem> {
    raw.parse().map_err(|_| {
        Problem::invalid(
            &format!("The `{param}` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$"),
            param,
        )
    })
}

/// Newest first, honouring `max_results` within `[min, max]`.
pub(super) fn page<'a>(
    req: &ApiRequest<'_>,
    mut posts: Vec<&'a Post>,
    min: usize,
    max: usize,
) -> Result<(Vec<&'a Post>, Value), Problem> {
    let n = match req.query("max_results") {
        None => max.min(10).max(min),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                return Err(Problem::invalid(
                    &format!(
                        "The `max_results` query parameter value [{v}] is not between {min} and {max}"
                    ),
                    "max_results",
                ));
            }
        },
    };
    posts.sort_by_key(|p| std::cmp::Reverse(p.id));
    posts.truncate(n);
    let mut meta = json!({"result_count": posts.len()});
    if let (Some(first), Some(last)) = (posts.first(), posts.last()) {
        meta["newest_id"] = first.id.to_string().into();
        meta["oldest_id"] = last.id.to_string().into();
    }
    Ok((posts, meta))
}
