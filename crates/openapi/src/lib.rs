//! X's OpenAPI document as MCP tools.
//!
//! [`load`] reads the document (OpenAPI 3.0, as X publishes it at
//! `https://api.x.com/2/openapi.json`) and makes a [`Catalog`]: one
//! [`ToolSpec`] per operation a user (or, with an app token, the app) can
//! call, with a JSON Schema 2020-12 input schema, MCP annotations and the
//! recipe to turn arguments back into X's request
//! ([`ToolSpec::request`]). Operations that cannot be tools (streams,
//! webhooks, binary downloads, OAuth 1.0a-only) are listed in
//! [`Catalog::skipped`] with the reason.
//!
//! The crate does no I/O and never panics on a malformed document: whatever
//! cannot be converted is an error or a skipped operation.

mod catalog;
/// The version of X's OpenAPI document the toolsets, curated descriptions
/// and prices were last checked against (`xmcp --version` says it; the
/// test on X's document fails when the document moves on).
pub const X_OPENAPI_CHECKED: &str = "2.167";

pub mod compact;
pub mod curated;
pub mod prices;
pub mod schema;
mod tool;
pub mod toolsets;

pub use catalog::{
    Catalog, LoadError, Options, SkipReason, Skipped, convert, is_valid_tool_name, load,
};
pub use tool::{
    Access, ArgError, ArrayStyle, Body, Hints, Location, Method, Param, Request, ToolSpec,
};
