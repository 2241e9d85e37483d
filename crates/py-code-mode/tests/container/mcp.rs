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

/// `--allow-read`/`--allow-write` show host folders to a container at the
/// same path: read-only and writable, and nothing else of the host.
#[test]
fn allow_read_and_allow_write_become_mounts_at_the_same_path() {
    use std::os::unix::fs::PermissionsExt as _;
    let library = TempLibrary::new();
    let shown = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let hidden = tempfile::tempdir().expect("tempdir");
    // The container's user is not root: let it traverse and write, so only
    // the mounts decide what it sees.
    for dir in [shown.path(), out.path(), hidden.path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    std::fs::write(shown.path().join("in.txt"), "from the host").expect("write");
    std::fs::write(hidden.path().join("secret.txt"), "no").expect("write");
    let code = format!(
        "import os\n\
         text = open('{shown}/in.txt').read()\n\
         try:\n    open('{shown}/x', 'w'); ro = 'writable'\n\
         except OSError as e:\n    ro = type(e).__name__\n\
         open('{out}/result.txt', 'w').write(text)\n\
         [text, ro, os.path.exists('{hidden}/secret.txt')]",
        shown = shown.path().display(),
        out = out.path().display(),
        hidden = hidden.path().display(),
    );
    let done = Command::new(binary())
        .arg("--base")
        .arg(library.path())
        .args([
            "--no-semantic",
            "--executor",
            "container",
            "--image",
            &image(),
        ])
        .arg("--allow-read")
        .arg(shown.path())
        .arg("--allow-write")
        .arg(out.path())
        .args(["run", "-c", &code])
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&done.stdout),
        "['from the host', 'OSError', False]\n",
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("result.txt")).expect("written through"),
        "from the host"
    );
}
