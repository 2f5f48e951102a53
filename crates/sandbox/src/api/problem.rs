//! X's errors as the simulated X answers them: problem details, injected
//! faults, transaction ids.

use super::*;

/// A problem-details error (X's `application/problem+json`).
pub struct Problem {
    pub(super) status: StatusCode,
    pub(super) body: Value,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Problem {
    pub(super) fn new(status: StatusCode, title: &str, detail: &str, kind: &str) -> Self {
        Self {
            status,
            body: json!({"title": title, "detail": detail, "type": kind, "status": status.as_u16()}),
            headers: Vec::new(),
        }
    }

    pub(super) fn invalid(detail: &str, parameter: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "errors": [{"parameters": {parameter: []}, "message": detail}],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            }),
            headers: Vec::new(),
        }
    }

    /// 402: the app's pay-per-use credits are spent.
    pub(super) fn credits_depleted() -> Self {
        Self {
            status: StatusCode::PAYMENT_REQUIRED,
            body: json!({
                "account_id": 1_850_000_000_u64,
                "title": "CreditsDepleted",
                "detail": "Your enrolled account [1850000000] does not have any credits to fulfill this request.",
                "type": "https://api.twitter.com/2/problems/credits",
            }),
            headers: Vec::new(),
        }
    }

    pub(super) fn forbidden(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", detail, "about:blank")
    }

    pub(super) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
            "about:blank",
        )
    }

    pub(super) fn into_response(self, txid: &str) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(txid) {
            h.insert("x-transaction-id", v);
        }
        resp
    }
}

/// The response X gives for an injected fault.
pub fn fault_response(now: &i64, kind: &FaultKind) -> Response {
    let txid = transaction_id();
    let problem = match kind {
        FaultKind::RateLimited { reset_after } => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Too Many Requests",
                "about:blank",
            );
            p.headers = vec![
                ("x-rate-limit-limit", "1".into()),
                ("x-rate-limit-remaining", "0".into()),
                ("x-rate-limit-reset", (now + reset_after).to_string()),
            ];
            p
        }
        FaultKind::ServerError { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let title = status.canonical_reason().unwrap_or("Server Error");
            Problem::new(status, title, title, "about:blank")
        }
        FaultKind::CreditsDepleted => Problem::credits_depleted(),
        FaultKind::NotEnrolled => Problem {
            status: StatusCode::FORBIDDEN,
            body: json!({
                "client_id": "1850000000",
                "required_enrollment": "Appropriate Level of API Access",
                "registration_url": "https://developer.x.com/en/portal/product",
                "title": "Client Forbidden",
                "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a project via the developer portal.",
                "reason": "client-not-enrolled",
                "type": "https://api.twitter.com/2/problems/client-forbidden",
            }),
            headers: Vec::new(),
        },
        // Slow and refresh faults do not produce a response of their own.
        FaultKind::Slow { .. } | FaultKind::RefuseRefresh => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Error",
            "unexpected fault",
            "about:blank",
        ),
    };
    problem.into_response(&txid)
}

pub(super) fn transaction_id() -> String {
    hex_of(&xmcp_crypto::random_bytes::<8>())
}

pub(super) fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
