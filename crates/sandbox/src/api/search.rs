//! Recent search: the operation and the small query language it understands.

use super::*;

pub(super) fn search_posts_recent(sb: &Sandbox, req: &ApiRequest<'_>, views: &Views) -> Outcome {
    let w = sb.world();
    let query = req.query("query").unwrap_or_default().trim().to_owned();
    if query.is_empty() {
        return Err(Problem::invalid(
            "The `query` query parameter can not be empty",
            "query",
        ));
    }
    let matches = search(&w, &query);
    let (posts, meta) = page(req, matches, 10, 100)?;
    let mut out = views.posts(&w, &posts);
    out["meta"] = meta;
    ok(out)
}

/// Recent search with the operators people use most: words (all must
/// appear, case-insensitive), `"exact phrases"`, `from:username` and `-word`.
fn search<'a>(w: &'a World, query: &str) -> Vec<&'a Post> {
    let mut must = Vec::new();
    let mut not = Vec::new();
    let mut from = None;
    let mut rest = query;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(q) = rest.strip_prefix('"') {
            let (phrase, after) = q.split_once('"').unwrap_or((q, ""));
            must.push(phrase.to_lowercase());
            rest = after;
            continue;
        }
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        rest = after;
        if let Some(user) = word.strip_prefix("from:") {
            from = w
                .user_by_name(user.trim_start_matches('@'))
                .map(|u| u.id.clone());
            if from.is_none() {
                return Vec::new();
            }
        } else if let Some(neg) = word.strip_prefix('-') {
            not.push(neg.to_lowercase());
        } else if !word.is_empty() {
            must.push(word.to_lowercase());
        }
    }
    w.posts
        .values()
        .filter(|p| {
            let text = p.text.to_lowercase();
            from.as_ref().is_none_or(|f| *f == p.author_id)
                && must.iter().all(|m| text.contains(m.as_str()))
                && !not.iter().any(|n| text.contains(n.as_str()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_supports_words_phrases_from_and_negation() {
        let w = World::seeded(1_000_000);
        assert_eq!(search(&w, "sandbox").len(), 3);
        assert_eq!(search(&w, "\"simulated X\"").len(), 1);
        assert_eq!(search(&w, "sandbox -memory").len(), 2);
        assert_eq!(search(&w, "from:sandbox_news").len(), 3);
        assert_eq!(search(&w, "from:nobody sandbox").len(), 0);
    }
}
