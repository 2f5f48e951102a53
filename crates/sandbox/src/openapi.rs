//! The sandbox's OpenAPI document: what it implements, written in the style
//! of X's own (OpenAPI 3.0, one tag per operation, `OAuth2UserToken` scopes
//! per operation, shared `*.fields`/`expansions` parameters with
//! `explode: false`, `default` responses in `application/problem+json`), so
//! that the tool generator reads it exactly as it reads X's.

use crate::api::{
    OPS, Op, POST_EXPANSIONS, POST_FIELDS, RETURNS_POSTS, USER_EXPANSIONS, USER_FIELDS,
};
use crate::oauth::SCOPES;
use serde_json::{Map, Value, json};

pub fn document(base_url: &str) -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method.to_ascii_lowercase()] = operation(op);
    }
    let base = base_url.trim_end_matches('/');
    let scopes: Map<String, Value> = SCOPES
        .iter()
        .map(|s| ((*s).to_owned(), Value::from(format!("The {s} permission."))))
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {
            "title": "X API v2 (xmcp sandbox)",
            "description": "The subset of X API v2 that the xmcp sandbox simulates.",
            "version": "2.167-sandbox",
        },
        "servers": [{"description": "xmcp sandbox", "url": base}],
        "tags": [
            {"name": "Posts", "description": "Endpoints related to Posts"},
            {"name": "Users", "description": "Endpoints related to Users"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "BearerToken": {"type": "http", "scheme": "bearer"},
                "OAuth2UserToken": {
                    "type": "oauth2",
                    "flows": {"authorizationCode": {
                        "authorizationUrl": format!("{base}/i/oauth2/authorize"),
                        "tokenUrl": format!("{base}/2/oauth2/token"),
                        "scopes": scopes,
                    }},
                },
            },
            "parameters": {
                "UserFieldsParameter": list_parameter("user.fields", "The fields available for a User object.", USER_FIELDS),
                "PostFieldsParameter": list_parameter("post.fields", "The fields available for a Post object.", POST_FIELDS),
                "UserExpansionsParameter": list_parameter("expansions", "A comma separated list of fields to expand.", USER_EXPANSIONS),
                "PostExpansionsParameter": list_parameter("expansions", "A comma separated list of fields to expand.", POST_EXPANSIONS),
            },
            "schemas": schemas(),
        },
    })
}

fn list_parameter(name: &str, description: &str, values: &[&str]) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "required": false,
        "schema": {
            "type": "array",
            "description": description,
            "minItems": 1,
            "uniqueItems": true,
            "items": {"type": "string", "enum": values},
        },
        "explode": false,
        "style": "form",
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn path_parameter(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true, "schema": schema, "style": "simple"})
}

fn query_parameter(name: &str, required: bool, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "required": required, "schema": schema, "style": "form"})
}

fn max_results(min: u32, max: u32) -> Value {
    query_parameter(
        "max_results",
        false,
        json!({"type": "integer", "minimum": min, "maximum": max, "format": "int32"}),
        "The maximum number of results.",
    )
}

fn pagination_token() -> Value {
    query_parameter(
        "pagination_token",
        false,
        json!({"type": "string", "minLength": 1}),
        "This parameter is used to get the next 'page' of results.",
    )
}

