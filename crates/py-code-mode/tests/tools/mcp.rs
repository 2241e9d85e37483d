use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode::{ENV_ALLOWLIST, Error, ToolError, ToolRegistry};
use py_code_mode_test_support::servers::{ServerProcess, repo_root, venv_bin, venv_python};
use serde_json::{Value, json};

use crate::common::{args, pids_running, q, registry, tool, wait_until};

fn stdio_yaml(name: &str) -> String {
    format!(
        "name: {name}\ntype: mcp\ntransport: stdio\ncommand: {}\nargs: [{}, stdio]\ndescription: test server\n",
        q(&venv_python()),
        q(&repo_root().join("tests/servers/mcp_test_server.py"))
    )
}

fn http_yaml(name: &str, transport: &str, server: &ServerProcess) -> String {
    let path = if transport == "sse" { "sse" } else { "mcp" };
    format!(
        "name: {name}\ntype: mcp\ntransport: {transport}\nurl: http://127.0.0.1:{}/{path}\nheaders:\n  X-Test: \"${{HOME}}\"\ndescription: test server\n",
        server.port
    )
}

/// What every transport must do the same way.
async fn check_server(registry: &ToolRegistry, name: &str) {
    let listed = registry.list().await.unwrap_or_else(|e| panic!("{e}"));
    let info = listed
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"));
    let add = info
        .callables
        .iter()
        .find(|c| c.name == "add")
        .unwrap_or_else(|| panic!("no add"));
    assert_eq!(add.description, "Add two integers and report the operands.");
    assert_eq!(
        add.parameters
            .iter()
            .map(|p| (p.name.as_str(), p.ty.as_str(), p.required))
            .collect::<Vec<_>>(),
        [("a", "integer", true), ("b", "integer", false)]
    );
    let call = |n: String, a: Value| async move { registry.call(&n, args(&a)).await };
    // Text content comes back as a string, structured content as data.
    assert_eq!(
        call(format!("{name}.echo"), json!({"text": "héllo"}))
            .await
            .ok(),
        Some(json!("héllo"))
    );
    assert_eq!(
        call(format!("{name}.add"), json!({"a": 2, "b": 40}))
            .await
            .ok(),
        Some(json!({"total": 42, "operands": [2, 40]}))
    );
    // The server's own error message reaches the caller.
    let err = call(format!("{name}.fail"), json!({"message": "disk on fire"}))
        .await
        .err();
    let err = err.map(|e| (e.python_type(), e.to_string()));
    assert!(
        matches!(&err, Some(("ToolError", m)) if m.contains("disk on fire")),
        "{err:?}"
    );
    let err = call(format!("{name}.nope"), json!({}))
        .await
        .err()
        .map(|e| e.python_type());
    assert_eq!(err, Some("ToolNotFoundError"));
    // A tool the server lists as needing tasks is marked, and refused without
    // a call (the SDK's server would run it and answer).
    let research = info
        .callables
        .iter()
        .find(|c| c.name == "research")
        .unwrap_or_else(|| panic!("no research"));
    assert!(
        research.description.starts_with("[needs MCP tasks"),
        "{}",
        research.description
    );
    let echo = info.callables.iter().find(|c| c.name == "echo");
    assert_eq!(
        echo.map(|c| c.description.as_str()),
        Some("Return the text unchanged.")
    );
    let err = call(format!("{name}.research"), json!({"topic": "x"}))
        .await
        .map_err(|e| (e.python_type(), e.to_string()));
    assert!(
        matches!(&err, Err(("ToolError", m)) if m.contains("can only run as an MCP task")),
        "{err:?}"
    );
}

#[tokio::test]
async fn python_sdk_server_over_stdio() {
    let registry = registry(&[&stdio_yaml("test")]);
    check_server(&registry, "test").await;
    // Flat: `tools.echo(...)` finds the one server that has `echo`.
    assert_eq!(
        registry
            .call("echo", args(&json!({"text": "flat"})))
            .await
            .ok(),
        Some(json!("flat"))
    );
    registry.close().await;
}

