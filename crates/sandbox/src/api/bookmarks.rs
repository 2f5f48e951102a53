//! Bookmarks: add and remove a bookmark, a user's bookmarked posts.

use super::*;

pub(super) fn create_users_bookmark(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let (me, id) = req.acting_user_and_post(&w)?;
    let list = w.bookmarks.entry(me).or_default();
    if !list.contains(&id) {
        list.insert(0, id);
    }
    ok(json!({"data": {"bookmarked": true}}))
}

pub(super) fn delete_users_bookmark(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let me = req.acting_user("id")?;
    let id = post_id(req.param("tweet_id"), "tweet_id")?;
    if let Some(list) = w.bookmarks.get_mut(&me) {
        list.retain(|p| *p != id);
    }
    ok(json!({"data": {"bookmarked": false}}))
}

pub(super) fn get_users_bookmarks(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    let me = req.acting_user("id")?;
    let ids = w.bookmarks.get(&me).cloned().unwrap_or_default();
    let posts: Vec<&Post> = ids.iter().filter_map(|id| w.posts.get(id)).collect();
    let mut out = views.posts(&w, &posts);
    out["meta"] = json!({"result_count": posts.len()});
    ok(out)
}
