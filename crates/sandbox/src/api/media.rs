//! Media upload: the five operations, each a thin call into the uploads the
//! world keeps (see [`crate::media`]), and how their errors read as X's.

use super::*;
use crate::media::MediaError;

pub(super) fn media_upload(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let me = req.caller.user_id.clone().unwrap_or_default();
    let body = req.json()?;
    answer(w.uploads.upload(&me, &body, req.now))
}

pub(super) fn initialize_media_upload(
    sb: &Sandbox,
    req: &ApiRequest<'_>,
    _views: &Views,
) -> Outcome {
    let mut w = sb.world();
    let me = req.caller.user_id.clone().unwrap_or_default();
    let body = req.json()?;
    answer(w.uploads.initialize(&me, &body, req.now))
}

pub(super) fn append_media_upload(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let me = req.caller.user_id.clone().unwrap_or_default();
    let id = req.param("id").to_owned();
    let body = req.json()?;
    answer(w.uploads.append(&me, &id, &body, req.now))
}

pub(super) fn finalize_media_upload(sb: &Sandbox, req: &ApiRequest<'_>, _views: &Views) -> Outcome {
    let mut w = sb.world();
    let me = req.caller.user_id.clone().unwrap_or_default();
    let id = req.param("id").to_owned();
    answer(w.uploads.finalize(&me, &id, req.now))
}

pub(super) fn get_media_upload_status(
    sb: &Sandbox,
    req: &ApiRequest<'_>,
    _views: &Views,
) -> Outcome {
    let mut w = sb.world();
    let me = req.caller.user_id.clone().unwrap_or_default();
    let id = req.query("media_id").unwrap_or_default().to_owned();
    answer(match req.query("command") {
        None | Some("STATUS") => w.uploads.status(&me, &id, req.now),
        Some(_) => Err(MediaError::Invalid(
            "`command` must be STATUS.".into(),
            "command",
        )),
    })
}

/// An upload's answer, or its error as X words it.
fn answer(result: Result<Value, MediaError>) -> Outcome {
    match result {
        Ok(v) => Ok((StatusCode::OK, v)),
        Err(MediaError::Invalid(detail, parameter)) => Err(Problem::invalid(&detail, parameter)),
        Err(MediaError::Forbidden(detail)) => Err(Problem::forbidden(&detail)),
        Err(MediaError::NotFound(id)) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            &format!(
                "Media id {id} was not found (or was uploaded by another account, or expired)."
            ),
            "https://api.twitter.com/2/problems/invalid-request",
        )),
    }
}
