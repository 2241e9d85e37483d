//! The subcommands a person uses by hand: `artifacts`, `skills show|add|rm`,
//! `tools call`; plain text on a pipe, JSON with `--json`.

use std::io::Write as _;
use std::process::{Output, Stdio};

use pretty_assertions::assert_eq;
use py_code_mode_test_support::{TempLibrary, binary, python};
use serde_json::{Value, json};

fn cli(library: &TempLibrary, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = std::process::Command::new(binary());
    command
        .arg("--base")
        .arg(library.path())
        .arg("--no-semantic")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    let mut child = command.spawn().expect("spawn py-code-mode");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("run py-code-mode")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn artifacts_are_saved_listed_shown_and_removed() {
    let library = TempLibrary::new();
    library.write("data.json", "{\"hosts\": [1, 2]}");
    let file = library.path().join("data.json");
    let out = cli(
        &library,
        &[
            "artifacts",
            "save",
            "scan.json",
            file.to_str().expect("utf-8 path"),
            "--description",
            "scan results",
        ],
        None,
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (
            Some(0),
            "saved artifact `scan.json` (15 bytes)\n".to_owned()
        )
    );
    let out = cli(
        &library,
        &["artifacts", "save", "notes", "-"],
        Some(b"hello\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let listed = text(&cli(&library, &["artifacts", "list"], None).stdout);
    let mut lines = listed.lines();
    assert_eq!(
        lines.next(),
        Some("NAME       TYPE  SIZE  UPDATED           DESCRIPTION")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][..3], ["notes", "text", "6"]);
    assert_eq!(rows[1][..3], ["scan.json", "json", "15"]);
    assert_eq!(rows[1][5..], ["scan", "results"]);

    let listed: Value =
        serde_json::from_slice(&cli(&library, &["artifacts", "list", "--json"], None).stdout)
            .expect("json");
    assert_eq!(listed[1]["name"], "scan.json");
    assert_eq!(listed[1]["description"], "scan results");

    let shown = cli(
        &library,
        &["artifacts", "show", "scan.json", "--json"],
        None,
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&shown.stdout).expect("json"),
        json!({"type": "json", "value": {"hosts": [1, 2]}})
    );
    assert_eq!(
        text(&cli(&library, &["artifacts", "show", "notes"], None).stdout),
        "hello\n"
    );

    let out = cli(&library, &["artifacts", "rm", "notes"], None);
    assert_eq!(text(&out.stdout), "removed artifact `notes`\n");
    let out = cli(&library, &["artifacts", "rm", "notes"], None);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (
            Some(1),
            "error: no artifact `notes`\nhint: `py-code-mode artifacts list`\n".to_owned()
        )
    );
}

#[test]
fn skills_are_added_shown_and_removed_and_listing_stays_json() {
    let library = TempLibrary::new();
    let source =
        "\"\"\"Add two numbers.\"\"\"\n\ndef run(a: int, b: int = 2) -> int:\n    return a + b\n";
    let out = cli(
        &library,
        &["skills", "add", "add", "-"],
        Some(source.as_bytes()),
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "added skill `add`\n".to_owned())
    );
    let shown = text(&cli(&library, &["skills", "show", "add"], None).stdout);
    assert!(
        shown.starts_with("add(a: int, b: int = 2)\n  Add two numbers.\n"),
        "{shown}"
    );
    assert!(shown.ends_with(source), "{shown}");
    let listed: Value =
        serde_json::from_slice(&cli(&library, &["skills", "list"], None).stdout).expect("json");
    assert_eq!(listed[0]["name"], "add");
    let ran = cli(&library, &["run", "-c", "skills.add(a=40)"], None);
    assert_eq!(text(&ran.stdout), "42\n");
    let out = cli(&library, &["skills", "rm", "add"], None);
    assert_eq!(text(&out.stdout), "removed skill `add`\n");
    let listed = text(&cli(&library, &["skills", "list"], None).stdout);
    assert_eq!(listed, "[]\n");
}

#[test]
fn tools_are_called_with_key_value_arguments() {
    let library = TempLibrary::new().with_tool(
        "echo.yaml",
        "name: echo\ntype: cli\ncommand: echo\nargs: \"{text}\"\ndescription: Echo text\n",
    );
    let out = cli(
        &library,
        &["tools", "call", "echo", "text=hello there"],
        None,
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "hello there\n".to_owned())
    );
    let out = cli(
        &library,
        &["tools", "call", "echo", "text=7", "--json"],
        None,
    );
    assert_eq!(text(&out.stdout), "\"7\\n\"\n");
    let out = cli(&library, &["tools", "call", "echo", "oops"], None);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (
            Some(1),
            "error: `oops` is not `key=value`\nhint: `py-code-mode tools call echo key=value`\n"
                .to_owned()
        )
    );
}
