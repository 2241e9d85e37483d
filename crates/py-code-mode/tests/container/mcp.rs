//! The MCP server (`py-code-mode --executor container`) runs agent code in a
//! container: the same `run_code` over stdio.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use py_code_mode_test_support::{TempLibrary, binary};
use serde_json::{Value, json};

use crate::image;

/// How long one reply may take (a cold container start included).
const DEADLINE: Duration = Duration::from_mins(1);

#[test]
fn run_code_over_mcp_stdio_runs_in_a_container() {
    let library = TempLibrary::new();
    let mut server = Command::new(binary())
        .arg("--base")
        .arg(library.path())
        .args([
            "--no-semantic",
            "--executor",
            "container",
            "--image",
            &image(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut stdin = server.stdin.take().expect("stdin");
    let stdout = server.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let send = |stdin: &mut std::process::ChildStdin, message: Value| {
        writeln!(stdin, "{message}").expect("write to the server");
    };
    let reply = || -> Value {
        let line = lines
            .recv_timeout(DEADLINE)
            .expect("a reply within the deadline");
        serde_json::from_str(&line).expect("JSON")
    };
    send(
        &mut stdin,
        json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "container-test", "version": "0"}},
        }),
    );
    assert_eq!(reply()["id"], 0);
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    send(
        &mut stdin,
        json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "run_code", "arguments": {"code": "import os, socket\n[os.getuid(), [n for _, n in socket.if_nameindex()]]"}},
        }),
    );
    let answer = reply();
    assert_eq!(answer["id"], 1, "{answer}");
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains("[10001, ['lo']]"), "{answer}");
    // The client says goodbye: the server exits and its containers go.
    drop(stdin);
    let deadline = std::time::Instant::now() + DEADLINE;
    while server.try_wait().expect("poll the server").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server outlived its client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
