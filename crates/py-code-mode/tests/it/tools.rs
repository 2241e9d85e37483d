//! CLI tools from YAML: loading, calling, safety.

use pretty_assertions::assert_eq;
use std::time::{Duration, Instant};

use py_code_mode::{ENV_ALLOWLIST, FileStorage, ToolRegistry};
use py_code_mode_test_support::TempLibrary;
use py_code_mode_test_support::servers::repo_root;
use serde_json::json;

use crate::{ok, session};

#[tokio::test]
async fn seed_form_tools_are_called_by_keyword_and_by_name() {
    let library = TempLibrary::new().with_tool(
        "echo.yaml",
        "name: echo\ntype: cli\nargs: '{flags} {text}'\ndescription: print text\ntimeout: 5\n",
    );
    let session = session(&library).await;
    let result = ok(&session, "tools.echo(text='hello', flags='-n')").await;
    assert_eq!(result.value, Some(json!("hello")));
    // A value is one argument, spaces and all.
    let result = ok(&session, "tools.call('echo', {'text': 'a  b'})").await;
    assert_eq!(result.value, Some(json!("a  b\n")));
    let result = ok(
        &session,
        "[t['name'] for t in tools.list()], [t['name'] for t in tools.search('print text')]",
    )
    .await;
    assert_eq!(result.value, Some(json!([["echo"], ["echo"]])));
    session.close().await;
}

#[tokio::test]
async fn a_value_can_never_inject_a_command() {
    let library = TempLibrary::new().with_tool(
        "cat.yaml",
        "name: cat\ntype: cli\ncommand: cat\nargs: '{path}'\n",
    );
    let pwned = library.path().join("pwned");
    let session = session(&library).await;
    for attack in [
        format!("x; touch {}", pwned.display()),
        format!("$(touch {})", pwned.display()),
        format!("`touch {}`", pwned.display()),
        format!("x && touch {} | cat", pwned.display()),
    ] {
        let result = session
            .run(&format!("tools.cat(path={attack:?})"))
            .await
            .expect("run");
        // `cat` was asked for one file with that whole name.
        let message = result.error.map(|e| e.message).unwrap_or_default();
        assert!(
            message.contains(&attack) && message.contains("No such file"),
            "{message}"
        );
    }
    assert!(!pwned.exists(), "a tool argument reached a shell");
    session.close().await;
}

/// The attack on `examples/base`'s `word_count` (`wc`, whose
/// `--files0-from=F` reads file names from F): a value that becomes an option
/// reads the tool's environment back. Values stay values, and the environment
/// a tool gets is the allow-list, so even the `{flags}` slot, which does take
/// options, shows no variable of the host.
#[tokio::test]
async fn a_value_never_becomes_an_option_and_no_host_secret_reaches_a_tool() {
    let yaml = std::fs::read_to_string(repo_root().join("examples/base/tools/word_count.yaml"))
        .expect("read word_count.yaml");
    let library = TempLibrary::new()
        .with_tool("word_count.yaml", &yaml)
        .with_tool("wc.yaml", "name: wc\ncommand: wc\nargs: '{flags}'\n");
    // The host's own variables outside the allow-list stand for its secrets:
    // cargo and the test harness always set some (`CARGO_MANIFEST_DIR`).
    let secrets: Vec<String> = std::env::vars()
        .filter(|(k, v)| !ENV_ALLOWLIST.contains(&k.as_str()) && v.len() >= 4)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert!(
        secrets.iter().any(|s| s.starts_with("CARGO_MANIFEST_DIR=")),
        "the test needs a host variable outside the allow-list"
    );
    let session = session(&library).await;
    let text_of = |code: &'static str| {
        let session = &session;
        async move {
            let result = session.run(code).await.expect("run");
            format!("{}{}", result.to_text(), result.stdout)
        }
    };
    // In a value slot: one word after `--`, so `wc` looks for a file of that name.
    let value = text_of("tools.word_count(path='--files0-from=/proc/self/environ')").await;
    assert!(
        value.contains("--files0-from=/proc/self/environ") && value.contains("No such file"),
        "{value}"
    );
    // `word_count` requires a `path`, which `wc` refuses next to
    // `--files0-from`; a tool with only `{flags}` lets the option run, and
    // `wc` reads its own environment back.
    let flags = text_of("tools.wc(flags='--files0-from=/proc/self/environ')").await;
    assert!(flags.contains("PATH="), "the attack did not run: {flags}");
    for text in [&value, &flags] {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "`{secret}` leaked: {text}");
        }
    }
    session.close().await;
}

