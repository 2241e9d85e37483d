//! CLI tools from YAML: loading, calling, safety.

use pretty_assertions::assert_eq;
use py_code_mode_test_support::TempLibrary;
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
    let result = ok(&session, "tools.call('echo', {'text': 'a  b'})").await;
    assert_eq!(result.value, Some(json!("a b\n")));
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
    let library =
        TempLibrary::new().with_tool("echo.yaml", "name: echo\ntype: cli\nargs: '{text}'\n");
    let pwned = library.path().join("pwned");
    let session = session(&library).await;
    for attack in [
        format!("x; touch {}", pwned.display()),
        format!("$(touch {})", pwned.display()),
        format!("`touch {}`", pwned.display()),
        format!("x && touch {} | cat", pwned.display()),
    ] {
        ok(&session, &format!("tools.echo(text={attack:?})")).await;
    }
    assert!(!pwned.exists(), "a tool argument reached a shell");
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
            "tool `slow` timed out after 0.3s and was stopped"
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
            "tool `slow`: unexpected argument `seconds` (accepted: secs)"
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
