//! HTTP tools: REST endpoints called with keyword arguments.
//!
//! ```yaml
//! name: github
//! type: http
//! base_url: https://api.github.com
//! headers:
//!   Authorization: "Bearer ${GITHUB_TOKEN}"   # read from the host's environment
//! endpoints:
//!   - name: get_repo
//!     method: GET
//!     path: /repos/{owner}/{repo}
//!     description: One repository
//!   - name: create_issue
//!     method: POST
//!     path: /repos/{owner}/{repo}/issues
//!     body:
//!       title: {type: string, required: true}
//! ```
//!
//! or in Rust, like upstream's `HTTPAdapter` / `Endpoint`:
//!
//! ```
//! use py_code_mode::{Endpoint, HttpTool};
//! let api = HttpTool::new("https://api.example.com")
//!     .named("api")
//!     .endpoint(Endpoint::new("get_user", "GET", "/users/{id}", "Fetch a user"));
//! ```
//!
//! Called as `tools.github.get_repo(owner="a", repo="b")`: `{placeholders}` in the
//! path come from keyword arguments, declared `query`/`body` parameters go where
//! they are declared, `query_params={...}` adds query parameters and `json=` (or
//! `body=`, a string sent as is) gives the whole body. Header values are expanded
//! on the host, so secrets stay out of files and out of the Python worker.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::cli::ParamSpec;
use super::{
    CallableInfo, MAX_TOOL_OUTPUT, ToolAdapter, ToolInfo, ToolKind, parse_timeout, substitute_env,
};
use crate::error::{Result, ToolError};
use crate::skills::ParamInfo;

/// Timeout of one HTTP call when the definition sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error response's body the error message quotes.
const ERROR_EXCERPT: usize = 1000;
/// Keyword arguments with a meaning of their own, never path or body fields.
const RESERVED: &[&str] = &["query_params", "json", "body"];

/// An HTTP tool definition as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub base_url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Seconds one request may take, body included.
    #[serde(default)]
    pub timeout: Option<f64>,
    pub endpoints: Vec<EndpointSpec>,
}

/// One endpoint as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub description: String,
    /// Documentation of the `{placeholders}` in `path`.
    #[serde(default)]
    pub path_params: BTreeMap<String, ParamSpec>,
    #[serde(default)]
    pub query: BTreeMap<String, ParamSpec>,
    #[serde(default)]
    pub body: BTreeMap<String, ParamSpec>,
}

fn default_method() -> String {
    "GET".into()
}

/// One endpoint of an [`HttpTool`].
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub method: String,
    /// Relative to the tool's base URL, with `{placeholders}` for path parameters.
    pub path: String,
    pub description: String,
    /// Declared query parameters. With none declared (here and in `body`),
    /// extra keyword arguments go to the query of GET/HEAD/DELETE requests and
    /// to the JSON body of the others.
    pub query: Vec<ParamInfo>,
    /// Declared fields of the JSON body.
    pub body: Vec<ParamInfo>,
    path_docs: BTreeMap<String, ParamSpec>,
}

impl Endpoint {
    /// Mirrors upstream's `Endpoint(name, method, path, description)`.
    pub fn new(
        name: impl Into<String>,
        method: impl Into<String>,
        path: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            method: method.into(),
            path: path.into(),
            description: description.into(),
            query: Vec::new(),
            body: Vec::new(),
            path_docs: BTreeMap::new(),
        }
    }

    /// Declares a query parameter.
    #[must_use]
    pub fn query_param(mut self, param: ParamInfo) -> Self {
        self.query.push(param);
        self
    }

    /// Declares a field of the JSON body.
    #[must_use]
    pub fn body_param(mut self, param: ParamInfo) -> Self {
        self.body.push(param);
        self
    }

    fn path_params(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = self.path.as_str();
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            names.push(rest[start + 1..start + end].to_owned());
            rest = &rest[start + end + 1..];
        }
        names
    }

    fn info(&self) -> CallableInfo {
        let mut parameters: Vec<ParamInfo> = self
            .path_params()
            .into_iter()
            .map(|name| {
                let doc = self.path_docs.get(&name).cloned().unwrap_or_default();
                ParamInfo {
                    name,
                    ty: doc.ty.unwrap_or_default().name().into(),
                    required: true,
                    default: None,
                    description: doc.description,
                }
            })
            .collect();
        parameters.extend(self.query.iter().cloned());
        parameters.extend(self.body.iter().cloned());
        CallableInfo {
            name: self.name.clone(),
            description: if self.description.is_empty() {
                format!("{} {}", self.method, self.path)
            } else {
                self.description.clone()
            },
            parameters,
        }
    }
}

