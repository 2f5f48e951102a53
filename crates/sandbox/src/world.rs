//! The simulated X's state: accounts, posts, the social graph, and the OAuth
//! artefacts it has issued. Plain data guarded by one mutex in [`crate::Sandbox`];
//! nothing here awaits.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A demo account.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct Post {
    pub id: u64,
    pub text: String,
    pub author_id: String,
    pub created_at: i64,
    pub conversation_id: u64,
    pub in_reply_to: Option<u64>,
    /// Keys of the media attached.
    pub media_keys: Vec<String>,
}

/// An authorization code: single use, 30 seconds, like X's.
#[derive(Clone, Debug)]
pub struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub method: String,
    pub user_id: String,
    pub scope: String,
    pub expires_at: i64,
}

#[derive(Clone, Debug)]
pub struct AccessToken {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub expires_at: i64,
}

#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
}

/// One rate-limit window of one caller on one operation.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub reset: i64,
    pub used: u32,
}

/// Length of X's usual rate-limit window.
pub const WINDOW_SECONDS: i64 = 15 * 60;

pub struct World {
    pub users: Vec<User>,
    pub posts: BTreeMap<u64, Post>,
    next_post: u64,
    /// (user id, post id) in the order the likes happened.
    pub likes: Vec<(String, u64)>,
    /// Per user, newest first.
    pub bookmarks: HashMap<String, Vec<u64>>,
    pub follows: BTreeSet<(String, String)>,
    pub codes: HashMap<String, Code>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub windows: HashMap<(String, &'static str), Window>,
    /// Media uploads.
    pub uploads: crate::media::Uploads,
}

/// First post id; ids grow from here like X's snowflakes do.
const FIRST_POST_ID: u64 = 1_860_000_000_000_000_000;

impl World {
    /// Three accounts (two people and a news account that has posted) so that
    /// search, timelines and lookups return something from the start.
    pub fn seeded(now: i64) -> Self {
        let users = vec![
            User {
                id: "1850000000000000001".into(),
                username: "demo_user".into(),
                name: "Demo User".into(),
                description: "The first demo account of the xmcp sandbox.".into(),
                created_at: now - 400 * 86_400,
            },
            User {
                id: "1850000000000000002".into(),
                username: "second_user".into(),
                name: "Second Demo User".into(),
                description: "Another demo account, to see that users are kept apart.".into(),
                created_at: now - 200 * 86_400,
            },
            User {
                id: "1850000000000000003".into(),
                username: "sandbox_news".into(),
                name: "Sandbox News".into(),
                description: "Posts about the xmcp sandbox.".into(),
                created_at: now - 900 * 86_400,
            },
        ];
        let mut world = World {
            users,
            posts: BTreeMap::new(),
            next_post: FIRST_POST_ID,
            likes: Vec::new(),
            bookmarks: HashMap::new(),
            follows: BTreeSet::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            windows: HashMap::new(),
            uploads: crate::media::Uploads::default(),
        };
        let news = "1850000000000000003".to_owned();
        for (i, text) in [
            "Welcome to the xmcp sandbox: a simulated X for trying MCP tools.",
            "Everything here lives in memory and is gone when the sandbox stops.",
            "Try searching for posts about the sandbox, liking one, or bookmarking it.",
        ]
        .into_iter()
        .enumerate()
        {
            let at = now - 3600 * (3 - i as i64);
            world.add_post(&news, text, None, at);
        }
        for u in ["1850000000000000001", "1850000000000000002"] {
            world.follows.insert((u.to_owned(), news.clone()));
        }
        world
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    pub fn add_post(
        &mut self,
        author: &str,
        text: &str,
        in_reply_to: Option<u64>,
        now: i64,
    ) -> Post {
        let id = self.next_post;
        self.next_post += 1;
        let conversation_id = in_reply_to
            .and_then(|r| self.posts.get(&r))
            .map_or(id, |p| p.conversation_id);
        let post = Post {
            id,
            text: text.to_owned(),
            author_id: author.to_owned(),
            created_at: now,
            conversation_id,
            in_reply_to,
            media_keys: Vec::new(),
        };
        self.posts.insert(id, post.clone());
        post
    }

    /// Remove a post and every like and bookmark of it.
    pub fn delete_post(&mut self, id: u64) {
        self.posts.remove(&id);
        self.likes.retain(|(_, p)| *p != id);
        for list in self.bookmarks.values_mut() {
            list.retain(|p| *p != id);
        }
    }

    pub fn like_count(&self, post: u64) -> usize {
        self.likes.iter().filter(|(_, p)| *p == post).count()
    }

    pub fn reply_count(&self, post: u64) -> usize {
        self.posts
            .values()
            .filter(|p| p.in_reply_to == Some(post))
            .count()
    }

    pub fn followers_of(&self, user: &str) -> Vec<&User> {
        self.follows
            .iter()
            .filter(|(_, dst)| dst == user)
            .filter_map(|(src, _)| self.user(src))
            .collect()
    }

    pub fn following_of(&self, user: &str) -> Vec<&User> {
        self.follows
            .iter()
            .filter(|(src, _)| src == user)
            .filter_map(|(_, dst)| self.user(dst))
            .collect()
    }

    /// Count one call against a caller's window; `Err(window)` when exhausted.
    pub fn consume(
        &mut self,
        caller: &str,
        op: &'static str,
        limit: u32,
        now: i64,
    ) -> Result<Window, Window> {
        let w = self
            .windows
            .entry((caller.to_owned(), op))
            .or_insert(Window {
                reset: now + WINDOW_SECONDS,
                used: 0,
            });
        if w.reset <= now {
            *w = Window {
                reset: now + WINDOW_SECONDS,
                used: 0,
            };
        }
        if w.used >= limit {
            return Err(*w);
        }
        w.used += 1;
        Ok(*w)
    }
}

/// `2026-11-23T17:00:00.000Z` from Unix seconds (X's timestamp format).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_453_200), "2026-11-23T17:00:00.000Z");
    }

    #[test]
    fn windows_count_down_and_reset() {
        let mut w = World::seeded(1000);
        assert_eq!(w.consume("u", "op", 2, 1000).unwrap().used, 1);
        assert_eq!(w.consume("u", "op", 2, 1001).unwrap().used, 2);
        let full = w.consume("u", "op", 2, 1002).unwrap_err();
        assert_eq!(full.reset, 1000 + WINDOW_SECONDS);
        // Other callers have their own window.
        assert!(w.consume("v", "op", 2, 1002).is_ok());
        // After the reset the window starts again.
        assert_eq!(w.consume("u", "op", 2, full.reset).unwrap().used, 1);
    }

    #[test]
    fn deleting_a_post_removes_its_likes_and_bookmarks() {
        let mut w = World::seeded(1000);
        let p = w.add_post("1850000000000000001", "hi", None, 1000);
        w.likes.push(("1850000000000000002".into(), p.id));
        w.bookmarks
            .entry("1850000000000000002".into())
            .or_default()
            .push(p.id);
        w.delete_post(p.id);
        assert_eq!(w.like_count(p.id), 0);
        assert!(w.bookmarks["1850000000000000002"].is_empty());
    }
}
