//! The real binary, as a person runs it: exit codes, stdout and stderr.

use std::process::Output;

use pretty_assertions::assert_eq;
use py_code_mode_test_support::{TempLibrary, binary, python};

/// Runs the binary on `library`. Never touches the network: the Hugging Face
/// hub is offline and its cache an empty folder, so a test that wants a model
/// names the test model's directory.
fn py_code_mode(library: &TempLibrary, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(binary());
    command
        .arg("--base")
        .arg(library.path())
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", library.path().join(".hf-cache"));
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

/// A server holds a few descriptors per session: started under a low soft
/// limit, the host raises it to the hard one (a subprocess worker inherits
/// it, which is how the test sees it).
#[test]
fn the_host_raises_its_open_files_limit_to_the_hard_one() {
    let library = TempLibrary::new();
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", r#"ulimit -Sn 256 && exec "$0" "$@""#])
        .arg(binary())
        .arg("--base")
        .arg(library.path())
        .args([
            "--no-semantic",
            "run",
            "-c",
            "import resource; resource.getrlimit(resource.RLIMIT_NOFILE)",
        ])
        .env("PY_CODE_MODE_EXECUTOR", "subprocess");
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    let out = command.output().expect("run py-code-mode");
    let hard = std::process::Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .expect("ulimit");
    let hard = text(&hard.stdout).trim().to_owned();
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), format!("({hard}, {hard})\n")),
        "{}",
        text(&out.stderr)
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
        &[
            "tools",
            "search",
            "count words",
            "--limit",
            "1",
            "--no-semantic",
        ],
    );
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hits[0]["name"], "word_count");
    assert_eq!(hits[0]["mode"], "lexical");
    assert_eq!(hits.as_array().map(Vec::len), Some(1));
}

/// The real all-MiniLM-L6-v2 directory `scripts/test` exports.
fn test_model() -> String {
    std::env::var("PY_CODE_MODE_TEST_MODEL_DIR").expect(
        "PY_CODE_MODE_TEST_MODEL_DIR names the test model \
         (scripts/test sets it; see scripts/find-test-model.sh)",
    )
}

fn skill(description: &str) -> String {
    format!("\"\"\"{description}\"\"\"\n\ndef run(target: str):\n    return target\n")
}

