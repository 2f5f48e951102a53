//! Toolsets: named groups of X operations that a client can select (by
//! configuration, header or URL), so that a model sees the tools it needs
//! rather than all of X.
//!
//! An operation's toolset comes from its path, by [`PATHS`]: X's tags are
//! not stable (two copies of the same document version tag 46 operations
//! differently), its paths are. An operation no entry matches falls back
//! to its tag, lowercased. [`CORE`] names, by operationId, the operations
//! people use most; they form the `core` toolset in addition to their own.

use crate::tool::Method;

/// The toolset of the operations people use most.
pub const CORE_TOOLSET: &str = "core";

/// The selection of every toolset.
pub const ALL_TOOLSETS: &str = "all";

/// The operations in [`CORE_TOOLSET`], by operationId: yourself, posts and
/// users by id or username, recent search, a user's posts, the home
/// timeline, mentions, and posting, liking, reposting, bookmarking and
/// following with their reverses.
pub const CORE: [&str; 20] = [
    "getUsersMe",
    "getUsersByUsername",
    "getUsersById",
    "getPostsById",
    "getPostsByIds",
    "searchPostsRecent",
    "getUsersPosts",
    "getUsersTimeline",
    "getUsersMentions",
    "createPosts",
    "deletePosts",
    "likePost",
    "unlikePost",
    "repostPost",
    "unrepostPost",
    "getUsersBookmarks",
    "createUsersBookmark",
    "deleteUsersBookmark",
    "followUser",
    "unfollowUser",
];

/// Toolsets by path: the first entry whose segments begin the operation's
/// path (every `{parameter}` written `{}`) names its toolset.
pub const PATHS: [(&str, &str); 41] = [
    ("/2/tweets/search", "search"),
    ("/2/tweets/counts", "search"),
    ("/2/tweets/{}/liking_users", "likes"),
    ("/2/tweets", "posts"),
    ("/2/users/{}/bookmarks", "bookmarks"),
    ("/2/users/{}/likes", "likes"),
    ("/2/users/{}/liked_tweets", "likes"),
    ("/2/users/{}/retweets", "posts"),
    ("/2/users/reposts_of_me", "timelines"),
    ("/2/users/{}/tweets", "timelines"),
    ("/2/users/{}/mentions", "timelines"),
    ("/2/users/{}/timelines", "timelines"),
    ("/2/users/{}/following", "follows"),
    ("/2/users/{}/followers", "follows"),
    ("/2/users/{}/followed_lists", "lists"),
    ("/2/users/{}/owned_lists", "lists"),
    ("/2/users/{}/pinned_lists", "lists"),
    ("/2/users/{}/list_memberships", "lists"),
    ("/2/users/{}/muting", "moderation"),
    ("/2/users/{}/blocking", "moderation"),
    ("/2/users/{}/dm", "dm"),
    ("/2/users/{}/public_keys", "dm"),
    ("/2/users/public_keys", "dm"),
    ("/2/users/personalized_trends", "trends"),
    ("/2/users", "users"),
    ("/2/lists", "lists"),
    ("/2/dm_conversations", "dm"),
    ("/2/dm_events", "dm"),
    ("/2/chat", "dm"),
    ("/2/spaces", "spaces"),
    ("/2/broadcasts", "broadcasts"),
    ("/2/media", "media"),
    ("/2/communities", "communities"),
    ("/2/notes", "community_notes"),
    ("/2/news", "trends"),
    ("/2/trends", "trends"),
    ("/2/articles", "articles"),
    ("/2/usage", "usage"),
    ("/2/connections", "usage"),
    ("/2/compliance", "compliance"),
    ("/2/activity", "activity"),
];

/// What each toolset offers, in a line.
pub const DESCRIPTIONS: [(&str, &str); 21] = [
    (
        CORE_TOOLSET,
        "The operations used most: you, posts and users, recent search, timelines, posting, likes, reposts, bookmarks, follows",
    ),
    (
        "posts",
        "Posts by id, creating and deleting posts, reposts, quotes, hidden replies, post analytics",
    ),
    ("search", "Searching posts and counting matching posts"),
    (
        "timelines",
        "A user's posts, your home timeline, mentions, reposts of you",
    ),
    ("users", "Users by id or username, you, user search"),
    ("likes", "Liking posts, liked posts, who liked a post"),
    ("bookmarks", "Bookmarks and bookmark folders"),
    ("follows", "Following and unfollowing users, followers"),
    ("lists", "Lists, their members and followers, pinned lists"),
    (
        "moderation",
        "Muting and blocking users, and who you mute or block",
    ),
    (
        "dm",
        "Direct messages and X Chat: conversations, messages, keys",
    ),
    ("spaces", "Spaces: by id, by creator, search, buyers, posts"),
    ("broadcasts", "Live and scheduled broadcasts and their chat"),
    (
        "media",
        "Uploading media, media metadata, subtitles, analytics",
    ),
    ("communities", "Communities: by id and search"),
    ("community_notes", "Community Notes: writing and evaluating"),
    ("trends", "Trends by place, personalized trends, news"),
    ("articles", "Article drafts and publishing"),
    ("usage", "The app's API usage and streaming connections"),
    ("compliance", "Compliance jobs"),
    ("activity", "Activity subscriptions"),
];

/// Whether `prefix` is `path` or its first whole segments.
fn begins(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// An operation's toolset: by [`PATHS`], else its tag lowercased with
/// `_` for anything but letters and digits, else `other`.
pub fn toolset_of(_method: Method, path: &str, tag: Option<&str>) -> String {
    let path = crate::prices::normalized(path);
    if let Some((_, set)) = PATHS.iter().find(|(p, _)| begins(&path, p)) {
        return (*set).to_owned();
    }
    match tag.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect(),
        None => "other".to_owned(),
    }
}

/// Whether the operation with this id is in [`CORE_TOOLSET`].
pub fn is_core(operation_id: Option<&str>) -> bool {
    operation_id.is_some_and(|id| CORE.contains(&id))
}

/// The line that describes a toolset, if it is one of X's known ones.
pub fn description(toolset: &str) -> Option<&'static str> {
    DESCRIPTIONS
        .iter()
        .find(|(n, _)| *n == toolset)
        .map(|(_, d)| *d)
}

/// Whether `name` can name a toolset: lowercase letters, digits and `_`.
pub fn is_valid_toolset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decide_and_tags_are_the_fallback() {
        let of = |path: &str, tag: Option<&str>| toolset_of(Method::Get, path, tag);
        assert_eq!(of("/2/tweets/search/recent", Some("Posts")), "search");
        assert_eq!(of("/2/tweets/{id}/liking_users", Some("Users")), "likes");
        assert_eq!(of("/2/tweets/{tweet_id}/hidden", Some("Posts")), "posts");
        assert_eq!(
            of("/2/users/{source_user_id}/following/{target_user_id}", None),
            "follows"
        );
        assert_eq!(of("/2/users/{id}", Some("Users")), "users");
        assert_eq!(of("/2/users/me", Some("Users")), "users");
        assert_eq!(of("/2/usersx", None), "other");
        assert_eq!(of("/2/new/thing", Some("Brand New!")), "brand_new_");
        for (_, set) in PATHS {
            assert!(description(set).is_some(), "{set} has no description");
        }
        for (name, _) in DESCRIPTIONS {
            assert!(is_valid_toolset_name(name), "{name}");
        }
    }
}
