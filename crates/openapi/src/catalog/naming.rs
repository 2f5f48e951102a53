//! Tool names: from X's operation ids, within MCP's limits, unique.

use super::*;

/// Valid MCP tool names (as the clients that are strictest check them).
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Make names valid and unique, deterministically.
pub(super) fn name_uniquely(
    tools: &mut [ToolSpec],
    reserved: &[String],
    warnings: &mut Vec<String>,
) {
    let mut taken: BTreeSet<String> = reserved.iter().cloned().collect();
    // Operations whose id is already a valid name keep it; others follow.
    let mut order: Vec<usize> = (0..tools.len()).collect();
    order.sort_by_key(|&i| {
        let t = &tools[i];
        (
            !t.operation_id.as_deref().is_some_and(is_valid_tool_name),
            t.path.clone(),
            t.method,
        )
    });
    for i in order {
        let t = &mut tools[i];
        let base = t.name.clone();
        let mut name = base.clone();
        if reserved.contains(&name) {
            name = truncate_name(&format!("x_{base}"));
        }
        let mut n = 2;
        while taken.contains(&name) {
            let suffix = format!("_{n}");
            name = format!("{}{suffix}", truncate_name_to(&base, 64 - suffix.len()));
            n += 1;
        }
        if name != base {
            warnings.push(format!(
                "operation `{}` ({} {}) is the tool `{name}`",
                t.operation_id.as_deref().unwrap_or("-"),
                t.method,
                t.path
            ));
        }
        taken.insert(name.clone());
        t.name = name;
    }
}

pub(super) fn truncate_name(s: &str) -> String {
    truncate_name_to(s, 64)
}

pub(super) fn truncate_name_to(s: &str, max: usize) -> String {
    // Names are ASCII by construction.
    s.chars().take(max).collect()
}

/// The tool name an operation asks for, before de-duplication.
pub(super) fn tool_name(id: Option<&str>, method: Method, path: &str) -> String {
    if let Some(id) = id
        && is_valid_tool_name(id)
    {
        return id.to_owned();
    }
    let raw = id.map_or_else(
        || format!("{}{}", method.as_str().to_lowercase(), path),
        str::to_owned,
    );
    let mut name = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        };
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    let name = truncate_name(name.trim_matches('_'));
    if name.is_empty() {
        "operation".into()
    } else {
        name
    }
}
