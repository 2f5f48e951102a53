//! Media upload as X's v2 API does it: one request for a small image
//! (`POST /2/media/upload`), or INIT, APPEND segments, FINALIZE, then
//! STATUS until processing ends, for video, GIFs and large images. The
//! sandbox keeps the sizes, not the bytes.
//!
//! Video and GIFs are processed: FINALIZE answers `pending`, and each STATUS
//! moves them on (`in_progress`, then `succeeded`). A video whose first bytes
//! are `FAIL` fails processing, so that clients can be tested against it.

use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How long X keeps an upload before it must be used.
pub const EXPIRES_AFTER: i64 = 86_400;

/// STATUS checks a video or GIF takes before it is processed.
const PROCESSING_CHECKS: u32 = 2;

/// First media id; ids grow from here.
pub const FIRST_MEDIA_ID: u64 = 1_880_000_000_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Uploading,
    Processing { checks_left: u32, fail: bool },
    Succeeded,
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct Media {
    pub id: String,
    pub key: String,
    pub owner: String,
    pub media_type: String,
    pub total_bytes: u64,
    /// Bytes received per segment index.
    pub segments: BTreeMap<u32, u64>,
    /// The upload's first bytes start with `FAIL` (a video that will fail).
    pub marked_to_fail: bool,
    pub state: State,
    pub expires_at: i64,
}

/// Why a media request failed: HTTP 400 with X's invalid-request shape, or
/// 403, with the message and the parameter it concerns.
pub enum MediaError {
    Invalid(String, &'static str),
    Forbidden(String),
    NotFound(String),
}

/// Whether a media type may be uploaded, and its size limit in bytes (X:
/// image 5 MB, GIF 15 MB, video 512 MB).
fn limit(media_type: &str) -> Option<u64> {
    match media_type {
        "image/jpeg" | "image/png" | "image/webp" | "image/bmp" | "image/pjpeg" | "image/tiff" => {
            Some(5 * 1024 * 1024)
        }
        "image/gif" => Some(15 * 1024 * 1024),
        "video/mp4" | "video/quicktime" | "video/webm" | "video/mp2t" => Some(512 * 1024 * 1024),
        _ => None,
    }
}

/// Whether media of this type is processed after FINALIZE.
fn processed(media_type: &str) -> bool {
    media_type.starts_with("video/") || media_type == "image/gif"
}

/// The prefix of a media key by type: X's 3 (photo), 7 (video), 16 (GIF).
fn key_prefix(media_type: &str) -> &'static str {
    if media_type == "image/gif" {
        "16"
    } else if media_type.starts_with("video/") {
        "7"
    } else {
        "3"
    }
}

fn decode(data: &Value) -> Result<Vec<u8>, MediaError> {
    let text = data
        .as_str()
        .ok_or_else(|| MediaError::Invalid("`media` is required.".into(), "media"))?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| MediaError::Invalid("`media` must be base64-encoded.".into(), "media"))
}

/// A media type from an image's first bytes, for one-shot uploads.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF8") {
        Some("image/gif")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The uploads of the world, and their ids.
#[derive(Default)]
pub struct Uploads {
    pub media: BTreeMap<String, Media>,
    next: u64,
}

impl Uploads {
    fn new_media(&mut self, owner: &str, media_type: &str, total: u64, now: i64) -> &mut Media {
        let id = (FIRST_MEDIA_ID + self.next).to_string();
        self.next += 1;
        let media = Media {
            key: format!("{}_{id}", key_prefix(media_type)),
            id: id.clone(),
            owner: owner.to_owned(),
            media_type: media_type.to_owned(),
            total_bytes: total,
            segments: BTreeMap::new(),
            marked_to_fail: false,
            state: State::Uploading,
            expires_at: now + EXPIRES_AFTER,
        };
        self.media.entry(id).or_insert(media)
    }

    /// The caller's own upload that has not expired.
    fn own(&mut self, id: &str, owner: &str, now: i64) -> Result<&mut Media, MediaError> {
        match self.media.get_mut(id) {
            Some(m) if m.owner == owner && m.expires_at > now => Ok(m),
            _ => Err(MediaError::NotFound(id.to_owned())),
        }
    }

