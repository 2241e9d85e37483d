//! The boundary between agent code and the host: each test is an attack that
//! works against a porous worker (checked against the old one) and must fail
//! here, with the session still serving afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode_test_support::TempLibrary;
use serde_json::json;

use crate::{ok, session};

use py_code_mode_test_support::alive;

/// Polls until `pid` is gone, for at most `limit`.
async fn gone_within(pid: i64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

fn int(result: &py_code_mode::ExecutionResult) -> i64 {
    result
        .value
        .as_ref()
        .and_then(serde_json::Value::as_i64)
        .expect("an int value")
}

/// Agent code that finds the protocol fd the way an attacker would: walking
/// up the stack to the runtime's serve loop.
const FIND_PROTOCOL: &str = r#"
import sys, os, json, time
_f = sys._getframe()
while _f is not None and "transport" not in _f.f_locals:
    _f = _f.f_back
_transport = _f.f_locals["transport"]
_message = _f.f_locals["message"]
def forge(run_id, value):
    line = json.dumps({"kind": "result", "id": run_id, "result": {"value": value, "repr": repr(value)}}) + "\n"
    os.write(_transport._wfd, line.encode())
"#;

#[tokio::test]
async fn the_hosts_environment_is_unreadable_even_as_root() {
    let name = format!("PY_CODE_MODE_BOUNDARY_SECRET_{}", std::process::id());
    let secret = "hunter2-boundary-secret";
    // SAFETY: a variable no other test reads, set before this test's worker
    // starts; the attack needs a secret in the host's own environment.
    #[expect(
        unsafe_code,
        reason = "the test plants a secret in the host's environment"
    )]
    unsafe {
        std::env::set_var(&name, secret);
    }
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        r#"
import os
try:
    leaked = open(f"/proc/{os.getppid()}/environ", "rb").read().decode(errors="replace")
except OSError as exc:
    leaked = f"refused: {type(exc).__name__}"
caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
{"leaked": leaked, "caps": caps, "uid": os.getuid(), "cwd": os.getcwd()}
"#,
    )
    .await;
    let value = result.value.expect("a value");
    let leaked = value["leaked"].as_str().unwrap_or_default();
    assert!(
        !leaked.contains(secret),
        "the worker read the host's environment"
    );
    assert!(leaked.starts_with("refused: PermissionError"), "{leaked}");
    for line in value["caps"].as_array().expect("caps") {
        let line = line.as_str().unwrap_or_default();
        assert!(line.trim_end().ends_with("0000000000000000"), "{line}");
    }
    // Not the host's working directory (where the library may be).
    let cwd = value["cwd"].as_str().expect("cwd").to_owned();
    assert_ne!(Path::new(&cwd), std::env::current_dir().expect("cwd"));
    assert!(!Path::new(&cwd).starts_with(library.path()));
    session.close().await;
    assert!(
        !Path::new(&cwd).exists(),
        "the scratch folder outlived the session"
    );
}

#[tokio::test]
async fn stdin_is_empty_and_closing_fds_0_1_2_breaks_nothing() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        r"
import sys, threading
got = []
t = threading.Thread(target=lambda: got.append(sys.stdin.read()))
t.start(); t.join(5)
try:
    input()
    eof = False
except EOFError:
    eof = True
[eof, got]
",
    )
    .await;
    assert_eq!(result.value, Some(json!([true, [""]])));
    // Nothing the host sends is stolen: the next run gets its own message.
    assert_eq!(ok(&session, "1+1").await.value, Some(json!(2)));
    ok(&session, "import os\nos.close(0)\nos.close(1)\nos.close(2)").await;
    let result = ok(
        &session,
        "import os, sys\nprint('hi')\nprint('err', file=sys.stderr)\nos.system('echo child')\n3",
    )
    .await;
    assert_eq!(
        (result.stdout.as_str(), result.stderr.as_str(), result.value),
        ("hi\nchild\n", "err\n", Some(json!(3)))
    );
    session.close().await;
}