#[tokio::test]
async fn tool_errors_reach_agent_code_as_exceptions() {
    let library = TempLibrary::new()
        .with_tool(
            "fail.yaml",
            "name: fail\ntype: cli\ncommand: sh\nargs: ['-c', 'echo broken >&2; exit 3']\n",
        )
        .with_tool(
            "slow.yaml",
            "name: slow\ntype: cli\ncommand: sleep\nargs: '{secs}'\ntimeout: 0.3\n",
        )
        .with_tool(
            "ghost.yaml",
            "name: ghost\ntype: cli\ncommand: /nonexistent/ghost\n",
        );
    let session = session(&library).await;
    let kind_and_message = |code: &'static str| {
        let session = &session;
        async move {
            let error = session
                .run(code)
                .await
                .expect("run")
                .error
                .expect("an error");
            (error.kind, error.message)
        }
    };
    let (kind, message) = kind_and_message("tools.fail()").await;
    assert_eq!(kind, "ToolError");
    assert!(
        message.contains("exited with exit status: 3") && message.contains("broken"),
        "{message}"
    );
    let (kind, message) = kind_and_message("tools.slow(secs='5')").await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "ToolError",
            "tools.call: tool `slow` timed out after 0.3s and was stopped"
        )
    );
    let (kind, message) = kind_and_message("tools.ghost()").await;
    assert_eq!(kind, "ToolError");
    assert!(
        message.contains("could not start `/nonexistent/ghost`"),
        "{message}"
    );
    let (kind, _) = kind_and_message("tools.nope()").await;
    assert_eq!(kind, "ToolNotFoundError");
    let (kind, message) = kind_and_message("tools.slow(seconds=1)").await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "TypeError",
            "tools.call: tool `slow`: unexpected argument `seconds` (accepted: secs)"
        )
    );
    session.close().await;
}

#[tokio::test]
async fn a_malformed_definition_names_its_file_and_line_and_others_still_load() {
    let library = TempLibrary::new()
        .with_tool("good.yaml", "name: good\ntype: cli\ncommand: true\n")
        .with_tool(
            "bad.yaml",
            "name: bad\ntype: cli\nargs: [unclosed\ndescription: x\n",
        )
        .with_tool(
            "typo.yaml",
            "name: typo\ntype: cli\ncommand: true\ntimout: 5\n",
        );
    let session = session(&library).await;
    let errors: Vec<String> = session
        .host()
        .tools()
        .load_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("bad.yaml`") && errors[0].contains(" line "),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("typo.yaml` line 4") && errors[1].contains("unknown field `timout`"),
        "{}",
        errors[1]
    );
    let names: Vec<String> = session
        .list_tools()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["good"]);
    session.close().await;
}

/// A definition that would stall the YAML parser (195 KiB of nested flow
/// collections took minutes) or carries an absurd number is refused quickly,
/// naming its file, while the other tools load.
#[tokio::test]
async fn hostile_definitions_are_refused_quickly_and_the_others_load() {
    let nested = format!("name: deep\ntype: cli\nargs: {}\n", "[".repeat(195 * 1024));
    let library = TempLibrary::new()
        .with_tool("good.yaml", "name: good\ntype: cli\ncommand: true\n")
        .with_tool("deep.yaml", &nested)
        .with_tool("huge.yaml", &"# padding\n".repeat(30_000))
        .with_tool(
            "cli_forever.yaml",
            "name: cli_forever\ntype: cli\ncommand: true\ntimeout: 1e20\n",
        )
        .with_tool(
            "mcp_nan.yaml",
            "name: mcp_nan\ntype: mcp\ncommand: srv\ntimeout: .nan\n",
        )
        .with_tool(
            "http_negative.yaml",
            "name: http_negative\ntype: http\nbase_url: http://127.0.0.1:9\ntimeout: -1\nendpoints: []\n",
        );
    let storage = FileStorage::open(library.path()).expect("open storage");
    let started = Instant::now();
    let registry = ToolRegistry::load(&storage).await.expect("load");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "loading took {elapsed:?}");
    let mut errors: Vec<String> = registry
        .load_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    errors.sort();
    let expected_starts = [
        (
            "cli_forever.yaml`",
            "`timeout` must be a number of seconds above 0 and at most 86400, not 100000000000000000000",
        ),
        ("deep.yaml`", "nesting deeper than 64 levels at line 3"),
        (
            "http_negative.yaml`",
            "`timeout` must be a number of seconds above 0 and at most 86400, not -1",
        ),
        (
            "huge.yaml`",
            "the definition is 300000 bytes; at most 262144 are read",
        ),
        (
            "mcp_nan.yaml`",
            "`timeout` must be a number of seconds above 0 and at most 86400, not NaN",
        ),
    ];
    assert_eq!(errors.len(), expected_starts.len(), "{errors:#?}");
    for (error, (file, message)) in errors.iter().zip(expected_starts) {
        assert!(
            error.contains(file) && error.ends_with(message),
            "expected `{file}`: {message}\ngot {error}"
        );
    }
    assert_eq!(registry.names().collect::<Vec<_>>(), ["good"]);
}