/// A stdio server is started under the spawn policy: the allow-listed
/// environment plus its YAML's `env:`, nothing else of the host's.
#[tokio::test]
async fn a_stdio_server_gets_the_allow_list_plus_its_own_env() {
    let yaml = format!("{}env: {{EXTRA: \"${{HOME}}\"}}\n", stdio_yaml("test"));
    let registry = registry(&[&yaml]);
    let names = registry
        .call("test.env_names", args(&json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = names
        .as_array()
        .map(|n| n.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(names.contains(&"EXTRA"), "{names:?}");
    for name in &names {
        assert!(
            ENV_ALLOWLIST.contains(name) || *name == "EXTRA",
            "the server got `{name}`: {names:?}"
        );
    }
    registry.close().await;
}

#[tokio::test]
async fn python_sdk_server_over_sse() {
    let server = ServerProcess::mcp_test_server("sse");
    let registry = registry(&[&http_yaml("test", "sse", &server)]);
    check_server(&registry, "test").await;
    registry.close().await;
}

#[tokio::test]
async fn python_sdk_server_over_streamable_http() {
    let server = ServerProcess::mcp_test_server("streamable-http");
    let registry = registry(&[&http_yaml("test", "streamable-http", &server)]);
    check_server(&registry, "test").await;
    registry.close().await;
}

/// A server that answers requests as plain JSON rather than an event stream.
#[tokio::test]
async fn python_sdk_server_over_streamable_http_answering_json() {
    let server = ServerProcess::mcp_test_server("streamable-http-json");
    let registry = registry(&[&http_yaml("test", "streamable-http", &server)]);
    check_server(&registry, "test").await;
    registry.close().await;
}

#[tokio::test]
async fn mcp_server_time_from_pypi() {
    let yaml = format!(
        "name: time\ntype: mcp\ntransport: stdio\ncommand: {}\ndescription: Current time in any timezone\n",
        q(&venv_bin("mcp-server-time"))
    );
    let registry = registry(&[&yaml]);
    let info = registry.list().await.unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = info[0].callables.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["get_current_time", "convert_time"]);
    let now = registry
        .call(
            "time.get_current_time",
            args(&json!({"timezone": "Europe/Paris"})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = now.to_string();
    assert!(text.contains("Europe/Paris"), "{text}");
    // The seed's flat form.
    let flat = registry
        .call("get_current_time", args(&json!({"timezone": "UTC"})))
        .await;
    assert!(flat.is_ok_and(|v| v.to_string().contains("UTC")));
    registry.close().await;
}

#[tokio::test]
async fn stdio_server_that_dies_is_restarted_on_the_next_call() {
    let test = tool(&stdio_yaml("test"));
    let pid = |v: Value| {
        v.as_str()
            .and_then(|s| s.parse::<i32>().ok())
            .unwrap_or_default()
    };
    let first = pid(test
        .call(Some("server_pid"), args(&json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(first > 0);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    );
    // The connection notices the exit (stdout closes); bound the wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        match test.call(Some("server_pid"), args(&json!({}))).await {
            Ok(v) => break pid(v),
            Err(e) => {
                assert!(e.to_string().contains("next call reconnects"), "{e}");
                assert!(Instant::now() < deadline, "no reconnect: {e}");
            }
        }
    };
    assert!(second > 0 && second != first, "{first} -> {second}");
    // close() stops the server process.
    test.close().await;
    let gone = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{second}")).exists() {
        assert!(Instant::now() < gone, "server {second} outlived close()");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn http_server_that_dies_fails_clearly_then_reconnects() {
    let mut server = ServerProcess::mcp_test_server("streamable-http");
    let port = server.port;
    let test = tool(&http_yaml("test", "streamable-http", &server));
    let first = test
        .call(Some("server_pid"), args(&json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    server.kill();
    let err = test
        .call(Some("server_pid"), args(&json!({})))
        .await
        .err()
        .map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(err.starts_with("tool `test` failed: "), "{err}");
    // A server back on the same address is picked up by the following call.
    let mut command = std::process::Command::new(venv_python());
    command
        .arg(repo_root().join("tests/servers/mcp_test_server.py"))
        .args(["streamable-http", &port.to_string()]);
    let _server = ServerProcess::start(command, port);
    let mut second = None;
    for _ in 0..3 {
        if let Ok(v) = test.call(Some("server_pid"), args(&json!({}))).await {
            second = Some(v);
            break;
        }
    }
    assert!(second.is_some_and(|s| s != first));
    test.close().await;
}

#[tokio::test]
async fn per_tool_timeout_stops_waiting() {
    let yaml = stdio_yaml("test") + "timeout: 0.5\n";
    let test = tool(&yaml);
    let started = Instant::now();
    let err = test
        .call(Some("sleep_ms"), args(&json!({"ms": 5000})))
        .await
        .err();
    assert!(
        matches!(err, Some(Error::Tool(ToolError::Timeout { .. }))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    test.close().await;
}

/// One MCP server that accepts the connection and never answers, next to a
/// real one: the listing shows the healthy server's tools and marks the hung
/// one unavailable, in bounded time; bare-name calls then do not wait on it.
#[tokio::test]
async fn a_hanging_server_never_blocks_the_others() {
    let hanging = format!(
        "name: hung\ntype: mcp\ncommand: {}\nargs: [{}]\ndescription: never answers\n",
        q(&venv_python()),
        q(&repo_root().join("tests/servers/hanging_mcp_server.py"))
    );
    let registry = registry(&[&hanging, &stdio_yaml("test")]);
    let started = Instant::now();
    let listed = registry.list().await.unwrap_or_else(|e| panic!("{e}"));
    let elapsed = started.elapsed();
    // The hung server costs the listing its wait (10 s), not the connect
    // timeout (2 min), and the healthy server is listed meanwhile.
    assert!(
        elapsed < Duration::from_secs(20),
        "listing took {elapsed:?}"
    );
    let entry = |name: &str| listed.iter().find(|t| t.name == name).cloned();
    let hung = entry("hung").unwrap_or_else(|| panic!("hung not listed: {listed:?}"));
    assert_eq!(hung.callables, []);
    assert_eq!(
        hung.unavailable.as_deref(),
        Some("the MCP server did not answer within 10s; still connecting")
    );
    let test = entry("test").unwrap_or_else(|| panic!("test not listed: {listed:?}"));
    assert!(test.callables.iter().any(|c| c.name == "echo"));
    assert_eq!(test.unavailable, None);
    // In the wire shape, `unavailable` appears only where it applies.
    let wire = serde_json::to_value(&listed).unwrap_or_default();
    assert_eq!(
        wire.as_array().map(|tools| tools
            .iter()
            .filter(|t| t.get("unavailable").is_some())
            .count()),
        Some(1)
    );
    let started = Instant::now();
    let flat = registry.call("echo", args(&json!({"text": "flat"}))).await;
    assert_eq!(flat.ok(), Some(json!("flat")));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a bare-name call waited {:?}",
        started.elapsed()
    );
    // The hung server is still being connected in the background; closing
    // stops that promptly and kills its process.
    let python = venv_python().display().to_string();
    let script = repo_root()
        .join("tests/servers/hanging_mcp_server.py")
        .display()
        .to_string();
    let hung_argv = [python.as_str(), script.as_str()];
    assert_eq!(pids_running(&hung_argv).len(), 1);
    let started = Instant::now();
    registry.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "close waited {:?}",
        started.elapsed()
    );
    wait_until("the hung server is killed", || {
        pids_running(&hung_argv).is_empty()
    })
    .await;
}

/// An SSE server whose `endpoint` event names another origin: the client
/// refuses it, so the configured secret header never leaves for that host.
#[tokio::test]
async fn an_sse_endpoint_on_another_origin_is_refused() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::StreamExt as _;

    // The other origin: records whether anything connected to it.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let elsewhere_port = elsewhere.local_addr().map(|a| a.port()).unwrap_or_default();
    let contacted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&contacted);
    tokio::spawn(async move {
        while let Ok((_socket, _)) = elsewhere.accept().await {
            flag.store(true, Ordering::SeqCst);
        }
    });
    let event =
        format!("event: endpoint\ndata: http://127.0.0.1:{elsewhere_port}/messages?session=1\n\n");
    let port = fake_sse(move || {
        futures::stream::once(std::future::ready(axum::body::Bytes::from(event.clone())))
            .chain(futures::stream::pending())
    })
    .await;

    let registry = registry(&[&format!(
        "name: fake\ntype: mcp\ntransport: sse\nurl: http://127.0.0.1:{port}/sse\nheaders: {{Authorization: Bearer s3cret}}\n"
    )]);
    let error = registry
        .call("fake.anything", args(&json!({})))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains(&format!(
            "the `endpoint` event of `http://127.0.0.1:{port}/sse` points at another origin (`http://127.0.0.1:{elsewhere_port}/messages?session=1`)"
        )),
        "{error}"
    );
    assert!(
        !contacted.load(Ordering::SeqCst),
        "the client contacted the other origin"
    );
    registry.close().await;
}

/// An SSE server that serves `body()` as its event stream at `/sse`.
async fn fake_sse<S>(body: impl Fn() -> S + Clone + Send + Sync + 'static) -> u16
where
    S: futures::Stream<Item = axum::body::Bytes> + Send + 'static,
{
    use futures::StreamExt as _;

    let app = axum::Router::new().route(
        "/sse",
        axum::routing::get(move || {
            let stream = body().map(Ok::<_, std::io::Error>);
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                    axum::body::Body::from_stream(stream),
                )
            }
        }),
    );
    crate::common::serve(app).await
}

/// An SSE server that streams one endless event: the client stops reading at
/// its cap with a clear error instead of buffering it.
#[tokio::test]
async fn an_endless_sse_event_is_cut_off() {
    use futures::StreamExt as _;

    let port = fake_sse(|| {
        futures::stream::once(std::future::ready(axum::body::Bytes::from_static(
            b"data: ",
        )))
        .chain(futures::stream::repeat(axum::body::Bytes::from(
            vec![b'x'; 64 * 1024],
        )))
    })
    .await;
    let registry = registry(&[&format!(
        "name: endless\ntype: mcp\ntransport: sse\nurl: http://127.0.0.1:{port}/sse\n"
    )]);
    let started = Instant::now();
    let error = registry
        .call("endless.anything", args(&json!({})))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains(&format!(
            "`http://127.0.0.1:{port}/sse` sent an event larger than 16777216 bytes"
        )),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    registry.close().await;
}
