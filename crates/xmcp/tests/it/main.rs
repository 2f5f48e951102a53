//! The `xmcp` binary's one integration test binary: the binary as users run it.
#![allow(clippy::print_stderr, clippy::unwrap_used)]

mod bridge;
mod cli;
mod docs;
mod local;
mod scale_out;
