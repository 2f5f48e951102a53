//! RFC 7591 dynamic client registration: validating the request metadata.
//!
//! Defaults when omitted: `token_endpoint_auth_method` = `none` (MCP clients
//! are overwhelmingly public; the value is echoed so the client knows),
//! `grant_types` = `authorization_code refresh_token`, `response_types` =
//! `code`. A device client (RFC 8628) registers `grant_types` with
//! `urn:ietf:params:oauth:grant-type:device_code` and may omit
//! `redirect_uris`. Unknown fields are ignored. All metadata is self-asserted and is
//! shown escaped, with its origin, on the consent page.

use crate::client::{ClientMetadata, GrantType};
use crate::config::TokenAuthMethod;
use crate::error::{ErrorCode, OAuthError};
use serde_json::Value;

const MAX_REDIRECT_URIS: usize = 10;
const MAX_NAME_CHARS: usize = 100;
const MAX_URI_LEN: usize = 2000;

fn metadata_error(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

/// Check a display name: trimmed, not too long, no control or bidi-override
/// characters (which could disguise the name on the consent page).
pub fn clean_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("client_name is too long (at most 100 characters)");
    }
    if name.chars().any(|c| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }) {
        return Err("client_name contains control characters");
    }
    Ok(name.to_owned())
}

fn opt_str<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, OAuthError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(metadata_error(format!("`{key}` must be a string"))),
    }
}

fn str_array(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, OAuthError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| metadata_error(format!("`{key}` must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(metadata_error(format!(
            "`{key}` must be an array of strings"
        ))),
    }
}

