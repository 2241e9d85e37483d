//! Function tools: a tool that is a function of the application, called on
//! the host.
//!
//! ```no_run
//! # async fn demo(storage: std::sync::Arc<dyn py_code_mode::Storage>) -> py_code_mode::Result<()> {
//! use py_code_mode::{FunctionTool, Session};
//! use serde_json::json;
//!
//! let add = FunctionTool::new("add", |args| async move {
//!     let a = args.get("a").and_then(|v| v.as_i64()).ok_or("`a` must be an integer")?;
//!     let b = args.get("b").and_then(|v| v.as_i64()).unwrap_or(1);
//!     Ok(json!(a + b))
//! })
//! .description("Add two integers")
//! .param("a", "int", "the first addend")
//! .optional("b", "int", json!(1), "the second addend");
//! let session = Session::builder(storage).function(add).build().await?;
//! let result = session.run("tools.add(a=2)").await?; // 3
//! # Ok(())
//! # }
//! ```
//!
//! Agent code calls it as `tools.add(a=2, b=3)` on every executor: from a
//! worker process the call crosses the protocol like any other tool call, and
//! the function runs in the host process. Arguments are checked against the
//! declared parameters before the function sees them (an unknown or missing
//! one is a `TypeError` in agent code); an error the function returns reaches
//! agent code as `ToolError` with its message.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{CallableInfo, ToolAdapter, ToolInfo, ToolKind};
use crate::error::{Result, ToolError};
use crate::skills::ParamInfo;

/// What a function tool returns: a JSON value, or an error whose message
/// agent code sees in its `ToolError`.
pub type FunctionResult = std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>>;

type Call = dyn Fn(Map<String, Value>) -> BoxFuture<'static, FunctionResult> + Send + Sync;

/// Names agent code could not reach as `tools.<name>`: the `tools`
/// namespace's own methods.
const RESERVED_TOOL_NAMES: &[&str] = &["call", "list", "search"];

/// A tool backed by a function of the application; see the module docs.
#[derive(Clone)]
pub struct FunctionTool {
    name: String,
    description: String,
    tags: Vec<String>,
    parameters: Vec<ParamInfo>,
    /// Whether keywords beyond the parameters are passed on (Python's `**kwargs`).
    extra_keywords: bool,
    /// How long one call may take; `None`: as long as it likes.
    timeout: Option<Duration>,
    call: Arc<Call>,
}

impl fmt::Debug for FunctionTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionTool")
            .field("name", &self.name)
            .field("parameters", &self.parameters)
            .finish_non_exhaustive()
    }
}

