//! The xmcp server: configuration, application state, the HTTP router (OAuth
//! authorization server, resource guard, MCP endpoint) and its lifecycle.
//! The `xmcp` binary only parses arguments and calls into this crate.

pub mod app;
pub mod bridge;
pub mod compose;
pub mod config;
pub mod keys;
pub mod local;
pub mod mcp;
pub mod ops;
pub mod page;
pub mod telemetry;
pub mod tools;

pub use app::{App, build_router, http_service, serve};
pub use config::{Config, ConfigError, Settings};