fn shared(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

fn operation(op: &Op) -> Value {
    let mut params: Vec<Value> = Vec::new();
    for segment in op.path.split('/') {
        let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            continue;
        };
        let (schema, description) = match (name, op.path.starts_with("/2/tweets")) {
            ("id", _) if op.path.starts_with("/2/media") => {
                (reference("MediaId"), "The media id of the upload.")
            }
            ("username", _) => (
                json!({"type": "string", "pattern": "^[A-Za-z0-9_]{1,15}$"}),
                "A username.",
            ),
            ("tweet_id", _) | ("id", true) => (reference("TweetId"), "The ID of the Post."),
            ("id", false) if op.scopes.iter().any(|s| s.ends_with(".write")) || !op.app_only => (
                reference("UserId"),
                "The ID of the authenticated source User. It must match the ID of the currently authenticated user.",
            ),
            ("target_user_id", _) => (
                reference("UserId"),
                "The ID of the User that the source User is requesting to unfollow.",
            ),
            ("source_user_id", _) => (
                reference("UserIdMatchesAuthenticatedUser"),
                "The ID of the authenticated source User that is requesting to unfollow the target User.",
            ),
            _ => (reference("UserId"), "The ID of the User to look up."),
        };
        params.push(path_parameter(name, schema, description));
    }
    match op.id {
        "getUsersByIds" => params.push(query_parameter(
            "ids",
            true,
            json!({"type": "array", "minItems": 1, "maxItems": 100, "items": reference("UserId")}),
            "A list of User IDs, comma-separated. You can specify up to 100 IDs.",
        )),
        "getUsersByUsernames" => params.push(query_parameter(
            "usernames",
            true,
            json!({"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,15}$"}}),
            "A list of usernames, comma-separated.",
        )),
        "getPostsByIds" => params.push(query_parameter(
            "ids",
            true,
            json!({"type": "array", "minItems": 1, "maxItems": 100, "items": reference("TweetId")}),
            "A comma separated list of Post IDs. Up to 100 are allowed in a single request.",
        )),
        "searchPostsRecent" => {
            params.push(query_parameter(
                "query",
                true,
                json!({"type": "string", "minLength": 1, "maxLength": 4096}),
                "One query/rule/filter for matching Posts. Words, \"exact phrases\", from:username and -word are supported.",
            ));
            params.push(max_results(10, 100));
        }
        "getUsersPosts" => params.push(max_results(5, 100)),
        "getUsersTimeline" | "getUsersLikedPosts" | "getUsersBookmarks" => {
            params.push(max_results(1, 100));
            params.push(pagination_token());
        }
        "getUsersFollowing" | "getUsersFollowers" | "getPostsLikingUsers" => {
            params.push(max_results(1, 1000));
            params.push(pagination_token());
        }
        "getMediaUploadStatus" => {
            params.push(query_parameter(
                "media_id",
                true,
                reference("MediaId"),
                "Media id for the requested media upload status.",
            ));
            params.push(query_parameter(
                "command",
                false,
                json!({"type": "string", "enum": ["STATUS"]}),
                "The command for the media upload request.",
            ));
        }
        _ => {}
    }
    let writes = matches!(op.method, "POST" | "DELETE");
    if op.path.starts_with("/2/media") {
        // No fields or expansions: uploads answer with their own shape.
    } else if RETURNS_POSTS.contains(&op.id) {
        params.extend([
            shared("PostFieldsParameter"),
            shared("PostExpansionsParameter"),
            shared("UserFieldsParameter"),
        ]);
    } else if !writes {
        params.extend([
            shared("UserFieldsParameter"),
            shared("UserExpansionsParameter"),
            shared("PostFieldsParameter"),
        ]);
    }
    let mut security = vec![json!({"OAuth2UserToken": op.scopes})];
    if op.app_only {
        security.push(json!({"BearerToken": []}));
    }
    let (status, response_schema) = match op.id {
        "createPosts" => ("201", "TweetCreateResponse"),
        "deletePosts" => ("200", "TweetDeleteResponse"),
        "likePost" | "unlikePost" => ("200", "UsersLikesResponse"),
        "createUsersBookmark" | "deleteUsersBookmark" => ("200", "BookmarkMutationResponse"),
        "followUser" | "unfollowUser" => ("200", "UsersFollowingResponse"),
        id if id.contains("Media") || id == "mediaUpload" => ("200", "MediaUploadResponse"),
        id if RETURNS_POSTS.contains(&id) && id.ends_with("ById") => {
            ("200", "Get2TweetsIdResponse")
        }
        id if RETURNS_POSTS.contains(&id) => ("200", "Get2TweetsResponse"),
        id if id.ends_with("Me") || id.ends_with("ById") || id.ends_with("ByUsername") => {
            ("200", "Get2UsersIdResponse")
        }
        _ => ("200", "Get2UsersResponse"),
    };
    let mut out = json!({
        "security": security,
        "tags": [op.tag],
        "summary": op.summary,
        "description": description(op),
        "operationId": op.id,
        "parameters": params,
        "responses": {
            status: {
                "description": "The request has succeeded.",
                "content": {"application/json": {"schema": reference(response_schema)}},
            },
            "default": {
                "description": "The request has failed.",
                "content": {
                    "application/json": {"schema": reference("Error")},
                    "application/problem+json": {"schema": reference("Problem")},
                },
            },
        },
    });
    let body = match op.id {
        "createPosts" => Some("TweetCreateRequest"),
        "likePost" => Some("UsersLikesCreateRequest"),
        "createUsersBookmark" => Some("BookmarkAddRequest"),
        "followUser" => Some("UsersFollowingCreateRequest"),
        "mediaUpload" => Some("MediaUploadRequest"),
        "initializeMediaUpload" => Some("InitializeMediaUploadRequest"),
        "appendMediaUpload" => Some("AppendMediaUploadRequest"),
        _ => None,
    };
    if let Some(body) = body {
        out["requestBody"] = json!({
            "content": {"application/json": {"schema": reference(body)}},
            "required": true,
        });
    }
    out
}

