//! Test harness shared by the integration suites (dev-only).

pub mod servers;
