//! Posts: create, look up by id or ids, delete.

use super::*;

pub(super) fn create_posts(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let body = req.json()?;
    let text = body["text"].as_str().unwrap_or_default();
    let me = req.caller.user_id.clone().unwrap_or_default();
    let media_ids: Vec<String> = match &body["media"]["media_ids"] {
        Value::Null => Vec::new(),
        Value::Array(ids) => ids
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| Problem::invalid("Your media IDs are invalid.", "media.media_ids"))?,
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
            .ok_or_else(|| Problem::invalid("Your media IDs are invalid.", "media.media_ids"))?
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

pub(super) fn get_posts_by_id(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
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

pub(super) fn get_posts_by_ids(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    let raw = req
        .query("ids")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Problem::invalid("The `ids` query parameter can not be empty", "ids"))?;
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

pub(super) fn delete_posts(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
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