fn description(op: &Op) -> String {
    match op.id {
        "getUsersMe" => "Retrieves details of the authenticated user.".into(),
        "createPosts" => {
            "Creates a new Post for the authenticated user, or a reply to an existing Post.".into()
        }
        "deletePosts" => {
            "Deletes a specific Post by its ID, if owned by the authenticated user.".into()
        }
        "searchPostsRecent" => {
            "Retrieves Posts from the last 7 days matching a search query.".into()
        }
        "getUsersTimeline" => {
            "Retrieves a reverse chronological list of Posts in the authenticated User's Timeline."
                .into()
        }
        _ => format!("{}.", op.summary),
    }
}

fn schemas() -> Value {
    let id = |what: &str, example: &str| json!({"type": "string", "description": format!("Unique identifier of this {what}."), "pattern": "^[0-9]{1,19}$", "example": example});
    json!({
        "UserId": id("User", "1850000000000000001"),
        "UserIdMatchesAuthenticatedUser": id("User (the authenticated user)", "1850000000000000001"),
        "TweetId": id("Post", "1860000000000000000"),
        "User": {
            "type": "object",
            "required": ["id", "name", "username"],
            "properties": {
                "id": reference("UserId"),
                "name": {"type": "string"},
                "username": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "description": {"type": "string"},
                "protected": {"type": "boolean"},
                "verified": {"type": "boolean"},
                "profile_image_url": {"type": "string", "format": "uri"},
                "public_metrics": {"type": "object", "properties": {
                    "followers_count": {"type": "integer"},
                    "following_count": {"type": "integer"},
                    "tweet_count": {"type": "integer"},
                    "listed_count": {"type": "integer"},
                    "like_count": {"type": "integer"},
                }},
            },
        },
        "Tweet": {
            "type": "object",
            "required": ["id", "text"],
            "properties": {
                "id": reference("TweetId"),
                "text": {"type": "string"},
                "author_id": reference("UserId"),
                "conversation_id": reference("TweetId"),
                "created_at": {"type": "string", "format": "date-time"},
                "edit_history_tweet_ids": {"type": "array", "items": reference("TweetId")},
                "lang": {"type": "string"},
                "public_metrics": {"type": "object"},
                "referenced_tweets": {"type": "array", "items": {"type": "object", "properties": {
                    "type": {"type": "string", "enum": ["retweeted", "quoted", "replied_to"]},
                    "id": reference("TweetId"),
                }}},
            },
        },
        "Expansions": {"type": "object", "properties": {
            "users": {"type": "array", "items": reference("User")},
            "tweets": {"type": "array", "items": reference("Tweet")},
        }},
        "Error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "integer", "format": "int32"}, "message": {"type": "string"}},
        },
        "Problem": {
            "type": "object",
            "description": "An HTTP Problem Details object, as defined in IETF RFC 7807 (https://tools.ietf.org/html/rfc7807).",
            "required": ["type", "title"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "detail": {"type": "string"},
                "status": {"type": "integer"},
            },
        },
        "Get2UsersIdResponse": {"type": "object", "properties": {
            "data": reference("User"),
            "includes": reference("Expansions"),
            "errors": {"type": "array", "items": reference("Problem")},
        }},
        "Get2UsersResponse": {"type": "object", "properties": {
            "data": {"type": "array", "items": reference("User")},
            "includes": reference("Expansions"),
            "errors": {"type": "array", "items": reference("Problem")},
            "meta": {"type": "object", "properties": {"result_count": {"type": "integer"}, "next_token": {"type": "string"}}},
        }},
        "Get2TweetsIdResponse": {"type": "object", "properties": {
            "data": reference("Tweet"),
            "includes": reference("Expansions"),
            "errors": {"type": "array", "items": reference("Problem")},
        }},
        "Get2TweetsResponse": {"type": "object", "properties": {
            "data": {"type": "array", "items": reference("Tweet")},
            "includes": reference("Expansions"),
            "errors": {"type": "array", "items": reference("Problem")},
            "meta": {"type": "object", "properties": {
                "newest_id": reference("TweetId"),
                "oldest_id": reference("TweetId"),
                "result_count": {"type": "integer"},
                "next_token": {"type": "string"},
            }},
        }},
        "MediaId": {"type": "string", "description": "The unique identifier of this Media.", "pattern": "^[0-9]{1,19}$", "example": "1880000000000000000"},
        "MediaUploadRequest": {
            "type": "object",
            "required": ["media", "media_category"],
            "properties": {
                "media": {"type": "string", "format": "byte", "description": "The media file to upload, base64-encoded."},
                "media_category": {"type": "string", "enum": ["tweet_image", "dm_image", "subtitles"], "description": "The category of the media being uploaded."},
            },
            "additionalProperties": false,
        },
        "InitializeMediaUploadRequest": {
            "type": "object",
            "properties": {
                "media_category": {"type": "string", "enum": ["tweet_gif", "tweet_image", "tweet_video", "dm_gif", "dm_image", "dm_video"], "description": "The media category of the upload."},
                "media_type": {"type": "string", "enum": ["video/mp4", "video/webm", "video/quicktime", "image/jpeg", "image/gif", "image/png", "image/webp"], "description": "The type of media."},
                "total_bytes": {"type": "integer", "minimum": 1, "maximum": 536_870_912, "description": "The total size of the media upload in bytes."},
            },
            "additionalProperties": false,
        },
        "AppendMediaUploadRequest": {
            "type": "object",
            "required": ["media", "segment_index"],
            "properties": {
                "media": {"type": "string", "format": "byte", "description": "The media chunk to upload, base64-encoded."},
                "segment_index": {"type": "integer", "minimum": 0, "maximum": 999, "description": "The index of this segment in the upload sequence."},
            },
            "additionalProperties": false,
        },
        "MediaUploadResponse": {"type": "object", "properties": {
            "data": {"type": "object", "properties": {
                "id": reference("MediaId"),
                "media_key": {"type": "string"},
                "processing_info": {"type": "object"},
            }},
        }},
        "TweetCreateRequest": {
            "type": "object",
            "description": "A request to create a Post.",
            "properties": {
                "text": {"type": "string", "description": "The content of the Post.", "example": "Learn how to use the user Post timeline and user mention timeline endpoints in the X API v2 to explore Post\u{2026}"},
                "media": {
                    "type": "object",
                    "description": "Media information being attached to created Post.",
                    "required": ["media_ids"],
                    "properties": {"media_ids": {"type": "array", "minItems": 1, "maxItems": 4, "items": reference("MediaId")}},
                    "additionalProperties": false,
                },
                "reply": {
                    "type": "object",
                    "description": "Post information of the Post being replied to.",
                    "required": ["in_reply_to_tweet_id"],
                    "properties": {"in_reply_to_tweet_id": reference("TweetId")},
                    "additionalProperties": false,
                },
            },
            "additionalProperties": false,
        },
        "TweetCreateResponse": {"type": "object", "properties": {
            "data": {"type": "object", "required": ["id", "text"], "properties": {
                "id": reference("TweetId"),
                "text": {"type": "string"},
                "edit_history_tweet_ids": {"type": "array", "items": reference("TweetId")},
            }},
            "errors": {"type": "array", "items": reference("Problem")},
        }},
        "TweetDeleteResponse": {"type": "object", "properties": {
            "data": {"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "boolean"}}},
            "errors": {"type": "array", "items": reference("Problem")},
        }},
        "UsersLikesCreateRequest": {
            "type": "object",
            "required": ["tweet_id"],
            "properties": {"tweet_id": reference("TweetId")},
            "additionalProperties": false,
        },
        "UsersLikesResponse": {"type": "object", "properties": {
            "data": {"type": "object", "properties": {"liked": {"type": "boolean"}}},
            "errors": {"type": "array", "items": reference("Problem")},
        }},
        "BookmarkAddRequest": {
            "type": "object",
            "required": ["tweet_id"],
            "properties": {"tweet_id": reference("TweetId")},
            "additionalProperties": false,
        },
        "BookmarkMutationResponse": {"type": "object", "properties": {
            "data": {"type": "object", "properties": {"bookmarked": {"type": "boolean"}}},
            "errors": {"type": "array", "items": reference("Problem")},
        }},
        "UsersFollowingCreateRequest": {
            "type": "object",
            "required": ["target_user_id"],
            "properties": {"target_user_id": reference("UserId")},
            "additionalProperties": false,
        },
        "UsersFollowingResponse": {"type": "object", "properties": {
            "data": {"type": "object", "properties": {
                "following": {"type": "boolean"},
                "pending_follow": {"type": "boolean"},
            }},
            "errors": {"type": "array", "items": reference("Problem")},
        }},
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_is_documented_with_its_scopes_and_every_ref_resolves() {
        let doc = super::document("http://127.0.0.1:9");
        let mut count = 0;
        for (_, item) in doc["paths"].as_object().unwrap() {
            for (_, op) in item.as_object().unwrap() {
                count += 1;
                assert!(op["operationId"].is_string());
                assert!(op["security"][0]["OAuth2UserToken"].is_array());
            }
        }
        assert_eq!(count, crate::api::OPS.len());
        // Every $ref points at something that exists.
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"#/").skip(1) {
            let path = r.split('"').next().unwrap();
            let mut node = &doc;
            for seg in path.split('/') {
                node = &node[seg];
            }
            assert!(!node.is_null(), "dangling $ref #/{path}");
        }
    }
}
