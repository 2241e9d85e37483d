//! CLI tools under the spawn policy: their environment, and no process left
//! behind when a call is dropped or times out.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode::ENV_ALLOWLIST;
use serde_json::json;

use crate::common::{GONE_WITHIN, alive, args, pids_running, tool, wait_until};

/// A tool whose program starts a grandchild and waits for it: the shape of a
/// scanner or a build that forks workers.
fn forking_tool(seconds: &str, timeout: u32) -> std::sync::Arc<dyn py_code_mode::ToolAdapter> {
    tool(&format!(
        "name: forks\ncommand: sh\nargs: ['-c', 'sleep {seconds} & wait']\ntimeout: {timeout}\n"
    ))
}

/// Agent code's run timed out, the session closed, a client cancelled: the
/// call's future is dropped mid-run, and its whole process tree dies with it.
#[tokio::test]
async fn dropping_a_call_kills_the_tool_and_its_children() {
    let seconds = format!("3000.{}", std::process::id());
    let forks = forking_tool(&seconds, 600);
    let call = forks.call(None, args(&json!({})));
    let sleep_argv = ["sleep", seconds.as_str()];
    let sleeper = tokio::select! {
        result = call => panic!("the call ended early: {result:?}"),
        pid = async {
            let deadline = Instant::now() + GONE_WITHIN;
            loop {
                if let [pid] = pids_running(&sleep_argv)[..] {
                    break pid;
                }
                assert!(Instant::now() < deadline, "the tool never started its `sleep`");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => pid,
    };
    // The `select!` dropped the call's future when the sleeper was found.
    wait_until("the tool's grandchild `sleep` is killed", || {
        !alive(sleeper)
    })
    .await;
    assert_eq!(pids_running(&sleep_argv), Vec::<i32>::new());
}

#[tokio::test]
async fn a_timeout_kills_the_tool_and_its_children() {
    let seconds = format!("3001.{}", std::process::id());
    let forks = forking_tool(&seconds, 1);
    let error = forks
        .call(None, args(&json!({})))
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("tool `forks` timed out after 1s and was stopped")
    );
    let sleep_argv = ["sleep", seconds.as_str()];
    wait_until("the tool's grandchild `sleep` is killed", || {
        pids_running(&sleep_argv).is_empty()
    })
    .await;
}

/// The environment is the allow-list plus the tool's own `env:`, with
/// `${VAR}` read from the host; stdin is `/dev/null`.
#[tokio::test]
async fn a_tool_gets_the_allow_list_plus_its_own_env() {
    let env = tool(
        "name: env\ncommand: sh\nargs: ['-c', 'env; cat']\nenv:\n  GREETING: \"hi from ${HOME}\"\n  PLAIN: x\n",
    );
    let output = env
        .call(None, args(&json!({})))
        .await
        .map_err(|e| e.to_string());
    let output = output.as_ref().map(|v| v.as_str().unwrap_or_default());
    let text = output.unwrap_or_else(|e| panic!("{e}"));
    let home = std::env::var("HOME").unwrap_or_default();
    let mut names: Vec<&str> = Vec::new();
    for line in text.lines() {
        let name = line.split('=').next().unwrap_or_default();
        // `sh` itself sets a few (`PWD`, `SHLVL`, `_`).
        if !["PWD", "SHLVL", "_", "OLDPWD"].contains(&name) {
            names.push(name);
        }
    }
    for name in &names {
        assert!(
            ENV_ALLOWLIST.contains(name) || ["GREETING", "PLAIN"].contains(name),
            "unexpected variable `{name}` in:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("GREETING=hi from {home}\n")),
        "{text}"
    );
    assert!(text.contains("PLAIN=x\n"), "{text}");
    let missing = tool("name: m\ncommand: true\nenv: {K: \"${PY_CODE_MODE_SURELY_UNSET_VAR}\"}\n");
    let error = missing
        .call(None, args(&json!({})))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("`PY_CODE_MODE_SURELY_UNSET_VAR` is not set")),
        "{error:?}"
    );
}
