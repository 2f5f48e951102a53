//! Follows: whom a user follows, who follows them, follow and unfollow.

use super::*;

pub(super) fn get_users_following(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    ok(views.users(&w, &w.following_of(req.param("id"))))
}

pub(super) fn get_users_followers(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    ok(views.users(&w, &w.followers_of(req.param("id"))))
}

pub(super) fn follow_user(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
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

pub(super) fn unfollow_user(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let me = req.acting_user("source_user_id")?;
    let target = req.param("target_user_id").to_owned();
    w.follows.remove(&(me, target));
    ok(json!({"data": {"following": false}}))
}
