//! MCP client ↔ server in one process over a duplex pipe: protocol shapes and errors.

use std::sync::Arc;

use pretty_assertions::assert_eq;
use py_code_mode::{FileStorage, Session, SubprocessConfig};
use py_code_mode_cli::CodeModeServer;
use py_code_mode_test_support::{TempLibrary, python};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

async fn connect(library: &TempLibrary) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let storage = Arc::new(FileStorage::open(library.path()).expect("storage"));
    let session = Session::builder(storage)
        .executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
        .build()
        .await
        .expect("session");
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let server = CodeModeServer::new(Arc::new(session))
            .serve(server_io)
            .await
            .expect("serve");
        let _ = server.waiting().await;
    });
    ().serve(client_io).await.expect("client")
}

fn call(name: &'static str, args: Value) -> CallToolRequestParams {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(name).with_arguments(args)
}

#[tokio::test]
async fn tools_list_has_the_documented_tools_and_input_schemas() {
    let library = TempLibrary::new();
    let client = connect(&library).await;
    let tools = client.list_tools(None).await.expect("tools/list").tools;
    let shapes: Vec<(String, Vec<String>, Vec<String>)> = tools
        .iter()
        .map(|t| {
            let schema = Value::Object((*t.input_schema).clone());
            let mut props: Vec<String> = schema["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            props.sort();
            let mut required: Vec<String> = schema["required"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            required.sort();
            (t.name.to_string(), props, required)
        })
        .collect();
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut expected = vec![
        (
            "create_skill".to_owned(),
            owned(&["description", "name", "source"]),
            owned(&["name", "source"]),
        ),
        (
            "delete_skill".to_owned(),
            owned(&["name"]),
            owned(&["name"]),
        ),
        (
            "get_skill".to_owned(),
            owned(&["name", "version"]),
            owned(&["name"]),
        ),
        (
            "rollback_skill".to_owned(),
            owned(&["name", "version"]),
            owned(&["name", "version"]),
        ),
        (
            "skill_history".to_owned(),
            owned(&["name"]),
            owned(&["name"]),
        ),
        ("test_skill".to_owned(), owned(&["name"]), owned(&["name"])),
        ("list_artifacts".to_owned(), vec![], vec![]),
        ("list_skills".to_owned(), vec![], vec![]),
        ("list_tools".to_owned(), vec![], vec![]),
        ("reset".to_owned(), vec![], vec![]),
        (
            "run_code".to_owned(),
            owned(&["code", "timeout"]),
            owned(&["code"]),
        ),
        (
            "search_skills".to_owned(),
            owned(&["limit", "query"]),
            owned(&["query"]),
        ),
        (
            "search_tools".to_owned(),
            owned(&["limit", "query"]),
            owned(&["query"]),
        ),
    ];
    let mut shapes = shapes;
    shapes.sort();
    expected.sort();
    assert_eq!(shapes, expected);
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("py-code-mode")
    );
    assert!(
        info.instructions
            .as_deref()
            .is_some_and(|i| i.contains("tools.search"))
    );
    client.cancel().await.expect("cancel");
}

#[tokio::test]
async fn failures_are_tool_errors_and_bad_names_are_invalid_params() {
    let library = TempLibrary::new();
    let client = connect(&library).await;
    let result = client
        .call_tool(call(
            "run_code",
            json!({"code": "raise ValueError('nope')"}),
        ))
        .await
        .expect("call");
    assert_eq!(result.is_error, Some(true));
    let text = result.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert!(text.ends_with("ValueError: nope"), "{text}");

    let err = client
        .call_tool(call("delete_skill", json!({"name": "../x"})))
        .await
        .expect_err("a protocol error");
    assert!(
        err.to_string().contains("skill name `../x` is not allowed"),
        "{err}"
    );

    let err = client
        .call_tool(call("run_code", json!({"code": "1", "timeout": -1})))
        .await
        .expect_err("a protocol error");
    assert!(
        err.to_string()
            .contains("`timeout` must be a number of seconds above 0"),
        "{err}"
    );
    client.cancel().await.expect("cancel");
}

/// The JSON a tool replied with.
async fn reply_json(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    name: &'static str,
    args: Value,
) -> Value {
    let result = client.call_tool(call(name, args)).await.expect("call");
    let text = result.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert_ne!(result.is_error, Some(true), "{name}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

#[tokio::test]
async fn renaming_a_tool_parameter_marks_the_dependent_skill_stale_in_listings_and_search() {
    let library = TempLibrary::new().with_tool(
        "echo.yaml",
        "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n",
    );
    let client = connect(&library).await;
    reply_json(
        &client,
        "create_skill",
        json!({"name": "shout", "description": "shout text back",
               "source": "def run(text: str):\n    return tools.echo(text=text).upper()\n"}),
    )
    .await;
    let listed = reply_json(&client, "list_skills", json!({})).await;
    assert_eq!(
        listed[0]["stale"],
        Value::Null,
        "fresh while the tool is as it was"
    );
    let history = reply_json(&client, "skill_history", json!({"name": "shout"})).await;
    assert_eq!(history[0]["version"], json!(1));
    client.cancel().await.expect("cancel");

    // The tool's parameter is renamed; the next server sees the skill as stale.
    library.write(
        "tools/echo.yaml",
        "name: echo\ntype: cli\nargs: '{words}'\ndescription: print text back\n",
    );
    let client = connect(&library).await;
    let reason = "tool `echo` changed: `echo(text?: string)` is now `echo(words?: string)`";
    let listed = reply_json(&client, "list_skills", json!({})).await;
    assert_eq!(listed[0]["stale"], json!(reason));
    let found = reply_json(&client, "search_skills", json!({"query": "shout text"})).await;
    assert_eq!(found[0]["stale"], json!(reason));

    // Gone altogether.
    std::fs::remove_file(library.path().join("tools/echo.yaml")).expect("remove tool");
    client.cancel().await.expect("cancel");
    let client = connect(&library).await;
    let listed = reply_json(&client, "list_skills", json!({})).await;
    assert_eq!(listed[0]["stale"], json!("tool `echo` is gone"));
    client.cancel().await.expect("cancel");
}