/// An HTTP API: a base URL, default headers and named endpoints.
#[derive(Debug, Clone)]
pub struct HttpTool {
    name: String,
    base_url: String,
    headers: Vec<(String, String)>,
    description: String,
    tags: Vec<String>,
    timeout: Duration,
    endpoints: Vec<Endpoint>,
}

impl HttpTool {
    /// A tool for the API at `base_url`, named after its host until [`named`](Self::named).
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into();
        let host = reqwest::Url::parse(&base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "http".into());
        let name = host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Self {
            name,
            base_url,
            headers: Vec::new(),
            description: String::new(),
            tags: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            endpoints: Vec::new(),
        }
    }

    /// The name agent code calls it by: `tools.<name>.<endpoint>(...)`.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// A header sent with every request; `${VAR}` in the value is read from the
    /// host's environment at call time.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    #[must_use]
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Builds the tool from its YAML form.
    pub fn from_spec(spec: HttpSpec) -> Result<Self, String> {
        let timeout = parse_timeout(spec.timeout, DEFAULT_TIMEOUT)?;
        let mut tool = Self::new(spec.base_url)
            .named(spec.name)
            .description(spec.description)
            .timeout(timeout);
        tool.tags = spec.tags;
        tool.headers = spec.headers.into_iter().collect();
        for e in spec.endpoints {
            Method::from_bytes(e.method.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("endpoint `{}`: bad method `{}`", e.name, e.method))?;
            let params = |map: BTreeMap<String, ParamSpec>| -> Vec<ParamInfo> {
                map.into_iter().map(|(name, p)| p.into_info(name)).collect()
            };
            let mut endpoint = Endpoint::new(e.name, e.method, e.path, e.description);
            endpoint.query = params(e.query);
            endpoint.body = params(e.body);
            if let Some(unknown) = e
                .path_params
                .keys()
                .find(|k| !endpoint.path_params().contains(k))
            {
                return Err(format!(
                    "endpoint `{}`: `path_params` documents `{unknown}`, which `path` does not use",
                    endpoint.name
                ));
            }
            endpoint.path_docs = e.path_params;
            tool.endpoints.push(endpoint);
        }
        Ok(tool)
    }

    fn invalid(&self, message: String) -> ToolError {
        ToolError::InvalidArguments {
            tool: self.name.clone(),
            message,
        }
    }

    fn endpoint_for(&self, callable: Option<&str>) -> Result<&Endpoint, ToolError> {
        let found = match callable {
            Some(c) => self.endpoints.iter().find(|e| e.name == c),
            None => self.endpoints.iter().find(|e| e.name == self.name).or(
                match self.endpoints.as_slice() {
                    [only] => Some(only),
                    _ => None,
                },
            ),
        };
        found.ok_or_else(|| ToolError::NotFound {
            name: match callable {
                Some(c) => format!("{}.{c}", self.name),
                None => format!(
                    "{} (an HTTP tool: call one of its endpoints, {})",
                    self.name,
                    self.endpoints
                        .iter()
                        .map(|e| format!("`tools.{}.{}`", self.name, e.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        })
    }

    /// The request for these arguments: method, URL, query pairs and body.
    #[expect(
        clippy::too_many_lines,
        reason = "one pass over the arguments reads better than helpers passing five accumulators"
    )]
    fn build_request(
        &self,
        endpoint: &Endpoint,
        mut args: Map<String, Value>,
    ) -> Result<Request, ToolError> {
        let method = Method::from_bytes(endpoint.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| self.invalid(format!("bad method `{}`", endpoint.method)))?;
        let mut path = String::new();
        let mut rest = endpoint.path.as_str();
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            let name = &rest[start + 1..start + end];
            path.push_str(&rest[..start]);
            let value = args
                .remove(name)
                .filter(|v| !v.is_null())
                .ok_or_else(|| self.invalid(format!("missing path argument `{name}`")))?;
            encode_segment(&mut path, &scalar_text(&value));
            rest = &rest[start + end + 1..];
        }
        path.push_str(rest);
        let url = format!("{}{}", self.base_url.trim_end_matches('/'), path);

        let mut query: Vec<(String, String)> = Vec::new();
        match args.remove("query_params") {
            None | Some(Value::Null) => {}
            Some(Value::Object(extra)) => {
                query.extend(extra.iter().map(|(k, v)| (k.clone(), scalar_text(v))));
            }
            Some(other) => {
                return Err(self.invalid(format!("`query_params` must be a dict, not {other}")));
            }
        }
        let mut body = match (args.remove("json"), args.remove("body")) {
            (Some(_), Some(_)) => {
                return Err(self.invalid("pass `json=` or `body=`, not both".into()));
            }
            (Some(json), None) | (None, Some(json @ (Value::Object(_) | Value::Array(_)))) => {
                Some(Body::Json(json))
            }
            (None, Some(Value::String(text))) => Some(Body::Text(text)),
            (None, Some(Value::Null) | None) => None,
            (None, Some(other)) => Some(Body::Json(other)),
        };
        let declared = !endpoint.query.is_empty() || !endpoint.body.is_empty();
        let mut fields = Map::new();
        for (name, value) in args {
            if endpoint.query.iter().any(|p| p.name == name) {
                if !value.is_null() {
                    push_query(&mut query, &name, &value);
                }
            } else if endpoint.body.iter().any(|p| p.name == name) {
                fields.insert(name, value);
            } else if declared {
                let accepted: Vec<String> = endpoint
                    .path_params()
                    .into_iter()
                    .chain(
                        endpoint
                            .query
                            .iter()
                            .chain(&endpoint.body)
                            .map(|p| p.name.clone()),
                    )
                    .chain(RESERVED.iter().map(|s| (*s).to_owned()))
                    .collect();
                return Err(self.invalid(format!(
                    "unexpected argument `{name}` for `{}` (accepted: {})",
                    endpoint.name,
                    accepted.join(", ")
                )));
            } else if matches!(method, Method::GET | Method::HEAD | Method::DELETE) {
                push_query(&mut query, &name, &value);
            } else {
                fields.insert(name, value);
            }
        }
        for p in &endpoint.query {
            if !query.iter().any(|(k, _)| *k == p.name) {
                match &p.default {
                    Some(default) => push_query(&mut query, &p.name, default),
                    None if p.required => {
                        return Err(self.invalid(format!("missing required argument `{}`", p.name)));
                    }
                    None => {}
                }
            }
        }
        for p in &endpoint.body {
            if !fields.contains_key(&p.name) {
                match &p.default {
                    Some(default) => {
                        fields.insert(p.name.clone(), default.clone());
                    }
                    None if p.required && body.is_none() => {
                        return Err(self.invalid(format!("missing required argument `{}`", p.name)));
                    }
                    None => {}
                }
            }
        }
        if !fields.is_empty() {
            body = match body {
                None => Some(Body::Json(Value::Object(fields))),
                Some(Body::Json(Value::Object(mut whole))) => {
                    whole.extend(fields);
                    Some(Body::Json(Value::Object(whole)))
                }
                Some(_) => {
                    return Err(self.invalid(
                        "body fields cannot be combined with a non-object `json=`/`body=`".into(),
                    ));
                }
            };
        }
        Ok(Request {
            method,
            url,
            query,
            body,
        })
    }

    async fn send(&self, request: Request) -> Result<Value, ToolError> {
        let failed = |message: String| ToolError::Failed {
            tool: self.name.clone(),
            message,
        };
        let mut builder = http_client()
            .request(request.method.clone(), &request.url)
            .query(&request.query);
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| failed(format!("bad header name `{name}`: {e}")))?;
            let value = HeaderValue::from_str(&substitute_env(value).map_err(&failed)?)
                .map_err(|e| failed(format!("bad value for header `{name}`: {e}")))?;
            builder = builder.header(name, value);
        }
        builder = match request.body {
            None => builder,
            Some(Body::Json(json)) => builder.json(&json),
            Some(Body::Text(text)) => builder.body(text),
        };
        let target = format!("{} {}", request.method, request.url);
        let mut response = builder
            .send()
            .await
            .map_err(|e| failed(format!("cannot reach `{target}`: {}", error_chain(&e))))?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let mut kept: Vec<u8> = Vec::new();
        let mut dropped: u64 = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(format!("reading the response of `{target}`: {e}")))?
        {
            let room = MAX_TOOL_OUTPUT.saturating_sub(kept.len());
            let keep = chunk.len().min(room);
            kept.extend_from_slice(&chunk[..keep]);
            dropped += (chunk.len() - keep) as u64;
        }
        let mut text = String::from_utf8_lossy(&kept).into_owned();
        if !status.is_success() {
            let excerpt = super::truncate_text(text.trim().to_owned(), ERROR_EXCERPT);
            return Err(failed(format!("`{target}` answered {status}: {excerpt}")));
        }
        if dropped > 0 {
            let _ = write!(text, "\n[... output truncated: {dropped} more bytes]\n");
            return Ok(Value::String(text));
        }
        if is_json
            && !text.trim().is_empty()
            && let Ok(value) = serde_json::from_str(&text)
        {
            return Ok(value);
        }
        Ok(Value::String(text))
    }
}

