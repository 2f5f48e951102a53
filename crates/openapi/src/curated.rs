//! What X's document does not say well enough for a model to pick a tool
//! and fill its arguments: one-line descriptions of the operations used
//! most (X's own are often their summary again, "Get Users Me"), and what a
//! search query is. Applied by operationId, so a document without these
//! operations is unaffected; X's text is kept when it says more.

/// One-line descriptions by operationId.
pub const DESCRIPTIONS: [(&str, &str); 23] = [
    (
        "getUsersMe",
        "Your own X profile: the signed-in user's id, name, username and the fields asked for.",
    ),
    (
        "getUsersByUsername",
        "A user's profile by username (without the @).",
    ),
    ("getUsersById", "A user's profile by user id."),
    (
        "getUsersByUsernames",
        "Profiles of up to 100 users by username.",
    ),
    ("getUsersByIds", "Profiles of up to 100 users by user id."),
    (
        "getPostsById",
        "One post by id, with the fields and expansions asked for.",
    ),
    ("getPostsByIds", "Up to 100 posts by id."),
    (
        "searchPostsRecent",
        "Search posts from the last 7 days (X's query syntax; 10-100 per page).",
    ),
    (
        "searchPostsAll",
        "Search the full archive of posts since 2006 (X's query syntax; 10-500 per page).",
    ),
    (
        "getUsersPosts",
        "A user's own posts, newest first (up to 3,200 most recent; 5-100 per page).",
    ),
    (
        "getUsersTimeline",
        "Your home timeline: posts from you and the accounts you follow, newest first.",
    ),
    (
        "getUsersMentions",
        "Posts mentioning a user, newest first (5-100 per page).",
    ),
    (
        "createPosts",
        "Publish a post as you: text, or a reply (reply.in_reply_to_tweet_id), a quote (quote_tweet_id), media (media.media_ids) or a poll.",
    ),
    ("deletePosts", "Delete one of your posts by id."),
    ("likePost", "Like a post as you (tweet_id)."),
    ("unlikePost", "Remove your like from a post."),
    ("repostPost", "Repost a post as you (tweet_id)."),
    (
        "unrepostPost",
        "Undo your repost of a post (source_tweet_id).",
    ),
    ("getUsersBookmarks", "Your bookmarked posts, newest first."),
    ("createUsersBookmark", "Bookmark a post (tweet_id)."),
    ("deleteUsersBookmark", "Remove a post from your bookmarks."),
    ("followUser", "Follow a user as you (target_user_id)."),
    ("unfollowUser", "Stop following a user (target_user_id)."),
];

/// Parameter descriptions X leaves out, by operationId and argument.
pub const PARAMETERS: [(&str, &str, &str); 3] = [
    ("searchPostsRecent", "query", QUERY),
    ("searchPostsAll", "query", QUERY),
    ("getPostsCountsRecent", "query", QUERY),
];

/// What a post search query is.
const QUERY: &str = "X search query: words, \"exact phrase\", #hashtag, from:user, to:user, @mention, -is:retweet, is:reply, has:media, has:links, lang:en, OR, -exclude, (grouping).";

/// The curated description of an operation, if it has one.
pub fn description(operation_id: Option<&str>) -> Option<&'static str> {
    let id = operation_id?;
    DESCRIPTIONS.iter().find(|(o, _)| *o == id).map(|(_, d)| *d)
}

/// The description X leaves out of `arg` of an operation, if known.
pub fn parameter(operation_id: Option<&str>, arg: &str) -> Option<&'static str> {
    let id = operation_id?;
    PARAMETERS
        .iter()
        .find(|(o, a, _)| *o == id && *a == arg)
        .map(|(_, _, d)| *d)
}
