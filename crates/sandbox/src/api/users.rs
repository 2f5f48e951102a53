//! Users lookup: the caller, one user by id or by username, several by ids
//! or by usernames.

use super::*;

pub(super) fn get_users_me(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    let me = req.caller.user_id.as_deref().unwrap_or_default();
    let u = w.user(me).ok_or_else(Problem::unauthorized)?;
    ok(json!({"data": views.user(&w, u)}))
}

pub(super) fn get_users_by_id(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    match w.user(req.param("id")) {
        Some(u) => ok(json!({"data": views.user(&w, u)})),
        None => ok(json!({"errors": [not_found("user", "id", req.param("id"))]})),
    }
}

pub(super) fn get_users_by_username(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    match w.user_by_name(req.param("username")) {
        Some(u) => ok(json!({"data": views.user(&w, u)})),
        None => ok(json!({"errors": [not_found("user", "username", req.param("username"))]})),
    }
}

pub(super) fn get_users_by_ids(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    users_by(sb, req, views, "ids", false)
}

pub(super) fn get_users_by_usernames(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    users_by(sb, req, views, "usernames", true)
}

/// Several users named in the `param` query parameter: those found in
/// `data`, the others in `errors`.
fn users_by(
    sb: &Sandbox,
    req: &ApiRequest<'_>,
    views: &Views,
    param: &str,
    by_name: bool,
) -> Outcome {
    let w = sb.world();
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
