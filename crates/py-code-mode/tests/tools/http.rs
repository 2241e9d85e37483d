use std::time::{Duration, Instant};

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use pretty_assertions::assert_eq;
use py_code_mode::{Endpoint, Error, HttpTool, ToolAdapter, ToolError};
use serde_json::{Map, Value, json};

use crate::common::{args, serve, tool};

/// A real HTTP API on a loopback port: echoes what it received.
pub async fn api() -> u16 {
    let app = Router::new()
        .route(
            "/items/{id}",
            get(
                |Path(id): Path<String>,
                 Query(q): Query<Map<String, Value>>,
                 headers: HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    Json(json!({"id": id, "query": q, "auth": auth}))
                },
            ),
        )
        .route(
            "/items",
            post(|Json(body): Json<Value>| async move {
                (StatusCode::CREATED, Json(json!({"created": body})))
            }),
        )
        .route("/text", get(|| async { "plain words" }))
        .route("/big", get(|| async { "x".repeat(2 * 1024 * 1024) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such thing here") }),
        );
    serve(app).await
}

pub fn api_yaml(port: u16) -> String {
    format!(
        r#"name: api
type: http
base_url: http://127.0.0.1:{port}
headers:
  Authorization: "Bearer ${{HOME}}"
timeout: 1
description: Items API
endpoints:
  - name: get_item
    path: /items/{{id}}
    description: One item
    query:
      verbose: {{type: boolean, description: more detail}}
  - name: create_item
    method: POST
    path: /items
    body:
      title: {{type: string, required: true}}
  - name: text
    path: /text
  - name: big
    path: /big
  - name: slow
    path: /slow
  - name: missing
    path: /missing
"#
    )
}

#[tokio::test]
async fn yaml_http_tool_against_a_real_server() {
    // A variable every test process has stands in for an API token.
    let token = std::env::var("HOME").unwrap_or_default();
    let port = api().await;
    let api = tool(&api_yaml(port));
    let call = |c: &'static str, a: Value| {
        let api = &api;
        async move { api.call(Some(c), args(&a)).await }
    };
    assert_eq!(
        call(
            "get_item",
            json!({"id": "a b", "verbose": true, "query_params": {"page": 2}})
        )
        .await
        .ok(),
        Some(
            json!({"id": "a b", "query": {"page": "2", "verbose": "true"}, "auth": format!("Bearer {token}")})
        )
    );
    assert_eq!(
        call("create_item", json!({"title": "new"})).await.ok(),
        Some(json!({"created": {"title": "new"}}))
    );
    assert_eq!(
        call("create_item", json!({"json": {"title": "whole", "n": 1}}))
            .await
            .ok(),
        Some(json!({"created": {"title": "whole", "n": 1}}))
    );
    assert_eq!(
        call("text", json!({})).await.ok(),
        Some(json!("plain words"))
    );
    let big = call("big", json!({}))
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    assert!(
        big.ends_with("[... output truncated: 1048576 more bytes]\n"),
        "{}",
        &big[big.len() - 60..]
    );

    let missing = call("missing", json!({}))
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        missing.as_deref(),
        Some(format!("tool `api` failed: `GET http://127.0.0.1:{port}/missing` answered 404 Not Found: no such thing here").as_str())
    );
    let started = Instant::now();
    let slow = call("slow", json!({})).await.err();
    assert!(
        matches!(slow, Some(Error::Tool(ToolError::Timeout { .. }))),
        "{slow:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let unknown = call("get_item", json!({"id": 1, "colour": "red"}))
        .await
        .err()
        .map(|e| e.python_type());
    assert_eq!(unknown, Some("TypeError"));
}

#[tokio::test]
async fn programmatic_http_tool() {
    let port = api().await;
    let api = HttpTool::new(format!("http://127.0.0.1:{port}"))
        .named("items")
        .endpoint(Endpoint::new("get_item", "GET", "/items/{id}", "One item"));
    let got = api
        .call(Some("get_item"), args(&json!({"id": 7, "q": "x"})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, json!({"id": "7", "query": {"q": "x"}, "auth": null}));
    // One endpoint: `tools.items(...)` calls it.
    assert!(api.call(None, args(&json!({"id": 8}))).await.is_ok());
}

#[tokio::test]
async fn a_redirect_to_another_origin_never_receives_the_configured_headers() {
    use std::sync::{Arc, Mutex};
    // The other origin records every request it gets, with its headers.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&seen);
    let other = Router::new().route(
        "/steal",
        get(move |headers: HeaderMap| {
            let record = Arc::clone(&record);
            async move {
                let key = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(key);
                "stolen"
            }
        }),
    );
    let other_port = serve(other).await;
    let api = Router::new()
        .route(
            "/away",
            get(move || async move {
                (
                    StatusCode::FOUND,
                    [("location", format!("http://127.0.0.1:{other_port}/steal"))],
                )
            }),
        )
        .route(
            "/home",
            get(|| async { (StatusCode::FOUND, [("location", "/text")]) }),
        )
        .route("/text", get(|| async { "followed" }));
    let port = serve(api).await;
    let api = tool(&format!(
        r"name: api
type: http
base_url: http://127.0.0.1:{port}
headers:
  X-Api-Key: secret-key
description: redirects
endpoints:
  - name: away
    path: /away
  - name: home
    path: /home
"
    ));

    let away = api.call(Some("away"), args(&json!({}))).await;
    assert!(
        away.as_ref().is_err_and(|e| e.to_string().contains("302")),
        "{away:?}"
    );
    assert_eq!(
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        Vec::<String>::new(),
        "the other origin was contacted"
    );
    // Within one origin, redirects are still followed.
    assert_eq!(
        api.call(Some("home"), args(&json!({}))).await.ok(),
        Some(json!("followed"))
    );
}