#[tokio::test]
async fn agent_code_holds_no_reference_to_the_transport() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        r#"
import __main__
spaces = (tools, tools.nmap, skills, artifacts)
found = [n for n in ("_transport", "_runtime") for o in spaces if hasattr(o, n)]
found += [type(o).__name__ for o in spaces if hasattr(o, "__dict__")]
found += [n for n in dir(__main__) if n in ("Runtime", "PipeTransport", "_serve", "_FdCapture")]
found
"#,
    )
    .await;
    assert_eq!(result.value, Some(json!([])));
    session.close().await;
}

#[tokio::test]
async fn a_forged_result_for_the_next_run_is_a_violation() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "x = 1").await;
    // Sequential ids made the next run's id `current + 1`: 1+1 then returned 1337.
    let code = format!(
        "{FIND_PROTOCOL}\nfor i in range(1, 50):\n    forge(_message['id'] + i, 1337)\ntime.sleep(1)\n'done'"
    );
    let result = session.run(&code).await.expect("run");
    let error = result.error.expect("a protocol error");
    assert_eq!(error.kind, "ProtocolError", "{}", error.message);
    assert!(
        error.message.contains("not the run in flight"),
        "{}",
        error.message
    );
    assert!(result.state_reset);
    let result = ok(&session, "1+1").await;
    assert_eq!(result.value, Some(json!(2)));
    session.close().await;
}

#[tokio::test]
async fn forged_output_is_bounded_and_output_for_another_run_is_dropped() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "x = 1").await;
    // 4 MiB of `output` for the run in flight, then output claiming to be
    // the next runs' (and a run that never was): the host keeps the newest
    // 64 KiB of the first and none of the rest.
    let code = format!(
        r#"{FIND_PROTOCOL}
def forge_output(run_id, text):
    os.write(_transport._wfd, (json.dumps({{"kind": "output", "id": run_id, "stdout": text}}) + "\n").encode())
for _ in range(64):
    forge_output(_message['id'], 'x' * 65536)
for i in [0] + list(range(1, 20)):
    forge_output(_message['id'] + i if i else 0, 'FORGED')
time.sleep(0.5)
print('real')
x + 1"#
    );
    let result = ok(&session, &code).await;
    assert_eq!(result.value, Some(json!(2)));
    assert_eq!(result.stdout, "real\n", "forged output entered the result");
    let partial = session.host().take_partial_output();
    assert!(
        partial.stdout.len() <= py_code_mode::MAX_PARTIAL_OUTPUT,
        "{} bytes kept",
        partial.stdout.len()
    );
    assert!(
        partial.dropped >= 4 * 1024 * 1024 - 64 * 1024,
        "{} bytes dropped",
        partial.dropped
    );
    assert!(
        !partial.stdout.contains("FORGED"),
        "output for another run was kept"
    );
    assert_eq!(ok(&session, "x").await.value, Some(json!(1)));
    session.close().await;
}

#[tokio::test]
async fn a_result_is_accepted_once_and_a_duplicate_replaces_the_worker() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(&session, "x = 1").await;
    // Agent code answers for its own run, then the runtime answers again.
    let code = format!("{FIND_PROTOCOL}\nforge(_message['id'], 1337)\ntime.sleep(0.3)\n'real'");
    session.run(&code).await.expect("run");
    // The runtime's own result for that run arrives during the next one: a
    // repeated result, so that run fails and the worker is replaced.
    let result = session
        .run("import time\ntime.sleep(3)\n1+1")
        .await
        .expect("run");
    let error = result.error.expect("a protocol error");
    assert_eq!(error.kind, "ProtocolError", "{}", error.message);
    assert!(
        result.state_reset,
        "the worker that sent a duplicate was kept"
    );
    assert_eq!(ok(&session, "1+1").await.value, Some(json!(2)));
    session.close().await;
}

#[tokio::test]
async fn reset_undoes_patched_builtins_and_a_patched_runtime() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(
        &session,
        r#"
import builtins, sys
builtins.sorted = lambda *args, **kwargs: "hijacked"
_f = sys._getframe()
while "runtime" not in _f.f_locals:
    _f = _f.f_back
type(_f.f_locals["runtime"]).execute = lambda self, code: {"value": "hijacked", "repr": "'hijacked'"}
"#,
    )
    .await;
    assert_eq!(ok(&session, "1+1").await.value, Some(json!("hijacked")));
    session.reset().await.expect("reset");
    let result = ok(&session, "sorted([2, 1])").await;
    assert_eq!(result.value, Some(json!([1, 2])));
    session.close().await;
}

