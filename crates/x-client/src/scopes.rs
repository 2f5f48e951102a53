//! X's OAuth 2.0 user-context scopes, and what each allows in the words a
//! user reads on the consent page.

/// Every scope xmcp can grant an MCP client, with what it allows (less
/// `offline.access`, which governs X's refresh token and is always asked of
/// X).
pub const SCOPES: [(&str, &str); 20] = [
    ("tweet.read", "Posts and timelines you can see, and search"),
    ("tweet.write", "Post, reply, repost and delete posts as you"),
    (
        "tweet.moderate.write",
        "Hide and unhide replies to your posts",
    ),
    (
        "users.read",
        "Profiles of accounts you can see, and your own",
    ),
    ("follows.read", "Who you follow and who follows you"),
    ("follows.write", "Follow and unfollow accounts as you"),
    ("space.read", "Spaces you can see"),
    ("mute.read", "Accounts you muted"),
    ("mute.write", "Mute and unmute accounts as you"),
    ("like.read", "Posts you liked and who liked posts"),
    ("like.write", "Like and unlike posts as you"),
    ("list.read", "Lists you own, follow or can see"),
    (
        "list.write",
        "Create, change and delete your lists, and follow or pin lists",
    ),
    ("block.read", "Accounts you blocked"),
    ("block.write", "Block and unblock accounts as you"),
    ("bookmark.read", "Your bookmarks"),
    ("bookmark.write", "Add and remove your bookmarks"),
    ("dm.read", "Your direct messages"),
    ("dm.write", "Send direct messages as you"),
    ("media.write", "Upload images and videos to your account"),
];

/// The scopes of [`SCOPES`], by name.
pub fn names() -> Vec<String> {
    SCOPES.iter().map(|(s, _)| (*s).to_owned()).collect()
}

/// [`SCOPES`] as the consent page takes them
/// (`xmcp_auth::AuthConfig::scope_words`).
pub fn words() -> std::collections::BTreeMap<String, String> {
    SCOPES
        .iter()
        .map(|(s, w)| ((*s).to_owned(), (*w).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_distinct_and_described() {
        let words = words();
        assert_eq!(words.len(), SCOPES.len(), "a scope is listed twice");
        assert!(words.values().all(|w| !w.trim().is_empty()));
        assert!(!words.contains_key("offline.access"));
    }
}
