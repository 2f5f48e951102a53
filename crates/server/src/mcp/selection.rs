//! What a connection selects of the tools: toolsets and read-only mode.
//!
//! A selection comes from three places, read by the same rules:
//! configuration (`tools_toolsets`, `tools_readonly`), the URL
//! (`/mcp/x/{toolset,toolset}` and a `/readonly` suffix, for web clients
//! that only take a URL), and the `X-MCP-Toolsets` and `X-MCP-Readonly`
//! headers. Each only narrows: the registry intersects them (see
//! [`super::registry::Registry::view`]).
//!
//! A URL is also a protected resource of its own (see
//! [`xmcp_auth::resource`]): tokens are issued for it, and a token issued for
//! a narrower selection never works at a wider one.

use std::collections::BTreeSet;

/// The header naming toolsets, comma-separated.
pub const TOOLSETS_HEADER: &str = "x-mcp-toolsets";
/// The header asking for read-only mode (`true` or `false`).
pub const READONLY_HEADER: &str = "x-mcp-readonly";

/// The URL segment before a toolset list: `/mcp/x/posts,dm`.
const TOOLSETS_SEGMENT: &str = "x";
/// The URL segment of read-only mode: `/mcp/readonly`, `/mcp/x/posts/readonly`.
const READONLY_SEGMENT: &str = "readonly";

/// One source's selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Toolsets named explicitly: only their tools (and the built-in ones)
    /// are listed and callable. `None`: not narrowed by toolset; the
    /// configured toolsets are listed and every allowed tool stays callable.
    pub toolsets: Option<BTreeSet<String>>,
    /// Only read-only tools.
    pub read_only: bool,
}

impl Selection {
    /// Everything (narrowed by nothing).
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selection a URL names by the path after the MCP endpoint's own:
    /// `""`, `/readonly`, `/x/{toolsets}` or `/x/{toolsets}/readonly`.
    /// Toolset names are checked by the registry, not here.
    pub fn from_suffix(suffix: &str) -> Result<Self, String> {
        let mut segments: Vec<&str> = match suffix {
            "" => return Ok(Self::everything()),
            s => match s.strip_prefix('/') {
                Some(rest) => rest.split('/').collect(),
                None => return Err(format!("`{suffix}` is not a selection")),
            },
        };
        let read_only = segments.last() == Some(&READONLY_SEGMENT);
        if read_only {
            segments.pop();
        }
        let toolsets = match segments.as_slice() {
            [] => None,
            [TOOLSETS_SEGMENT, list] => Some(parse_list(list)?),
            _ => {
                return Err(format!(
                    "`{suffix}` is not a selection: use /x/{{toolset,toolset}} and/or /readonly"
                ));
            }
        };
        Ok(Self {
            toolsets,
            read_only,
        })
    }

    /// The URL suffix naming this selection (the inverse of
    /// [`Self::from_suffix`]).
    pub fn to_suffix(&self) -> String {
        let mut out = String::new();
        if let Some(sets) = &self.toolsets {
            out.push('/');
            out.push_str(TOOLSETS_SEGMENT);
            out.push('/');
            out.push_str(&sets.iter().cloned().collect::<Vec<_>>().join(","));
        }
        if self.read_only {
            out.push('/');
            out.push_str(READONLY_SEGMENT);
        }
        out
    }

    /// The selection of a request's `X-MCP-Toolsets` and `X-MCP-Readonly`
    /// headers (each optional).
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Self, String> {
        let text = |name: &str| -> Result<Option<&str>, String> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(|s| Some(s.trim()))
                    .map_err(|_| format!("the {name} header is not text")),
            }
        };
        let toolsets = text(TOOLSETS_HEADER)?.map(parse_list).transpose()?;
        let read_only = match text(READONLY_HEADER)?
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => {
                return Err(format!(
                    "the {READONLY_HEADER} header is `{other}`: use true or false"
                ));
            }
        };
        Ok(Self {
            toolsets,
            read_only,
        })
    }
}

/// `posts,dm` as a set of names (lowercase letters, digits and `_`).
fn parse_list(list: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for name in list.split(',').map(str::trim) {
        if !xmcp_openapi::toolsets::is_valid_toolset_name(name) {
            return Err(format!(
                "`{name}` is not a toolset name (lowercase letters, digits and _, comma-separated)"
            ));
        }
        out.insert(name.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(names: &[&str]) -> Option<BTreeSet<String>> {
        Some(names.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn urls_name_toolsets_and_read_only_mode() {
        assert_eq!(Selection::from_suffix(""), Ok(Selection::everything()));
        assert_eq!(
            Selection::from_suffix("/readonly"),
            Ok(Selection {
                toolsets: None,
                read_only: true
            })
        );
        assert_eq!(
            Selection::from_suffix("/x/posts,dm/readonly"),
            Ok(Selection {
                toolsets: sets(&["dm", "posts"]),
                read_only: true
            })
        );
        assert_eq!(
            Selection::from_suffix("/x/posts").unwrap().to_suffix(),
            "/x/posts"
        );
        for bad in [
            "/x",
            "/x/",
            "/x/Posts",
            "/x/posts/dm",
            "/y/posts",
            "/readonly/x/posts",
            "x/posts",
            "/x/posts,",
            "/x/posts/readonly/",
        ] {
            assert!(Selection::from_suffix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_name_toolsets_and_read_only_mode() {
        let mut h = http::HeaderMap::new();
        assert_eq!(Selection::from_headers(&h), Ok(Selection::everything()));
        h.insert(
            TOOLSETS_HEADER,
            http::HeaderValue::from_static(" posts, dm "),
        );
        h.insert(READONLY_HEADER, http::HeaderValue::from_static("TRUE"));
        assert_eq!(
            Selection::from_headers(&h),
            Ok(Selection {
                toolsets: sets(&["dm", "posts"]),
                read_only: true
            })
        );
        h.insert(READONLY_HEADER, http::HeaderValue::from_static("maybe"));
        assert!(Selection::from_headers(&h).is_err());
    }
}
