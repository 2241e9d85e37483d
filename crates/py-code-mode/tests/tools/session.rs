use std::sync::Arc;

use pretty_assertions::assert_eq;
use py_code_mode::{FileStorage, Session, SubprocessConfig};
use py_code_mode_test_support::servers::{ServerProcess, venv_bin, venv_python};
use serde_json::json;

use crate::common::q;
use crate::http::{api, api_yaml};

/// Agent code calls every kind of tool through a session with the subprocess executor.
#[tokio::test]
async fn agent_code_calls_every_tool_kind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tools = dir.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap_or_else(|e| panic!("{e}"));
    let server = ServerProcess::mcp_test_server("streamable-http");
    let port = api().await;
    let files = [
        ("time.yaml", format!("name: time\ntype: mcp\ntransport: stdio\ncommand: {}\ndescription: Current time in any timezone\ntags: [clock]\n", q(&venv_bin("mcp-server-time")))),
        ("test.yaml", format!("name: test\ntype: mcp\ntransport: streamable-http\nurl: http://127.0.0.1:{}/mcp\ndescription: test server\n", server.port)),
        ("api.yaml", api_yaml(port)),
        ("say.yaml", "name: say\ncommand: echo\ndescription: Print words\nschema:\n  options:\n    n: {type: boolean, description: no newline}\n  positional:\n    - {name: words, type: array, required: true}\nrecipes:\n  plain:\n    description: Words without a newline\n    preset: {n: true}\n    params: {words: {}}\n".to_owned()),
    ];
    for (name, text) in files {
        std::fs::write(tools.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let storage = Arc::new(FileStorage::open(dir.path()).unwrap_or_else(|e| panic!("{e}")));
    let session = Session::builder(storage)
        .executor(SubprocessConfig {
            python: Some(venv_python()),
            ..SubprocessConfig::default()
        })
        .build()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = session
        .run(
            r#"
import asyncio
out = {}
out["time"] = "Europe/Paris" in str(tools.time.get_current_time(timezone="Europe/Paris"))
out["flat"] = "UTC" in str(tools.get_current_time(timezone="UTC"))
out["add"] = tools.test.add(a=1, b=2)
out["echo"] = tools.echo(text="flat mcp")
try:
    tools.test.fail(message="no luck")
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
out["http"] = tools.api.get_item(id="x", query_params={"a": "1"})["query"]
out["recipe"] = tools.say.plain(words=["a", "b"])
out["escape"] = tools.say(words=["c"], n=False)
out["recipes"] = [r.name for r in tools.say.list()]
async def both():
    return await asyncio.gather(tools.test.sleep_ms.acall(ms=300), tools.test.sleep_ms.acall(ms=300))
out["gather"] = asyncio.run(both())
out["found"] = [t.name for t in tools.search("clock time zone")][:1]
out
"#,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(result.error.is_none(), "{}", result.to_text());
    assert_eq!(
        result.value,
        Some(json!({
            "time": true,
            "flat": true,
            "add": {"total": 3, "operands": [1, 2]},
            "echo": "flat mcp",
            "error": "ToolError: tools.call: tool `test.fail` failed: Error executing tool fail: no luck",
            "http": {"a": "1"},
            "recipe": "a b",
            "escape": "c\n",
            "recipes": ["plain"],
            "gather": ["slept 300", "slept 300"],
            "found": ["time"],
        }))
    );
    session.close().await;
}

/// An MCP server's progress and log messages during a call reach agent code
/// on the run's stderr, in order, over stdio and streamable HTTP; a call with
/// nothing to say adds nothing.
#[tokio::test]
async fn what_a_tool_server_says_during_a_call_reaches_the_runs_stderr() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tools = dir.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap_or_else(|e| panic!("{e}"));
    let server = ServerProcess::mcp_test_server("streamable-http");
    let script =
        py_code_mode_test_support::servers::repo_root().join("tests/servers/mcp_test_server.py");
    let files = [
        (
            "local.yaml",
            format!(
                "name: local\ntype: mcp\ntransport: stdio\ncommand: {}\nargs: [{}, stdio]\ndescription: test server\n",
                q(&venv_python()),
                q(&script)
            ),
        ),
        (
            "remote.yaml",
            format!(
                "name: remote\ntype: mcp\ntransport: streamable-http\nurl: http://127.0.0.1:{}/mcp\ndescription: test server\n",
                server.port
            ),
        ),
    ];
    for (name, text) in files {
        std::fs::write(tools.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let storage = Arc::new(FileStorage::open(dir.path()).unwrap_or_else(|e| panic!("{e}")));
    let session = Session::builder(storage)
        .executor(SubprocessConfig {
            python: Some(venv_python()),
            ..SubprocessConfig::default()
        })
        .build()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for server in ["local", "remote"] {
        let result = session
            .run(&format!(
                "print('before', flush=True)\nr = tools.{server}.chatty(steps=2)\ntools.{server}.echo(text='quiet')\nr"
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(result.value, Some(json!("2 steps")), "{result:?}");
        assert_eq!(result.stdout, "before\n");
        let said: Vec<&str> = result.stderr.lines().collect();
        assert_eq!(
            said,
            [
                format!("[tools.{server}] progress 1/2: step 1"),
                format!("[tools.{server}] info: working on step 1"),
                format!("[tools.{server}] progress 2/2: step 2"),
                format!("[tools.{server}] info: working on step 2"),
            ],
            "{server}: {result:?}"
        );
    }
    session.close().await;
}
