//! Likes: like and unlike a post, the posts a user liked, the users who
//! liked a post.

use super::*;

pub(super) fn like_post(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let (me, id) = req.acting_user_and_post(&w)?;
    if !w.likes.iter().any(|(u, p)| *u == me && *p == id) {
        w.likes.push((me, id));
    }
    ok(json!({"data": {"liked": true}}))
}

pub(super) fn unlike_post(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let me = req.acting_user("id")?;
    let id = post_id(req.param("tweet_id"), "tweet_id")?;
    w.likes.retain(|(u, p)| !(*u == me && *p == id));
    ok(json!({"data": {"liked": false}}))
}

pub(super) fn get_users_liked_posts(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
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

pub(super) fn get_posts_liking_users(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    let id = post_id(req.param("id"), "id")?;
    let users: Vec<&User> = w
        .likes
        .iter()
        .filter(|(_, p)| *p == id)
        .filter_map(|(u, _)| w.user(u))
        .collect();
    ok(views.users(&w, &users))
}
