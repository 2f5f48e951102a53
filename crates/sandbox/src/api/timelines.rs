//! Timelines: a user's own posts, and the home timeline of the people the
//! caller follows.

use super::*;

pub(super) fn get_users_posts(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    let id = req.param("id").to_owned();
    let posts: Vec<&Post> = w.posts.values().filter(|p| p.author_id == id).collect();
    let (posts, meta) = page(req, posts, 5, 100)?;
    let mut out = views.posts(&w, &posts);
    out["meta"] = meta;
    ok(out)
}

pub(super) fn get_users_timeline(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
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
