use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{ToolAdapter, ToolRegistry, ToolSource, parse_definition};
use serde_json::{Map, Value};

/// One tool from YAML text, as the registry would load it.
pub fn tool(yaml: &str) -> Arc<dyn ToolAdapter> {
    parse_definition(&ToolSource {
        origin: "test.yaml".into(),
        text: yaml.to_owned(),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn registry(tools: &[&str]) -> ToolRegistry {
    let mut registry = ToolRegistry::default();
    for yaml in tools {
        registry.insert(tool(yaml));
    }
    registry
}

pub fn args(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Quotes a path for a YAML scalar.
pub fn q(path: &std::path::Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// How long a process may take to start or, killed, to disappear (a loaded
/// 2-core machine).
pub const GONE_WITHIN: Duration = Duration::from_secs(10);

/// Pids of live processes whose argv is exactly `argv`.
pub fn pids_running(argv: &[&str]) -> Vec<i32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted)
                        && alive(*pid)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` runs (a zombie is dead for our purposes).
pub fn alive(pid: i32) -> bool {
    py_code_mode_test_support::alive(pid.into())
}

pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + GONE_WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {GONE_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves `app` on a free loopback port, for the life of the test; returns the port.
pub async fn serve(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}
