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