#[tokio::test]
async fn a_raising_repr_keeps_the_worker_and_its_variables() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = ok(
        &session,
        "x = 41\nclass Bad:\n    def __repr__(self):\n        raise ValueError('no repr')\nBad()",
    )
    .await;
    assert_eq!(result.value, None);
    let repr = result.repr.expect("a placeholder repr");
    assert!(repr.contains("repr() raised ValueError"), "{repr}");
    let result = ok(&session, "x + 1").await;
    assert_eq!((result.value, result.state_reset), (Some(json!(42)), false));
    session.close().await;
}

#[tokio::test]
async fn values_and_artifacts_nested_300_deep_never_hang() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let started = Instant::now();
    let result = ok(&session, "v = []\nfor _ in range(300):\n    v = [v]\nv").await;
    assert_eq!(result.value, None);
    assert!(result.repr.expect("repr").starts_with("[[[["));
    let result = session
        .run("d = {}\nfor _ in range(300):\n    d = {'a': d}\nartifacts.save('deep', d)")
        .await
        .expect("run");
    let error = result.error.expect("an error");
    assert!(error.message.contains("nested deeper"), "{}", error.message);
    // Tool arguments are walked in the worker and refused with the reason.
    let result = session
        .run("d = []\nfor _ in range(300):\n    d = [d]\ntools.call('x', {'a': d})")
        .await
        .expect("run");
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "ValueError", "{}", error.message);
    assert!(error.message.contains("nested deeper"), "{}", error.message);
    // A call the host cannot parse (too deep for its JSON reader: a search's
    // query is not walked in the worker) is answered with an error, not left
    // to the timeout.
    let result = session.run("tools.search(d)").await.expect("run");
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "TypeError", "{}", error.message);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(ok(&session, "1+1").await.value, Some(json!(2)));
    session.close().await;
}

/// Peak resident memory of this (host) process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_1_gb_value_comes_back_as_a_bounded_repr() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let before = peak_rss_kib();
    let result = ok(&session, "'x' * 10**9").await;
    let after = peak_rss_kib();
    assert_eq!(result.value, None);
    let repr = result.repr.expect("repr");
    assert!(repr.len() < 300_000, "{}", repr.len());
    assert!(
        repr.ends_with("[repr truncated: str of length 1000000000]"),
        "{}",
        &repr[repr.len() - 80..]
    );
    eprintln!("host peak RSS: {before} KiB before, {after} KiB after a 1 GB value");
    assert!(
        after - before < 100 * 1024,
        "the host grew by {} KiB",
        after - before
    );
    // A big but JSON-able value: over 8 MiB, the value is dropped, the repr cut.
    let result = ok(&session, "['y' * 1000] * 20_000").await;
    assert_eq!(result.value, None);
    assert!(result.repr.expect("repr").contains("[repr truncated: "));
    session.close().await;
}

#[tokio::test]
async fn a_400_mib_protocol_line_fails_the_run_not_the_host() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let before = peak_rss_kib();
    let code = format!(
        "{FIND_PROTOCOL}\nchunk = b'{{' * (1 << 20)\nfor _ in range(400):\n    os.write(_transport._wfd, chunk)\n"
    );
    let result = session.run(&code).await.expect("run");
    let after = peak_rss_kib();
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "ProtocolError", "{}", error.message);
    assert!(
        error.message.contains("`MAX_PROTOCOL_LINE`"),
        "{}",
        error.message
    );
    eprintln!("host peak RSS: {before} KiB before, {after} KiB after a 400 MiB line");
    assert!(
        after - before < 200 * 1024,
        "the host grew by {} KiB",
        after - before
    );
    assert_eq!(ok(&session, "1+1").await.value, Some(json!(2)));
    session.close().await;
}