fn https_uri(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, OAuthError> {
    let Some(v) = opt_str(obj, key)? else {
        return Ok(None);
    };
    let ok = v.len() <= MAX_URI_LEN && url::Url::parse(v).is_ok_and(|u| u.scheme() == "https");
    if !ok {
        return Err(metadata_error(format!("`{key}` must be an https URL")));
    }
    Ok(Some(v.to_owned()))
}

/// Validate a registration request body; `supported_scopes` bounds `scope`.
pub fn validate(body: &[u8], supported_scopes: &[String]) -> Result<ClientMetadata, OAuthError> {
    validate_with(
        body,
        supported_scopes,
        &crate::redirect::SchemePolicy::default(),
    )
}

/// [`validate`], with the redirect URI schemes `schemes` accepts.
pub fn validate_with(
    body: &[u8],
    supported_scopes: &[String],
    schemes: &crate::redirect::SchemePolicy,
) -> Result<ClientMetadata, OAuthError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| metadata_error("the request body is not valid JSON"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| metadata_error("the request body must be a JSON object"))?;

    let grant_types = str_array(obj, "grant_types")?
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| GrantType::names(&GrantType::REGISTERED_BY_DEFAULT));
    let mut grants = Vec::with_capacity(grant_types.len());
    for g in &grant_types {
        grants.push(
            GrantType::parse(g)
                .ok_or_else(|| metadata_error(format!("grant type `{g}` is not supported")))?,
        );
    }
    let redirect_based = grants.contains(&GrantType::AuthorizationCode);
    let redirect_uris = str_array(obj, "redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() && redirect_based {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "`redirect_uris` is required and must not be empty",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "too many redirect URIs (at most 10)",
        ));
    }
    for uri in &redirect_uris {
        if uri.len() > MAX_URI_LEN {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "redirect URI is too long",
            ));
        }
        crate::redirect::validate_registered_with(uri, schemes)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, format!("{e}: {uri}")))?;
    }

    let token_endpoint_auth_method = match opt_str(obj, "token_endpoint_auth_method")? {
        None => TokenAuthMethod::None,
        Some(m) => TokenAuthMethod::parse(m).ok_or_else(|| {
            metadata_error(format!(
                "token_endpoint_auth_method `{m}` is not supported (use none, client_secret_basic or client_secret_post)"
            ))
        })?,
    };

    if !redirect_based && !grants.contains(&GrantType::DeviceCode) {
        return Err(metadata_error(
            "grant_types must include authorization_code or urn:ietf:params:oauth:grant-type:device_code",
        ));
    }
    // A device client (RFC 8628) has no redirect and no response type.
    let default_response_types = if redirect_based {
        vec!["code".into()]
    } else {
        Vec::new()
    };
    let response_types = str_array(obj, "response_types")?
        .filter(|r| !r.is_empty())
        .unwrap_or(default_response_types);
    if let Some(r) = response_types.iter().find(|r| *r != "code") {
        return Err(metadata_error(format!(
            "response type `{r}` is not supported"
        )));
    }
    // RFC 7591 §2.1: the code response type goes with the code grant.
    if !response_types.is_empty() && !redirect_based {
        return Err(metadata_error(
            "response type `code` requires grant type `authorization_code`",
        ));
    }

    let client_name = opt_str(obj, "client_name")?
        .map(clean_name)
        .transpose()
        .map_err(metadata_error)?
        .filter(|n| !n.is_empty());

    let application_type = match opt_str(obj, "application_type")? {
        None => None,
        Some(t @ ("native" | "web")) => Some(t.to_owned()),
        Some(t) => {
            return Err(metadata_error(format!(
                "application_type `{t}` is not one of native, web"
            )));
        }
    };

    let scope = match opt_str(obj, "scope")? {
        None => None,
        Some(s) => {
            if let Some(unknown) = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .find(|x| *x != "offline_access" && !supported_scopes.iter().any(|k| k == x))
            {
                return Err(metadata_error(format!(
                    "scope `{unknown}` is not supported"
                )));
            }
            Some(s.to_owned())
        }
    };

    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        client_name,
        client_uri: https_uri(obj, "client_uri")?,
        logo_uri: https_uri(obj, "logo_uri")?,
        scope,
        application_type,
        software_id: opt_str(obj, "software_id")?.map(|s| s.chars().take(200).collect()),
        software_version: opt_str(obj, "software_version")?.map(|s| s.chars().take(50).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scopes() -> Vec<String> {
        vec!["tweet.read".into()]
    }

    #[test]
    fn defaults_are_filled_and_unknown_fields_ignored() {
        let m = validate(
            br#"{"redirect_uris":["http://127.0.0.1:3000/cb"],"client_name":" X ","whatever":1}"#,
            &scopes(),
        )
        .unwrap();
        assert_eq!(m.token_endpoint_auth_method, TokenAuthMethod::None);
        assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.client_name.as_deref(), Some("X"));
    }

    #[test]
    fn rejections_use_rfc7591_codes() {
        let cases: &[(&[u8], ErrorCode)] = &[
            (br#"{"redirect_uris":["javascript:alert(1)"]}"#, ErrorCode::InvalidRedirectUri),
            (br#"{"redirect_uris":["http://evil.example.com/cb"]}"#, ErrorCode::InvalidRedirectUri),
            (br#"{"redirect_uris":["https://a.example/cb#f"]}"#, ErrorCode::InvalidRedirectUri),
            (br#"{"redirect_uris":[]}"#, ErrorCode::InvalidRedirectUri),
            (br#"{}"#, ErrorCode::InvalidRedirectUri),
            (br#"not json"#, ErrorCode::InvalidClientMetadata),
            (br#"[1]"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":"https://a.example/cb"}"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":["https://a.example/cb"],"grant_types":["password"]}"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"]}"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":["https://a.example/cb"],"client_name":"a\u202eb"}"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":["https://a.example/cb"],"scope":"admin"}"#, ErrorCode::InvalidClientMetadata),
            (br#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"javascript:x"}"#, ErrorCode::InvalidClientMetadata),
        ];
        for (body, code) in cases {
            let err = validate(body, &scopes()).unwrap_err();
            assert_eq!(err.code, *code, "{}", String::from_utf8_lossy(body));
            assert_eq!(err.status, 400);
        }
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate(&body, &scopes());
        }

        #[test]
        fn never_panics_on_json_like(name in ".{0,150}", uri in ".{0,80}") {
            let body = serde_json::json!({"redirect_uris": [uri], "client_name": name}).to_string();
            let _ = validate(body.as_bytes(), &scopes());
        }
    }
}
