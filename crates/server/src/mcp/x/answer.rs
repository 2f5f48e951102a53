//! What a model reads back from X: successes (cut on a record boundary
//! when too large), X's errors with their problem details and a plain
//! explanation, rate limits, and resources.

use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, MetaObject, ReadResourceResponse,
    ReadResourceResult, ResourceContents,
};
use serde_json::{Value, json};
use xmcp_x::{RateLimit, XResponse};

/// `HH:MM:SS UTC` of a Unix time (X's windows are 15 minutes: the time of
/// day is what a reader needs).
fn time_of_day(unix: i64) -> String {
    let s = unix.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

pub(super) fn rate_limit_json(endpoint: &str, rl: &RateLimit, now: i64) -> Value {
    json!({
        "endpoint": endpoint,
        "limit": rl.limit,
        "remaining": rl.remaining,
        "reset": rl.reset,
        "resets_in_seconds": (rl.reset - now).max(0),
    })
}

/// A successful X answer: X's JSON as structured content (and as text),
/// the rate limit in `_meta`.
pub(super) fn x_success(
    resp: XResponse,
    endpoint: &str,
    now: i64,
    max_chars: usize,
) -> CallToolResponse {
    let body = match resp.body {
        Value::Object(_) => resp.body,
        Value::Null => json!({"status": resp.status}),
        other => json!({"status": resp.status, "body": other}),
    };
    let (body, cut) = fit_result(body, max_chars);
    let mut result = CallToolResult::structured(body);
    result.is_error = Some(false);
    if let Some(note) = cut {
        result.content.push(ContentBlock::text(note));
    }
    if let Some(rl) = &resp.rate_limit {
        let meta = json!({"xmcp.dev/x-rate-limit": rate_limit_json(endpoint, rl, now)});
        result.meta = Some(MetaObject(meta.as_object().cloned().unwrap_or_default()));
        // MCP's logging notifications are deprecated (SEP-2577): the
        // warning travels with the result, where the model reads it.
        if rl.is_low() {
            result.content.push(ContentBlock::text(format!(
                "Warning: X's rate limit for {endpoint} is nearly used up: {} of {} calls left until {} (in {} s).",
                rl.remaining,
                rl.limit,
                time_of_day(rl.reset),
                (rl.reset - now).max(0)
            )));
        }
    }
    result.into()
}

/// Length of `v` as compact JSON text, in bytes (never less than its
/// characters).
fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

/// An X answer whose JSON text is longer than `max_chars`, cut to the
/// first records of its `data` list that fit (at least one), with the note
/// that says so and how to get them all. X's `next_token` is dropped from a
/// cut answer: it would page past the records cut off. An answer that is
/// not a list is left whole.
fn fit_result(mut body: Value, max_chars: usize) -> (Value, Option<String>) {
    if json_len(&body) <= max_chars {
        return (body, None);
    }
    let Some(records) = body
        .get_mut("data")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
    else {
        return (body, None);
    };
    let of = records.len();
    // What the answer weighs without its records, and a margin for the
    // note added to `meta`.
    let mut used = json_len(&body) + 100;
    let mut kept = 0;
    for r in &records {
        let size = json_len(r) + 1;
        if kept > 0 && used + size > max_chars {
            break;
        }
        used += size;
        kept += 1;
    }
    let mut records = records;
    if kept >= of {
        // The records are not what is large: nothing to cut on.
        body["data"] = Value::Array(records);
        return (body, None);
    }
    records.truncate(kept);
    body["data"] = Value::Array(records);
    if let Some(meta) = body.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("next_token");
        meta.insert("result_count".into(), kept.into());
    }
    let note = format!(
        "This answer was cut to its first {kept} of {of} records to stay under {max_chars} characters. To read them all, call again with max_results={kept} (or fewer) and page with pagination_token from meta.next_token."
    );
    body["xmcp_cut"] = json!({"returned": kept, "of": of, "note": note});
    (body, Some(note))
}

/// X's problem fields: top level (problem+json), or the first of `errors`.
fn problem_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str).or_else(|| {
        body.pointer(&format!("/errors/0/{key}"))
            .and_then(Value::as_str)
    })
}