#[tokio::test]
async fn output_after_non_utf8_bytes_keeps_flowing() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    // Invalid UTF-8 on fds 1 and 2, then a child printing 180 KB: it must not
    // block on a pipe nobody reads or die of SIGPIPE.
    let result = ok(
        &session,
        "import os\nos.write(1, b'\\xff\\xfe\\n')\nos.write(2, b'\\xff\\n')\nos.system(\"head -c 180000 /dev/zero | tr '\\\\0' x\")",
    )
    .await;
    assert_eq!(result.value, Some(json!(0)));
    assert_eq!(result.stdout.matches('x').count(), 180_000);
    assert!(result.stdout.starts_with("\u{fffd}\u{fffd}\n"));
    session.close().await;
}

#[tokio::test]
async fn host_calls_in_flight_are_bounded() {
    let library = TempLibrary::new();
    let dir = library.path().join("running");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let log = library.path().join("counts");
    let yaml = format!(
        "name: busy\ntype: cli\ncommand: sh\nargs: ['-c', 'touch {d}/$$; ls {d} | wc -l >> {log}; sleep 0.2; rm {d}/$$']\ntimeout: 30\n",
        d = dir.display(),
        log = log.display()
    );
    let library = library.with_tool("busy.yaml", &yaml);
    let session = session(&library).await;
    ok(
        &session,
        "import asyncio\nasync def many():\n    return await asyncio.gather(*(tools.busy.acall() for _ in range(200)))\nlen(asyncio.run(many()))",
    )
    .await;
    let counts = std::fs::read_to_string(&log).expect("counts");
    let peak = counts
        .lines()
        .filter_map(|l| l.trim().parse::<usize>().ok())
        .max()
        .expect("a count");
    assert_eq!(counts.lines().count(), 200);
    assert!(
        peak <= py_code_mode::MAX_CALLS_IN_FLIGHT,
        "{peak} tool processes at once"
    );
    session.close().await;
}

#[tokio::test]
async fn a_timeout_kills_a_setsid_grandchild_and_the_tool_calls_of_the_run() {
    let library = TempLibrary::new();
    let pids = library.path().join("pids");
    let marker = library.path().join("marker");
    let yaml = format!(
        "name: slow\ntype: cli\ncommand: sh\nargs: ['-c', 'echo $$ > {}; exec sleep 30']\ntimeout: 60\n",
        pids.with_extension("tool").display()
    );
    let library = library.with_tool("slow.yaml", &yaml);
    let session = session(&library).await;
    let code = format!(
        r#"
import subprocess, threading
# A grandchild that leaves the group and outlives its parent, then acts late.
subprocess.run(["setsid", "sh", "-c", "sh -c 'sleep 5; touch {marker}' & echo $! > {pids}"])
threading.Thread(target=lambda: tools.slow(), daemon=True).start()
while True:
    pass
"#,
        pids = pids.display(),
        marker = marker.display()
    );
    let result = session
        .run_with_timeout(&code, Some(Duration::from_secs(2)))
        .await
        .expect("run");
    assert_eq!(result.error.expect("timeout").kind, "TimeoutError");
    let read_pid = |path: &Path| -> i64 {
        std::fs::read_to_string(path)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    };
    let grandchild = read_pid(&pids);
    let tool = read_pid(&pids.with_extension("tool"));
    assert!(
        gone_within(grandchild, Duration::from_secs(5)).await,
        "the setsid grandchild survived"
    );
    assert!(
        gone_within(tool, Duration::from_secs(5)).await,
        "the tool call survived the run"
    );
    assert!(!marker.exists(), "the grandchild acted after the timeout");
    session.close().await;
}

#[tokio::test]
async fn a_cancelled_run_kills_the_worker_and_the_next_run_says_so() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let pid = int(&ok(&session, "import os\nos.getpid()").await);
    let cancelled =
        tokio::time::timeout(Duration::from_millis(500), session.run("while True: pass")).await;
    assert!(cancelled.is_err());
    assert!(
        gone_within(pid, Duration::from_secs(5)).await,
        "the worker survived a cancelled run"
    );
    let result = ok(&session, "1+1").await;
    assert!(result.state_reset);
    session.close().await;
}

