//! The real binary, as a person runs it: exit codes, stdout and stderr.

use std::process::Output;

use pretty_assertions::assert_eq;
use py_code_mode_test_support::{TempLibrary, binary, python};

fn py_code_mode(library: &TempLibrary, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(binary());
    command.arg("--base").arg(library.path()).args(args);
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    command.output().expect("run py-code-mode")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_prints_output_and_value_and_exits_zero() {
    let library = TempLibrary::new();
    let out = py_code_mode(&library, &["run", "-c", "print('hi')\n6 * 7"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "hi\n42\n".to_owned())
    );
}

#[test]
fn run_exits_one_on_an_exception_and_prints_the_traceback() {
    let library = TempLibrary::new();
    let out = py_code_mode(&library, &["run", "-c", "{}['k']"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    // Caret lines under the source vary between Python versions; the rest does not.
    assert!(
        stdout.starts_with("Traceback (most recent call last):\n  File \"<cell 1>\", line 1, in <module>\n    {}['k']\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("\nKeyError: 'k'\n"), "{stdout}");
}

#[test]
fn run_json_gives_the_whole_result() {
    let library = TempLibrary::new();
    let out = py_code_mode(&library, &["run", "--json", "-c", "[1, 'a']"]);
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(result["value"], serde_json::json!([1, "a"]));
    assert_eq!(result["repr"], "[1, 'a']");
    assert_eq!(result["state_reset"], false);
}

#[test]
fn nothing_to_run_is_a_clear_error_with_a_hint() {
    let library = TempLibrary::new();
    let out = py_code_mode(&library, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: nothing to run\nhint: `py-code-mode run -c 'tools.list()'` or `py-code-mode run script.py`\n"
    );
}

#[test]
fn a_missing_interpreter_names_it_and_hints_at_the_fix() {
    let library = TempLibrary::new();
    let out = std::process::Command::new(binary())
        .arg("--base")
        .arg(library.path())
        .args(["--python", "/nonexistent/python3", "run", "-c", "1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`/nonexistent/python3`"), "{stderr}");
    assert!(stderr.contains("hint: pass `--python"), "{stderr}");
}

#[test]
fn tools_search_ranks_the_bundled_examples() {
    let library = TempLibrary::new()
        .with_tool("wc.yaml", "name: word_count\ntype: cli\ncommand: wc\nargs: '{path}'\ndescription: Count lines, words and bytes of a file\n")
        .with_tool("ls.yaml", "name: list_files\ntype: cli\ncommand: ls\nargs: '{path}'\ndescription: List the files in a directory\n");
    let out = py_code_mode(
        &library,
        &["tools", "search", "count words", "--limit", "1"],
    );
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hits[0]["name"], "word_count");
    assert_eq!(hits.as_array().map(Vec::len), Some(1));
}
