//! xmcp-store's one integration test binary: every store contract on both backends, and the rate limiter against a model.
#![allow(clippy::unwrap_used)]

mod conformance;
mod rate_model;
