//! Usage: the app's posts consumed per day, as the app (not a user) asks.

use super::*;

pub(super) fn get_usage(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
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
    ok(sb.billing().usage(days, req.now))
}