impl FunctionTool {
    /// A tool named `name` that calls `function` with the keyword arguments
    /// agent code passed. Declare its parameters with [`param`](Self::param)
    /// and [`optional`](Self::optional); without any, it takes none.
    pub fn new<F, Fut>(name: impl Into<String>, function: F) -> Self
    where
        F: Fn(Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = FunctionResult> + Send + 'static,
    {
        Self {
            name: name.into(),
            description: String::new(),
            tags: Vec::new(),
            parameters: Vec::new(),
            extra_keywords: false,
            timeout: None,
            call: Arc::new(move |args| Box::pin(function(args))),
        }
    }

    /// A tool over a blocking function: it runs on tokio's blocking pool, so
    /// a slow one never stalls the host's other work.
    pub fn blocking<F>(name: impl Into<String>, function: F) -> Self
    where
        F: Fn(Map<String, Value>) -> FunctionResult + Send + Sync + 'static,
    {
        let function = Arc::new(function);
        Self::new(name, move |args| {
            let function = Arc::clone(&function);
            async move {
                tokio::task::spawn_blocking(move || function(args))
                    .await
                    .map_err(|e| format!("the function panicked: {e}"))?
            }
        })
    }

    /// What the tool does, as `tools.list()` shows and search ranks it.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Tags, for listings and search.
    #[must_use]
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// A required keyword parameter; `ty` is shown as written (`int`, `list[str]`).
    #[must_use]
    pub fn param(
        mut self,
        name: impl Into<String>,
        ty: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.parameters.push(ParamInfo {
            name: name.into(),
            ty: ty.into(),
            required: true,
            default: None,
            description: description.into(),
        });
        self
    }

    /// An optional keyword parameter; `default` is what listings show (the
    /// function applies it itself when the argument is absent).
    #[must_use]
    pub fn optional(
        mut self,
        name: impl Into<String>,
        ty: impl Into<String>,
        default: Value,
        description: impl Into<String>,
    ) -> Self {
        self.parameters.push(ParamInfo {
            name: name.into(),
            ty: ty.into(),
            required: false,
            default: Some(default),
            description: description.into(),
        });
        self
    }

    /// Every declared parameter at once (replacing those declared before).
    #[must_use]
    pub fn parameters(mut self, parameters: Vec<ParamInfo>) -> Self {
        self.parameters = parameters;
        self
    }

    /// Passes keywords beyond the declared parameters on to the function
    /// (else they are refused before it runs).
    #[must_use]
    pub fn extra_keywords(mut self, allowed: bool) -> Self {
        self.extra_keywords = allowed;
        self
    }

    /// Bounds each call: past `timeout` the call fails with a `ToolError`
    /// and its future is dropped (an async function is cancelled; a blocking
    /// one cannot be stopped and finishes on its thread, unheard). A future
    /// that blocks inside its poll is answered only when it returns, with the
    /// same error. Without a timeout, a call takes as long as the function
    /// does, and agent code waits.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the name and parameters: agent code must be able to call the
    /// tool as `tools.<name>(<param>=...)`.
    pub fn validate(&self) -> Result<(), ToolError> {
        let invalid = |message: String| ToolError::Definition {
            origin: format!("function `{}`", self.name),
            line: None,
            message,
        };
        if !is_identifier(&self.name) || self.name.starts_with('_') {
            return Err(invalid(format!(
                "`{}` cannot be called as `tools.<name>`: a tool name is a Python identifier that does not start with `_`",
                self.name
            )));
        }
        if RESERVED_TOOL_NAMES.contains(&self.name.as_str()) {
            return Err(invalid(format!(
                "`tools.{}` is a method of the `tools` namespace\nhint: register the function under another name",
                self.name
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for param in &self.parameters {
            if !is_identifier(&param.name) {
                return Err(invalid(format!(
                    "parameter `{}` is not a Python identifier",
                    param.name
                )));
            }
            if !seen.insert(param.name.as_str()) {
                return Err(invalid(format!(
                    "parameter `{}` is declared twice",
                    param.name
                )));
            }
        }
        Ok(())
    }

    /// The arguments as the function may see them: every required parameter
    /// present, no unknown keyword unless extra keywords are allowed.
    fn check(&self, args: &Map<String, Value>) -> Result<(), ToolError> {
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: self.name.clone(),
            message,
        };
        if !self.extra_keywords
            && let Some(unknown) = args
                .keys()
                .find(|key| !self.parameters.iter().any(|p| &p.name == *key))
        {
            let known: Vec<String> = self
                .parameters
                .iter()
                .map(|p| format!("`{}`", p.name))
                .collect();
            return Err(invalid(format!(
                "unexpected keyword argument `{unknown}` (it takes {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        let missing: Vec<String> = self
            .parameters
            .iter()
            .filter(|p| p.required && !args.contains_key(&p.name))
            .map(|p| format!("`{}`", p.name))
            .collect();
        if !missing.is_empty() {
            return Err(invalid(format!(
                "missing required argument{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl ToolAdapter for FunctionTool {
    fn name(&self) -> &str {
        &self.name
    }

    async fn info(&self) -> Result<ToolInfo> {
        Ok(ToolInfo {
            name: self.name.clone(),
            kind: ToolKind::Function,
            description: self.description.clone(),
            tags: self.tags.clone(),
            callables: vec![CallableInfo {
                name: self.name.clone(),
                description: self.description.clone(),
                parameters: self.parameters.clone(),
            }],
            unavailable: None,
        })
    }

    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value> {
        if let Some(callable) = callable {
            return Err(ToolError::NotFound {
                name: format!("{}.{callable}", self.name),
            }
            .into());
        }
        self.check(&args)?;
        let call = (self.call)(args);
        let outcome = match self.timeout {
            None => call.await,
            Some(timeout) => {
                let timed_out = || ToolError::Timeout {
                    tool: self.name.clone(),
                    seconds: timeout.as_secs_f64(),
                };
                let started = std::time::Instant::now();
                let outcome = tokio::time::timeout(timeout, call)
                    .await
                    .map_err(|_| timed_out())?;
                // A function that blocked inside its poll could not be cut
                // short: its late answer is dropped all the same, so a call
                // past its timeout fails whichever way the function runs.
                if started.elapsed() > timeout {
                    return Err(timed_out().into());
                }
                outcome
            }
        };
        outcome.map_err(|e| {
            ToolError::Failed {
                tool: self.name.clone(),
                message: e.to_string(),
            }
            .into()
        })
    }
}

/// Whether `name` is an ASCII Python identifier and not a keyword.
fn is_identifier(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield",
    ];
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn add() -> FunctionTool {
        FunctionTool::new("add", |args| async move {
            let a = args
                .get("a")
                .and_then(Value::as_i64)
                .ok_or("`a` is not an integer")?;
            let b = args.get("b").and_then(Value::as_i64).unwrap_or(1);
            Ok(json!(a + b))
        })
        .param("a", "int", "")
        .optional("b", "int", json!(1), "")
    }

    fn args(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[tokio::test]
    async fn checks_arguments_before_calling() {
        let tool = add();
        assert_eq!(
            tool.call(None, args(json!({"a": 2}))).await.ok(),
            Some(json!(3))
        );
        let unknown = tool.call(None, args(json!({"a": 1, "c": 2}))).await;
        assert!(
            unknown
                .as_ref()
                .is_err_and(|e| e.to_string().contains("unexpected keyword argument `c`")),
            "{unknown:?}"
        );
        let missing = tool.call(None, args(json!({"b": 2}))).await;
        assert!(
            missing
                .as_ref()
                .is_err_and(|e| e.to_string().contains("missing required argument `a`")),
            "{missing:?}"
        );
        let failed = tool.call(None, args(json!({"a": "x"}))).await;
        assert!(
            failed
                .as_ref()
                .is_err_and(|e| e.to_string() == "tool `add` failed: `a` is not an integer"),
            "{failed:?}"
        );
    }

    #[tokio::test]
    async fn a_call_past_its_timeout_fails_and_is_dropped() {
        let tool = FunctionTool::new("hang", |_| async {
            tokio::time::sleep(Duration::from_hours(1)).await;
            Ok(Value::Null)
        })
        .timeout(Duration::from_millis(50));
        let outcome = tool.call(None, Map::new()).await;
        assert!(
            outcome.as_ref().is_err_and(
                |e| e.to_string() == "tool `hang` timed out after 0.05s and was stopped"
            ),
            "{outcome:?}"
        );
        // One that blocks inside its poll answers late, with the same error.
        let blocks = FunctionTool::new("blocks", |_| async {
            std::thread::sleep(Duration::from_millis(100));
            Ok(Value::Null)
        })
        .timeout(Duration::from_millis(20));
        let outcome = blocks.call(None, Map::new()).await;
        assert!(
            outcome
                .as_ref()
                .is_err_and(|e| e.to_string().starts_with("tool `blocks` timed out")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_yaml_definition_cannot_claim_to_be_a_function() {
        let source = crate::storage::ToolSource {
            origin: "tools/add.yaml".into(),
            text: "name: add\ntype: function\n".into(),
        };
        let refused = super::super::parse_definition(&source);
        assert!(
            refused.as_ref().is_err_and(|e| e
                .to_string()
                .contains("`type: function` tools are registered in code")),
            "{refused:?}"
        );
    }

    #[test]
    fn refuses_names_agent_code_cannot_call() {
        for bad in [
            "list",
            "search",
            "call",
            "_private",
            "two words",
            "class",
            "1x",
            "",
        ] {
            let tool = FunctionTool::new(bad, |_| async { Ok(Value::Null) });
            assert!(tool.validate().is_err(), "{bad}");
        }
        assert!(add().validate().is_ok());
        let twice = add().param("a", "int", "");
        assert!(twice.validate().is_err());
    }
}