    /// `POST /2/media/upload`: an image in one request.
    pub fn upload(&mut self, owner: &str, body: &Value, now: i64) -> Result<Value, MediaError> {
        if !body["media_category"].is_string() {
            return Err(MediaError::Invalid(
                "`media_category` is required.".into(),
                "media_category",
            ));
        }
        let bytes = decode(&body["media"])?;
        let Some(media_type) = sniff(&bytes).filter(|t| !processed(t)) else {
            return Err(MediaError::Invalid(
                "Only images can be uploaded in one request; use the chunked upload (initialize, append, finalize) for video and GIFs.".into(),
                "media",
            ));
        };
        if Some(bytes.len() as u64) > limit(media_type) {
            return Err(MediaError::Invalid(
                "The image is larger than 5 MB.".into(),
                "media",
            ));
        }
        let m = self.new_media(owner, media_type, bytes.len() as u64, now);
        m.segments.insert(0, bytes.len() as u64);
        m.state = State::Succeeded;
        Ok(
            json!({"data": {"id": m.id, "media_key": m.key, "size": m.total_bytes, "expires_after_secs": EXPIRES_AFTER}}),
        )
    }

    /// `POST /2/media/upload/initialize`.
    pub fn initialize(&mut self, owner: &str, body: &Value, now: i64) -> Result<Value, MediaError> {
        let media_type = body["media_type"]
            .as_str()
            .ok_or_else(|| MediaError::Invalid("`media_type` is required.".into(), "media_type"))?;
        let Some(max) = limit(media_type) else {
            return Err(MediaError::Invalid(
                format!("The media type {media_type} is not supported."),
                "media_type",
            ));
        };
        let total = body["total_bytes"]
            .as_u64()
            .filter(|t| *t > 0)
            .ok_or_else(|| {
                MediaError::Invalid("`total_bytes` is required.".into(), "total_bytes")
            })?;
        if total > max {
            return Err(MediaError::Invalid(
                format!(
                    "The file is larger than the {} MB X allows for {media_type}.",
                    max / (1024 * 1024)
                ),
                "total_bytes",
            ));
        }
        let m = self.new_media(owner, media_type, total, now);
        Ok(json!({"data": {"id": m.id, "media_key": m.key, "expires_after_secs": EXPIRES_AFTER}}))
    }

    /// `POST /2/media/upload/{id}/append`.
    pub fn append(
        &mut self,
        owner: &str,
        id: &str,
        body: &Value,
        now: i64,
    ) -> Result<Value, MediaError> {
        let bytes = decode(&body["media"])?;
        let index = body["segment_index"]
            .as_u64()
            .filter(|i| *i <= 999)
            .ok_or_else(|| {
                MediaError::Invalid(
                    "`segment_index` must be an integer from 0 to 999.".into(),
                    "segment_index",
                )
            })? as u32;
        let m = self.own(id, owner, now)?;
        if m.state != State::Uploading {
            return Err(MediaError::Forbidden(
                "This upload was already finalized.".into(),
            ));
        }
        if index == 0 && bytes.starts_with(b"FAIL") {
            m.marked_to_fail = true;
        }
        m.segments.insert(index, bytes.len() as u64);
        let received: u64 = m.segments.values().sum();
        if received > m.total_bytes {
            return Err(MediaError::Invalid(
                "The segments are larger than the total_bytes given at initialize.".into(),
                "media",
            ));
        }
        Ok(json!({"data": {"expires_at": m.expires_at}}))
    }

    /// `POST /2/media/upload/{id}/finalize`.
    pub fn finalize(&mut self, owner: &str, id: &str, now: i64) -> Result<Value, MediaError> {
        let m = self.own(id, owner, now)?;
        if m.state != State::Uploading {
            return Err(MediaError::Forbidden(
                "This upload was already finalized.".into(),
            ));
        }
        let received: u64 = m.segments.values().sum();
        let contiguous = m.segments.keys().copied().eq(0..m.segments.len() as u32);
        if received != m.total_bytes || !contiguous {
            return Err(MediaError::Invalid(
                "Segments do not add up to provided total file size.".into(),
                "media",
            ));
        }
        let mut data = json!({"id": m.id, "media_key": m.key, "size": m.total_bytes, "expires_after_secs": m.expires_at - now});
        if processed(&m.media_type) {
            m.state = State::Processing {
                checks_left: PROCESSING_CHECKS,
                fail: m.marked_to_fail,
            };
            data["processing_info"] = json!({"state": "pending", "check_after_secs": 1});
        } else {
            m.state = State::Succeeded;
        }
        Ok(json!({ "data": data }))
    }

