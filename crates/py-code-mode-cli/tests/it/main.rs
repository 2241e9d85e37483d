//! The command and its MCP server: in-process over a duplex pipe, and the real binary.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

mod cli;
mod doctor;
mod human;
mod mcp;
mod repl;
mod sandbox;
mod signals;
mod stdio;