/// What an unsuccessful X answer means, in plain words.
pub(super) fn explain(resp: &XResponse, endpoint: &str, now: i64) -> String {
    let b = &resp.body;
    let kind = [
        problem_field(b, "type"),
        problem_field(b, "reason"),
        problem_field(b, "title"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_ascii_lowercase();
    match resp.status {
        402 => "The X developer account behind this server has no credits left for this call (X's pay-per-use billing). Its operator can add credits in the X developer console; then retry.".into(),
        403 if kind.contains("client-forbidden") || kind.contains("client-not-enrolled") || kind.contains("unsupported-authentication") => {
            "This X app's access level does not include this endpoint: X decides which endpoints an app may call by its plan. The server's operator can change the plan in the X developer console.".into()
        }
        403 => "X refused this action for this account.".into(),
        429 => match &resp.rate_limit {
            Some(rl) => format!(
                "X's rate limit for {endpoint} is used up ({} calls per window); it resets at {} (in {} s): retry then.",
                rl.limit,
                time_of_day(rl.reset),
                (rl.reset - now).max(0)
            ),
            None => "X is rate limiting these calls; retry in a few minutes.".into(),
        },
        401 => "X rejected this user's token even after refreshing it; authorize again from your MCP client.".into(),
        404 => "X found nothing there.".into(),
        400 => "X rejected the request as invalid.".into(),
        s if s >= 500 => "X failed repeatedly; try again in a moment.".into(),
        _ => "X did not do it.".into(),
    }
}

/// An unsuccessful X answer as a tool error: a sentence for people, X's
/// problem details as structured content.
pub(super) fn x_error(resp: &XResponse, endpoint: &str, now: i64) -> CallToolResponse {
    let b = &resp.body;
    let explanation = explain(resp, endpoint, now);
    let mut said: Vec<&str> = [
        problem_field(b, "title"),
        b.get("detail").and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .collect();
    let messages: Vec<&str> = b
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e.get("message")
                .or_else(|| e.get("detail"))
                .and_then(Value::as_str)
        })
        .take(3)
        .collect();
    said.extend(messages);
    said.dedup();
    let mut text = format!("{explanation} X answered HTTP {}", resp.status);
    if !said.is_empty() {
        text.push_str(": ");
        text.push_str(&said.join(": "));
    }
    if let Some(t) = &resp.transaction_id {
        text.push_str(&format!(" (x-transaction-id {t})"));
    }
    let mut details = json!({
        "status": resp.status,
        "explanation": explanation,
        "title": problem_field(b, "title"),
        "detail": problem_field(b, "detail"),
        "type": problem_field(b, "type"),
        "x-transaction-id": resp.transaction_id,
        "body": b,
    });
    if let Some(rl) = &resp.rate_limit {
        details["rate_limit"] = rate_limit_json(endpoint, rl, now);
    }
    let mut result = CallToolResult::structured_error(details);
    result.content = vec![ContentBlock::text(text)];
    result.into()
}

/// The principal of the HTTP request carrying this MCP message.
pub(super) fn json_resource(uri: &str, value: &Value) -> ReadResourceResponse {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ])
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: Value) -> XResponse {
        XResponse {
            status,
            body,
            rate_limit: None,
            transaction_id: Some("tx1".into()),
        }
    }

    #[test]
    fn large_answers_are_cut_on_a_record_boundary() {
        let post = |i: usize| json!({"id": i.to_string(), "text": "x".repeat(200)});
        let body = json!({
            "data": (0..100).map(post).collect::<Vec<_>>(),
            "meta": {"result_count": 100, "next_token": "abc"},
        });
        let (small, note) = fit_result(body.clone(), 100_000);
        assert_eq!((small, note), (body.clone(), None));

        let (cut, note) = fit_result(body, 5_000);
        let kept = cut["data"].as_array().unwrap().len();
        assert!((1..100).contains(&kept), "{kept}");
        assert!(json_len(&cut) <= 5_000, "{}", json_len(&cut));
        assert_eq!(cut["data"][kept - 1]["id"], (kept - 1).to_string());
        assert_eq!(cut["meta"]["result_count"], kept);
        assert!(cut["meta"].get("next_token").is_none());
        assert_eq!(cut["xmcp_cut"]["of"], 100);
        assert!(note.unwrap().contains(&format!("max_results={kept}")));

        // One record is always kept; an answer that is no list is whole.
        let (one, _) = fit_result(json!({"data": [post(1), post(2)]}), 10);
        assert_eq!(one["data"].as_array().unwrap().len(), 1);
        let single = json!({"data": post(1)});
        assert_eq!(fit_result(single.clone(), 10), (single, None));
    }

    #[test]
    fn explanations_name_the_cause_in_plain_words() {
        let credits = response(
            402,
            json!({"title": "CreditsDepleted", "detail": "Your enrolled account [1] does not have any credits to fulfill this request.", "type": "https://api.twitter.com/2/problems/credits"}),
        );
        assert!(explain(&credits, "GET /2/users/me", 0).contains("no credits left"));
        let tier = response(
            403,
            json!({"title": "Client Forbidden", "reason": "client-not-enrolled", "type": "https://api.twitter.com/2/problems/client-forbidden", "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project."}),
        );
        assert!(explain(&tier, "GET /2/users/me", 0).contains("access level"));
        let mut limited = response(429, json!({"title": "Too Many Requests"}));
        limited.rate_limit = Some(RateLimit {
            limit: 75,
            remaining: 0,
            reset: 86_400 + 3_600 + 120,
        });
        let text = explain(&limited, "GET /2/users/me", 86_400 + 3_600);
        assert!(text.contains("01:02:00 UTC (in 120 s)"), "{text}");
    }

    #[test]
    fn x_errors_carry_the_problem_details_and_the_transaction_id() {
        let resp = response(
            400,
            json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.x.com/2/problems/invalid-request", "errors": [{"message": "The `query` query parameter can not be empty"}]}),
        );
        let CallToolResponse::Complete(r) = x_error(&resp, "GET /2/tweets/search/recent", 0) else {
            panic!("a result");
        };
        assert_eq!(r.is_error, Some(true));
        let s = r.structured_content.expect("structured");
        assert_eq!(s["type"], "https://api.x.com/2/problems/invalid-request");
        assert_eq!(s["x-transaction-id"], "tx1");
        let text = serde_json::to_string(&r.content).unwrap();
        assert!(
            text.contains("can not be empty") && text.contains("tx1"),
            "{text}"
        );
    }
}
