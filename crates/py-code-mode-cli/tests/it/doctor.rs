//! `py-code-mode doctor` on healthy and broken setups: the lines, the JSON and
//! the exit codes.

use std::process::Output;

use pretty_assertions::assert_eq;
use py_code_mode_test_support::servers::{free_port, repo_root, venv_python};
use py_code_mode_test_support::{TempLibrary, binary, python};
use serde_json::Value;

fn doctor(library: &TempLibrary, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(binary());
    command
        .arg("--base")
        .arg(library.path())
        .args(args)
        .arg("doctor")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", library.path().join(".hf-cache"));
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    command.output().expect("run py-code-mode doctor")
}

fn doctor_json(library: &TempLibrary, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let out = {
        let mut command = std::process::Command::new(binary());
        command
            .arg("--base")
            .arg(library.path())
            .args(args)
            .args(["doctor", "--json"])
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HUB_CACHE", library.path().join(".hf-cache"));
        if let Some(p) = python() {
            command.env("PY_CODE_MODE_PYTHON", p);
        }
        command.output().expect("run py-code-mode doctor --json")
    };
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), checks)
}

/// `(status, detail)` of the check named `name`.
fn find<'a>(checks: &'a [Value], name: &str) -> (&'a str, &'a str) {
    let check = checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {checks:#?}"));
    (
        check["status"].as_str().unwrap_or_default(),
        check["detail"].as_str().unwrap_or_default(),
    )
}

fn statuses(checks: &[Value]) -> Vec<(String, String)> {
    checks
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap_or_default().to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_healthy_library_passes_and_exits_zero() {
    let library = TempLibrary::new()
        .with_tool(
            "echo.yaml",
            "name: echo\ntype: cli\ncommand: echo\nargs: \"{text}\"\ndescription: Echo text\n",
        )
        .with_skill(
            "greet",
            "\"\"\"Greets.\"\"\"\n\ndef run(name: str) -> str:\n    return name\n",
        );
    let (code, checks) = doctor_json(&library, &["--no-semantic"]);
    assert_eq!(
        statuses(&checks),
        [
            ("python", "ok"),
            ("library", "ok"),
            ("contents", "ok"),
            ("tool echo.yaml", "ok"),
            ("embedding model", "ok"),
            ("executor", "ok"),
            ("deps", "ok"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(
        find(&checks, "contents").1,
        "1 tools, 1 skills, 0 artifacts"
    );
    assert_eq!(code, Some(0));
    // Every entry has the four fields.
    for check in &checks {
        let keys: Vec<&str> = check
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["check", "status", "detail", "hint"]);
    }
}

#[test]
fn a_missing_model_while_offline_only_warns() {
    let library = TempLibrary::new();
    let (code, checks) = doctor_json(&library, &[]);
    let (status, detail) = find(&checks, "embedding model");
    assert_eq!(status, "warn");
    assert!(
        detail.contains("not cached and downloads are off"),
        "{detail}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn broken_yaml_a_broken_skill_and_a_down_mcp_server_fail_by_name() {
    let down = free_port();
    let library = TempLibrary::new()
        .with_tool("bad.yaml", "name: bad\ntype: cli\n  command: [unclosed\n")
        .with_tool(
            "down.yaml",
            &format!(
                "name: down\ntype: mcp\ntransport: streamable-http\nurl: http://127.0.0.1:{down}/mcp\ndescription: a server that is not running\n"
            ),
        )
        .with_tool(
            "up.yaml",
            &format!(
                "name: up\ntype: mcp\ntransport: stdio\ncommand: {}\nargs: [{}, stdio]\ndescription: test server\n",
                venv_python().display(),
                repo_root().join("tests/servers/mcp_test_server.py").display()
            ),
        )
        .with_skill("broken", "def run(:\n    pass\n");
    let out = doctor(&library, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
            .to_owned()
    };
    assert!(line("FAIL  tool bad.yaml").contains("bad.yaml"), "{stdout}");
    let down_line = line("FAIL  tool down.yaml");
    assert!(
        down_line.contains("cannot connect to the MCP server")
            || down_line.contains("did not answer within 5s"),
        "{stdout}"
    );
    assert!(
        line("ok    tool up.yaml").contains("MCP server answered"),
        "{stdout}"
    );
    line("FAIL  skill broken");
    assert!(stdout.contains("hint: fix the YAML"), "{stdout}");
    // A missing model offline is only a warning; the failures decide the exit.
    line("warn  embedding model");
    assert_eq!(out.status.code(), Some(1), "{stdout}");
}

#[test]
fn redis_unreachable_fails_the_library_with_a_hint() {
    let library = TempLibrary::new();
    let url = format!("redis://127.0.0.1:{}", free_port());
    let (code, checks) = doctor_json(&library, &["--no-semantic", "--redis", &url]);
    let library_check = checks
        .iter()
        .find(|c| c["check"] == "library")
        .expect("a library check");
    assert_eq!(library_check["status"], "fail");
    assert!(
        library_check["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&url)),
        "{library_check}"
    );
    assert!(
        library_check["hint"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{library_check}"
    );
    // The rest is still checked.
    assert_eq!(find(&checks, "executor").0, "ok");
    assert_eq!(code, Some(1));
}

#[test]
fn a_model_directory_that_loads_is_ok_and_a_broken_one_fails() {
    let library = TempLibrary::new();
    let model = std::env::var("PY_CODE_MODE_TEST_MODEL_DIR")
        .expect("PY_CODE_MODE_TEST_MODEL_DIR names the test model (scripts/test sets it)");
    let (code, checks) = doctor_json(&library, &["--embedding-model", &model]);
    let (status, detail) = find(&checks, "embedding model");
    assert_eq!((status, code), ("ok", Some(0)), "{detail}");
    assert!(detail.ends_with("loads (384 dimensions)"), "{detail}");

    // A directory the user named that holds no model: configured, so it fails.
    let empty = library.path().join("no-model");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (code, checks) = doctor_json(
        &library,
        &["--embedding-model", empty.to_str().expect("utf-8 path")],
    );
    assert_eq!(find(&checks, "embedding model").0, "fail");
    assert_eq!(code, Some(1));
}

#[test]
fn a_reachable_redis_library_is_counted() {
    let redis = py_code_mode_test_support::RedisServer::start();
    let library = TempLibrary::new();
    let (code, checks) = doctor_json(&library, &["--no-semantic", "--redis", &redis.url()]);
    let (status, detail) = find(&checks, "library");
    assert_eq!(status, "ok", "{detail}");
    assert_eq!(
        detail,
        format!("Redis at `{}`, prefix `py-code-mode`", redis.url())
    );
    assert_eq!(
        find(&checks, "contents").1,
        "0 tools, 0 skills, 0 artifacts"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn http_servers_are_reached_and_missing_programs_only_warn() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = listener.local_addr().expect("addr").port();
    let down = free_port();
    let http = |name: &str, port: u16| {
        format!(
            "name: {name}\ntype: http\nbase_url: http://127.0.0.1:{port}/api\ndescription: an API\nendpoints:\n  - name: get\n    method: GET\n    path: /x\n    description: get x\n"
        )
    };
    let library = TempLibrary::new()
        .with_tool("api_up.yaml", &http("api_up", up))
        .with_tool("api_down.yaml", &http("api_down", down))
        .with_tool(
            "gone.yaml",
            "name: gone\ntype: cli\ncommand: no-such-program-py-code-mode\nargs: \"{x}\"\ndescription: missing\n",
        );
    let (code, checks) = doctor_json(&library, &["--no-semantic"]);
    let (status, detail) = find(&checks, "tool api_up.yaml");
    assert_eq!(status, "ok", "{detail}");
    assert_eq!(
        detail,
        format!("HTTP server at `127.0.0.1:{up}` accepts connections")
    );
    assert_eq!(find(&checks, "tool api_down.yaml").0, "fail");
    assert_eq!(
        find(&checks, "tool gone.yaml"),
        (
            "warn",
            "command `no-such-program-py-code-mode` is not on PATH"
        )
    );
    assert_eq!(code, Some(1));
}

#[test]
fn an_interpreter_older_than_3_10_fails() {
    let library = TempLibrary::new();
    // A stand-in interpreter: names itself when asked, and claims to be 3.9.
    let fake = library.path().join("python3.9");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$3\" in\n  *executable*) echo \"$0\" ;;\n  *version_info*) echo 3.9.18 ;;\nesac\n",
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (code, checks) = doctor_json(
        &library,
        &[
            "--no-semantic",
            "--python",
            fake.to_str().expect("utf-8 path"),
        ],
    );
    let (status, detail) = find(&checks, "python");
    assert_eq!(status, "fail");
    assert!(detail.ends_with("(Python 3.9.18)"), "{detail}");
    assert_eq!(code, Some(1));
}

/// A skill saved against `echo(text)`, then the tool's parameter renamed:
/// `doctor` lists the skill as stale with the reason (JSON and text), and a
/// warning alone still exits zero.
#[test]
fn a_skill_whose_tool_changed_is_listed_as_stale_with_the_reason() {
    let tool = |param: &str| {
        format!(
            "name: echo\ntype: cli\ncommand: echo\nargs: \"{{{param}}}\"\ndescription: Echo text\n"
        )
    };
    let library = TempLibrary::new().with_tool("echo.yaml", &tool("text"));
    let mut command = std::process::Command::new(binary());
    command
        .arg("--base")
        .arg(library.path())
        .args(["--no-semantic", "run", "-c"])
        .arg("skills.create('shout', 'def run(text: str):\\n    return tools.echo(text=text)')")
        .env("HF_HUB_OFFLINE", "1");
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    let saved = command.output().expect("run py-code-mode run");
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let (code, checks) = doctor_json(&library, &["--no-semantic"]);
    assert!(
        !checks.iter().any(|c| c["check"] == "skill shout"),
        "fresh: {checks:#?}"
    );
    assert_eq!(code, Some(0));

    std::fs::write(library.path().join("tools/echo.yaml"), tool("words")).expect("rename");
    let (code, checks) = doctor_json(&library, &["--no-semantic"]);
    assert_eq!(
        find(&checks, "skill shout"),
        (
            "warn",
            "stale: tool `echo` changed: `echo(text?: string)` is now `echo(words?: string)`"
        )
    );
    assert_eq!(code, Some(0), "a stale skill is a warning");
    let out = doctor(&library, &["--no-semantic"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("skill shout"))
        .unwrap_or_else(|| panic!("no line for the skill in:\n{text}"));
    assert!(
        line.starts_with("warn") && line.contains("stale: tool `echo` changed"),
        "{line}"
    );
    assert!(
        text.contains("hint: run `py-code-mode skills test shout`"),
        "{text}"
    );
}
