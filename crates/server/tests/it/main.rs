//! xmcp-server's one integration test binary.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

/// The shared harness, under the name the test modules use.
mod harness {
    pub use xmcp_test_support::*;
}

mod billing;
mod bridge;
mod connection;
mod demo;
mod device;
mod flow;
mod media;
mod negative;
mod ops;
mod outage;
mod pages;
mod permissions;
mod python_sdk;
mod security;
mod selection;
mod sessions;
mod typescript_sdk;
mod upstream;
mod x_tools;
