//! What a model pays for the tools: the size of `tools/list` for a
//! selection, as `xmcp tools --stats` and `xmcp bench` print it.

use super::pricing::Pricing;
use super::registry::{Registry, RegistryConfig, ToolSource};
use super::selection::Selection;
use super::{builtin, x};
use rmcp::model::{ListToolsResult, Tool};
use std::collections::BTreeSet;
use std::sync::Arc;
use xmcp_openapi::Catalog;
use xmcp_openapi::prices::PriceTable;
use xmcp_openapi::toolsets::ALL_TOOLSETS;

/// Bytes per token, as a rough estimate (Claude's tokenizer counts about a
/// third more tokens than this for JSON).
pub const BYTES_PER_TOKEN: usize = 4;

/// The sizes of one selection's `tools/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes {
    /// The selection, as its URL suffix names it (`""`: the default).
    pub selection: String,
    pub tools: usize,
    /// The `tools/list` result as compact JSON.
    pub bytes: usize,
    /// Of which the tools' `_meta`.
    pub meta_bytes: usize,
    /// The largest input schema, in bytes of compact JSON, and its tool.
    pub largest_schema: usize,
    pub largest_schema_tool: String,
    /// The longest tool name, in characters.
    pub longest_name: usize,
}

impl Sizes {
    pub fn tokens(&self) -> usize {
        self.bytes / BYTES_PER_TOKEN
    }
}

fn json_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(0, |b| b.len())
}

/// The sizes of `tools`, listed for `selection`.
pub fn sizes(selection: &Selection, tools: Vec<Tool>) -> Sizes {
    let (largest_schema, largest_schema_tool) = tools
        .iter()
        .map(|t| (json_len(&*t.input_schema), t.name.to_string()))
        .max()
        .unwrap_or_default();
    let meta_bytes = tools
        .iter()
        .filter_map(|t| t.meta.as_ref())
        .map(json_len)
        .sum();
    let longest_name = tools
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0);
    let count = tools.len();
    Sizes {
        selection: selection.to_suffix(),
        tools: count,
        bytes: json_len(&ListToolsResult::with_all_items(tools)),
        meta_bytes,
        largest_schema,
        largest_schema_tool,
        longest_name,
    }
}

/// A registry of the built-in tools and `catalog`'s, priced by `prices`,
/// as a server with this configuration lists them (no X behind them).
pub fn listing_registry(
    catalog: Arc<Catalog>,
    prices: &PriceTable,
    config: RegistryConfig,
) -> Registry {
    let pricing = Arc::new(Pricing::new(prices, &catalog));
    let sources: Vec<Arc<dyn ToolSource>> = vec![
        Arc::new(builtin::Builtin),
        Arc::new(x::Listing { catalog, pricing }),
    ];
    Registry::new(sources, config)
}

/// The selections worth measuring: the default, `all`, read-only, and
/// each toolset alone.
pub fn selections(registry: &Registry) -> Vec<Selection> {
    let named = |names: &[&str]| Selection {
        toolsets: Some(
            names
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<BTreeSet<_>>(),
        ),
        read_only: false,
    };
    let mut out = vec![
        Selection::everything(),
        named(&[ALL_TOOLSETS]),
        Selection {
            toolsets: None,
            read_only: true,
        },
    ];
    out.extend(registry.toolsets().map(|(name, _)| named(&[name])));
    out
}

/// The sizes of each of [`selections`].
pub fn table(registry: &Registry) -> Vec<Sizes> {
    selections(registry)
        .iter()
        .map(|s| sizes(s, registry.list(&registry.view(&[s]))))
        .collect()
}
