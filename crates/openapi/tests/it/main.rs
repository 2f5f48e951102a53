//! xmcp-openapi's one integration test binary: X's real document, and mutations of it.

mod mutations;
mod x_document;