#[test]
fn index_prebuilds_the_cache_and_drops_stale_vectors() {
    let library = TempLibrary::new()
        .with_skill(
            "port_scan",
            &skill("Discover hosts, open ports and running services"),
        )
        .with_skill(
            "fetch_page",
            &skill("Download a URL and return its content as markdown"),
        )
        .with_skill(
            "mail",
            &skill("Send a message by SMTP to a recipient address"),
        );
    let model = test_model();
    let index = |library: &TempLibrary| {
        let out = py_code_mode(library, &["index", "--embedding-model", &model]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert!(index(&library).contains("indexed 3 docs"), "first run");
    assert!(
        index(&library).contains("0 embedded, 3 cached, 0 stale removed"),
        "a second run embeds nothing"
    );

    // A paraphrase with no word in common is found, ranked by the model.
    let out = py_code_mode(
        &library,
        &[
            "skills",
            "search",
            "which services is a machine exposing",
            "--embedding-model",
            &model,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hits[0]["name"], "port_scan");
    assert_eq!(hits[0]["mode"], "hybrid");

    std::fs::remove_file(library.path().join("skills/mail.py")).expect("delete skill");
    assert!(
        index(&library).contains("indexed 2 docs") && index(&library).contains("0 stale removed"),
        "the deleted skill's vector goes on the first run, nothing on the next"
    );
}

#[test]
fn a_broken_model_directory_is_named_and_search_stays_lexical() {
    let library = TempLibrary::new().with_skill("mail", &skill("Send an email to someone"));
    let broken = library.path().join("broken-model");
    std::fs::create_dir(&broken).expect("mkdir");
    let broken = broken.display().to_string();

    let out = py_code_mode(&library, &["index", "--embedding-model", &broken]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&broken), "names the directory: {stderr}");

    let out = py_code_mode(
        &library,
        &[
            "skills",
            "search",
            "send email",
            "--embedding-model",
            &broken,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hits[0]["name"], "mail");
    assert_eq!(hits[0]["mode"], "lexical");
    assert!(
        text(&out.stderr).contains("search stays lexical"),
        "says so in the log: {}",
        text(&out.stderr)
    );
}

/// `--embedding-model ORG/NAME` fetches a model the cache lacks (from a
/// stand-in hub: this machine has no route to the real one), and
/// `HF_HUB_OFFLINE=1` forbids it, leaving search lexical.
#[test]
fn a_hub_model_is_downloaded_unless_offline() {
    let hub = py_code_mode_test_support::FakeHub::serve("test-org/minilm", test_model().as_ref());
    let cache = tempfile::tempdir().expect("tempdir");
    let library = TempLibrary::new()
        .with_skill(
            "port_scan",
            &skill("Discover hosts, open ports and running services"),
        )
        .with_skill(
            "mail",
            &skill("Send a message by SMTP to a recipient address"),
        );
    let search = |offline: &str| {
        let mut command = std::process::Command::new(binary());
        command
            .arg("--base")
            .arg(library.path())
            .args(["skills", "search", "which services is a machine exposing"])
            .args(["--embedding-model", "test-org/minilm"])
            .env("HF_ENDPOINT", hub.endpoint())
            .env("HF_HUB_CACHE", cache.path())
            .env("HF_HUB_OFFLINE", offline);
        let out = command.output().expect("run py-code-mode");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let hits: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (hits, text(&out.stderr))
    };

    let (hits, stderr) = search("1");
    assert_eq!(hits[0]["mode"], "lexical", "offline: nothing fetched");
    assert!(
        stderr.contains("test-org/minilm"),
        "names the model: {stderr}"
    );
    assert_eq!(hub.requests(), 0);

    let (hits, _) = search("0");
    assert_eq!(hits[0]["name"], "port_scan");
    assert_eq!(hits[0]["mode"], "hybrid");
    assert!(hub.requests() > 0);
    assert!(
        cache.path().join("models--test-org--minilm").is_dir(),
        "downloaded into the cache"
    );
}

/// Out-of-range numbers are usage errors (exit 2) naming the option, never a
/// panic in `Duration::from_secs_f64` or an unbounded search.
#[test]
fn out_of_range_numbers_are_usage_errors() {
    let library = TempLibrary::new();
    for (args, message) in [
        (
            &["--timeout", "1e20", "run", "-c", "1"][..],
            "`--timeout` must be a number of seconds above 0 and at most 86400, not 100000000000000000000",
        ),
        (
            &["--timeout", "NaN", "run", "-c", "1"][..],
            "`--timeout` must be",
        ),
        (
            &["--timeout", "-1", "run", "-c", "1"][..],
            "`--timeout` must be",
        ),
        (
            &["tools", "search", "x", "--limit", "0"][..],
            "`--limit` must be between 1 and 1000, not 0",
        ),
        (
            &["--memory", "1q", "run", "-c", "1"][..],
            "`--memory` must be a size",
        ),
        (
            &["--cpus", "NaN", "run", "-c", "1"][..],
            "`--cpus` must be above 0",
        ),
        (
            &["--pids-limit", "0", "run", "-c", "1"][..],
            "`--pids-limit` must be between",
        ),
    ] {
        let out = py_code_mode(&library, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = py_code_mode(&library, &["--timeout", "86400", "run", "-c", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn limits_the_executor_cannot_enforce_are_refused_not_ignored() {
    let library = TempLibrary::new();
    for option in [&["--memory", "1g"][..], &["--allow-network"][..]] {
        let mut args = vec!["--executor", "subprocess"];
        args.extend_from_slice(option);
        args.extend_from_slice(&["run", "-c", "1"]);
        let out = py_code_mode(&library, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "`{}` is not enforced by `--executor subprocess`",
                option[0]
            )),
            "{stderr}"
        );
    }
}

#[test]
fn container_options_are_refused_by_the_other_executors() {
    let library = TempLibrary::new();
    for executor in ["subprocess", "sandbox"] {
        let args = ["--executor", executor, "--image", "x", "run", "-c", "1"];
        let out = py_code_mode(&library, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("`--image` is an option of `--executor container`"),
            "{stderr}"
        );
    }
}

#[test]
fn skills_test_replays_recorded_cases_and_exits_one_when_a_case_fails() {
    let library = TempLibrary::new().with_tool(
        "echo.yaml",
        "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n",
    );
    let record = "skills.create('shout', 'def run(text: str):\\n    return tools.echo(text=text).strip().upper()')\nskills.record('shout', 'hi', text='hi')";
    let out = py_code_mode(&library, &["run", "-c", record]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "'HI'\n".to_owned()),
        "{}",
        text(&out.stderr)
    );
    let out = py_code_mode(&library, &["skills", "test"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "ok   shout/hi\n1 passed, 0 failed\n".to_owned()),
        "{}",
        text(&out.stderr)
    );
    let change = "skills.create('shout', 'def run(text: str):\\n    return tools.echo(text=text + \"!\").strip().upper()')";
    let out = py_code_mode(&library, &["run", "-c", change]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = py_code_mode(&library, &["skills", "test", "shout"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("FAIL shout/hi\n     call 1: expected `tools.echo(text=\"hi\")`, got `tools.echo(text=\"hi!\")`\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
    let history = py_code_mode(&library, &["skills", "history", "shout"]);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).expect("json");
    assert_eq!(history[0]["version"], 2);
    assert_eq!(history[1]["version"], 1);
}