struct Request {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    body: Option<Body>,
}

enum Body {
    Json(Value),
    Text(String),
}

fn push_query(query: &mut Vec<(String, String)>, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            query.extend(items.iter().map(|v| (name.to_owned(), scalar_text(v))));
        }
        other => query.push((name.to_owned(), scalar_text(other))),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a path argument so `a/b` stays one segment.
fn encode_segment(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// One HTTP client per process: it pools connections and holds the TLS setup.
pub(crate) fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(same_origin_redirects())
                .build()
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, "cannot build the HTTP client; redirects are not followed");
                    reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .unwrap_or_default()
                })
        })
        .clone()
}

/// How many redirects one request follows: browsers' bound.
const MAX_REDIRECTS: usize = 10;

/// Follows a redirect only within the origin the request went to: the headers a
/// tool's YAML configures (API keys in `X-Api-Key` as much as `Authorization`)
/// must never be sent to another host. A cross-origin redirect is answered as
/// the 3xx it is, which the caller reports as a failure.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

#[async_trait]
impl ToolAdapter for HttpTool {
    fn name(&self) -> &str {
        &self.name
    }

    async fn info(&self) -> Result<ToolInfo> {
        Ok(ToolInfo {
            name: self.name.clone(),
            kind: ToolKind::Http,
            description: self.description.clone(),
            tags: self.tags.clone(),
            callables: self.endpoints.iter().map(Endpoint::info).collect(),
            unavailable: None,
        })
    }

    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value> {
        let endpoint = self.endpoint_for(callable)?;
        let request = self.build_request(endpoint, args)?;
        match tokio::time::timeout(self.timeout, self.send(request)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ToolError::Timeout {
                tool: format!("{}.{}", self.name, endpoint.name),
                seconds: self.timeout.as_secs_f64(),
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn args(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn path_query_and_body_go_where_they_belong() -> Result<(), ToolError> {
        let tool = HttpTool::new("http://h/api/")
            .endpoint(Endpoint::new("get", "GET", "/items/{id}", ""))
            .endpoint(Endpoint::new("post", "POST", "/items", ""));
        let get = tool.build_request(
            &tool.endpoints[0],
            args(&json!({"id": "a/b c", "q": "x", "query_params": {"page": 2}})),
        )?;
        assert_eq!(get.url, "http://h/api/items/a%2Fb%20c");
        assert_eq!(
            get.query,
            [
                ("page".to_owned(), "2".to_owned()),
                ("q".to_owned(), "x".to_owned())
            ]
        );
        let post =
            tool.build_request(&tool.endpoints[1], args(&json!({"json": {"a": 1}, "b": 2})))?;
        assert!(matches!(post.body, Some(Body::Json(ref v)) if *v == json!({"a": 1, "b": 2})));
        let missing = tool
            .build_request(&tool.endpoints[0], Map::new())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            missing.as_deref(),
            Some("tool `h`: missing path argument `id`")
        );
        Ok(())
    }
}