#[tokio::test]
async fn a_worker_that_died_while_idle_is_replaced_before_the_next_run() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let pid = int(&ok(&session, "import os\nx = 1\nos.getpid()").await);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    // Dead to the kernel: every thread gone, so the host can see it exited.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| tasks.count() > 1)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone_within(pid, Duration::from_secs(5)).await);
    let result = ok(&session, "1+1").await;
    assert_eq!((result.value, result.state_reset), (Some(json!(2)), true));
    session.close().await;
}

#[tokio::test]
async fn a_huge_timeout_does_not_panic() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = session
        .run_with_timeout("1+1", Some(Duration::MAX))
        .await
        .expect("run");
    assert_eq!(result.value, Some(json!(2)));
    session.close().await;
}

#[tokio::test]
async fn artifacts_over_the_size_limit_are_refused_in_agent_code() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    let result = session
        .run("artifacts.save('big', b'x' * (33 * 1024 * 1024))")
        .await
        .expect("run");
    let error = result.error.expect("an error");
    assert_eq!(error.kind, "ValueError");
    assert!(
        error.message.contains("`MAX_ARTIFACT_BYTES`"),
        "{}",
        error.message
    );
    assert!(!result.state_reset);
    session.close().await;
}

/// A bare worker on pipes, as a host starts it: its pid, its protocol input,
/// and its output lines with `ready` read.
struct BareWorker {
    pid: i64,
    input: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
    _tree: py_code_mode::ProcessTree,
}

impl BareWorker {
    async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let python = py_code_mode_test_support::python().unwrap_or_else(|| "python3".into());
        let (mut child, tree) = py_code_mode::Spawn::new(python)
            .args(["-I", "-c", py_code_mode::RUNTIME_SOURCE])
            .stdin_piped()
            .subreaper()
            .spawn()
            .expect("spawn");
        let pid = i64::from(child.id().expect("pid"));
        let input = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        lines.next_line().await.expect("ready").expect("ready");
        Self {
            pid,
            input: Some(input),
            lines,
            _child: child,
            _tree: tree,
        }
    }

    async fn execute(&mut self, code: &str) {
        use tokio::io::AsyncWriteExt;
        let message = json!({"kind": "execute", "id": 7, "code": code});
        let input = self.input.as_mut().expect("open input");
        input
            .write_all(format!("{message}\n").as_bytes())
            .await
            .expect("write");
    }

    /// Closes the protocol, as a host that died does (the process and its
    /// tree guard stay, so only the end of input can make it exit).
    fn close_input(&mut self) {
        self.input = None;
    }
}

/// The same in the middle of a run that makes no host call (nothing waits on
/// the protocol then, but the worker still watches for its end).
#[tokio::test]
async fn the_worker_exits_when_the_protocol_closes_during_a_run() {
    let mut worker = BareWorker::start().await;
    worker.execute("import time\ntime.sleep(300)").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(worker.pid));
    worker.close_input();
    assert!(
        gone_within(worker.pid, Duration::from_secs(5)).await,
        "the worker outlived its protocol"
    );
}

/// The runtime side of "nothing outlives the host": when its protocol input
/// closes (the host died), the worker kills its descendants and exits.
#[tokio::test]
async fn the_worker_exits_with_its_descendants_when_the_protocol_closes() {
    let mut worker = BareWorker::start().await;
    worker.execute("import subprocess\nint(subprocess.run(['setsid', 'sh', '-c', 'sleep 300 >/dev/null 2>&1 & echo $!'], capture_output=True).stdout)").await;
    let line = worker
        .lines
        .next_line()
        .await
        .expect("read")
        .expect("result");
    let reply: serde_json::Value = serde_json::from_str(&line).expect("json");
    let grandchild = reply["result"]["value"].as_i64().expect("grandchild pid");
    assert!(alive(grandchild));
    worker.close_input();
    assert!(
        gone_within(worker.pid, Duration::from_secs(5)).await,
        "the worker outlived its protocol"
    );
    assert!(
        gone_within(grandchild, Duration::from_secs(5)).await,
        "the setsid grandchild outlived the worker"
    );
}