    /// `GET /2/media/upload?command=STATUS&media_id=...`: each check moves
    /// processing on.
    pub fn status(&mut self, owner: &str, id: &str, now: i64) -> Result<Value, MediaError> {
        let m = self.own(id, owner, now)?;
        let info = match m.state.clone() {
            State::Uploading => {
                return Err(MediaError::Forbidden(
                    "This upload has not been finalized.".into(),
                ));
            }
            State::Processing { checks_left, fail } if checks_left > 1 => {
                m.state = State::Processing {
                    checks_left: checks_left - 1,
                    fail,
                };
                json!({"state": "in_progress", "check_after_secs": 1, "progress_percent": 50})
            }
            State::Processing { fail: true, .. } => {
                let why = "Unsupported video format".to_owned();
                m.state = State::Failed(why.clone());
                json!({"state": "failed", "progress_percent": 100, "error": {"code": 1, "name": "InvalidMedia", "message": why}})
            }
            State::Processing { .. } => {
                m.state = State::Succeeded;
                json!({"state": "succeeded", "progress_percent": 100})
            }
            State::Succeeded => json!({"state": "succeeded", "progress_percent": 100}),
            State::Failed(why) => {
                json!({"state": "failed", "progress_percent": 100, "error": {"code": 1, "name": "InvalidMedia", "message": why}})
            }
        };
        Ok(json!({"data": {"id": m.id, "media_key": m.key, "processing_info": info}}))
    }

    /// The keys of `ids`, if each is the caller's own processed upload: what
    /// a post may attach.
    pub fn attachable(&self, owner: &str, ids: &[String], now: i64) -> Option<Vec<String>> {
        ids.iter()
            .map(|id| {
                self.media
                    .get(id)
                    .filter(|m| {
                        m.owner == owner && m.expires_at > now && m.state == State::Succeeded
                    })
                    .map(|m| m.key.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_video_is_uploaded_in_segments_then_processed() {
        let mut u = Uploads::default();
        let init = u
            .initialize("u", &json!({"media_type": "video/mp4", "total_bytes": 6, "media_category": "tweet_video"}), 0)
            .ok()
            .unwrap();
        let id = init["data"]["id"].as_str().unwrap().to_owned();
        assert!(
            init["data"]["media_key"]
                .as_str()
                .unwrap()
                .starts_with("7_")
        );
        assert!(
            u.append(
                "other",
                &id,
                &json!({"media": b64(b"abc"), "segment_index": 0}),
                0
            )
            .is_err()
        );
        u.append(
            "u",
            &id,
            &json!({"media": b64(b"abc"), "segment_index": 0}),
            0,
        )
        .ok()
        .unwrap();
        assert!(u.finalize("u", &id, 0).is_err(), "3 of 6 bytes");
        u.append(
            "u",
            &id,
            &json!({"media": b64(b"def"), "segment_index": 1}),
            0,
        )
        .ok()
        .unwrap();
        let done = u.finalize("u", &id, 0).ok().unwrap();
        assert_eq!(done["data"]["processing_info"]["state"], "pending");
        assert_eq!(u.attachable("u", std::slice::from_ref(&id), 0), None);
        let s = u.status("u", &id, 0).ok().unwrap();
        assert_eq!(s["data"]["processing_info"]["state"], "in_progress");
        let s = u.status("u", &id, 0).ok().unwrap();
        assert_eq!(s["data"]["processing_info"]["state"], "succeeded");
        assert!(u.attachable("u", std::slice::from_ref(&id), 0).is_some());
        assert!(
            u.attachable("u", std::slice::from_ref(&id), EXPIRES_AFTER)
                .is_none(),
            "expired"
        );
    }

    #[test]
    fn bad_uploads_fail_as_x_fails_them() {
        let mut u = Uploads::default();
        assert!(
            u.initialize(
                "u",
                &json!({"media_type": "text/html", "total_bytes": 1}),
                0
            )
            .is_err()
        );
        assert!(
            u.initialize(
                "u",
                &json!({"media_type": "image/png", "total_bytes": 6 * 1024 * 1024}),
                0
            )
            .is_err()
        );
        let png = b"\x89PNG\r\n\x1a\nrest";
        let one = u.upload(
            "u",
            &json!({"media": b64(png), "media_category": "tweet_image"}),
            0,
        );
        assert!(one.is_ok());
        let video = u.upload(
            "u",
            &json!({"media": b64(b"not an image"), "media_category": "tweet_video"}),
            0,
        );
        assert!(video.is_err());
        let init = u
            .initialize(
                "u",
                &json!({"media_type": "video/mp4", "total_bytes": 8}),
                0,
            )
            .ok()
            .unwrap();
        let id = init["data"]["id"].as_str().unwrap().to_owned();
        u.append(
            "u",
            &id,
            &json!({"media": b64(b"FAILdata"), "segment_index": 0}),
            0,
        )
        .ok()
        .unwrap();
        u.finalize("u", &id, 0).ok().unwrap();
        u.status("u", &id, 0).ok().unwrap();
        let failed = u.status("u", &id, 0).ok().unwrap();
        assert_eq!(failed["data"]["processing_info"]["state"], "failed");
        assert!(u.attachable("u", &[id], 0).is_none());
    }
}
