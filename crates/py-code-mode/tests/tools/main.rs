//! Tools against real servers: MCP servers over stdio, SSE and streamable HTTP,
//! a local HTTP API, CLI recipes, and all of them from agent code in a session.

mod cli;
mod common;
mod http;
mod mcp;
mod session;
