//! CLI tools: a command and an argument template, run without a shell.
//!
//! ```yaml
//! name: nmap
//! type: cli
//! args: "{flags} {target}"
//! description: Network scanner for port scanning and service detection
//! timeout: 300
//! ```
//!
//! Each `{placeholder}` becomes a keyword parameter. The argv is built token by
//! token and handed to the program directly, so no value is ever interpreted by a
//! shell: `target="x; touch pwned"` reaches the program as plain arguments.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{CallableInfo, MAX_TOOL_OUTPUT, OutputCap, ToolAdapter, ToolInfo};
use crate::error::{Result, ToolError};
use crate::process::kill_group;
use crate::skills::ParamInfo;

/// Timeout of a CLI tool whose definition sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_mins(1);
/// How long to keep reading output after the tool exits: a grandchild it left
/// running may hold the pipes open forever.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of stderr a failure message quotes.
const ERROR_EXCERPT: usize = 2000;

/// A CLI tool definition as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The program to run; defaults to `name`.
    #[serde(default)]
    pub command: Option<String>,
    /// The argument template: a string split like a shell would (without
    /// expanding anything), or a list of tokens.
    #[serde(default)]
    pub args: Option<ArgsTemplate>,
    #[serde(default)]
    pub description: String,
    /// Seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Optional documentation of the placeholders.
    #[serde(default)]
    pub parameters: BTreeMap<String, ParamSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ArgsTemplate {
    Line(String),
    Tokens(Vec<String>),
}

/// What a definition may say about one placeholder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(rename = "type", default)]
    pub ty: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(String),
}

/// A CLI tool ready to run.
#[derive(Debug)]
pub struct CliTool {
    spec: CliSpec,
    command: String,
    template: Vec<Vec<Segment>>,
    parameters: Vec<ParamInfo>,
    timeout: Duration,
}

impl CliTool {
    pub fn new(spec: CliSpec) -> Result<Self, String> {
        let tokens = match &spec.args {
            None => Vec::new(),
            Some(ArgsTemplate::Tokens(tokens)) => tokens.clone(),
            Some(ArgsTemplate::Line(line)) => {
                shell_words::split(line).map_err(|e| format!("`args`: {e}"))?
            }
        };
        let template = tokens
            .iter()
            .map(|t| parse_token(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut parameters: Vec<ParamInfo> = Vec::new();
        for segment in template.iter().flatten() {
            if let Segment::Placeholder(name) = segment
                && !parameters.iter().any(|p| &p.name == name)
            {
                let doc = spec.parameters.get(name).cloned().unwrap_or_default();
                parameters.push(ParamInfo {
                    name: name.clone(),
                    ty: doc.ty.unwrap_or_else(|| "string".into()),
                    required: doc.required,
                    default: doc.default,
                    description: doc.description,
                });
            }
        }
        if let Some(unknown) = spec
            .parameters
            .keys()
            .find(|k| !parameters.iter().any(|p| &p.name == *k))
        {
            return Err(format!(
                "`parameters` documents `{unknown}`, which `args` does not use"
            ));
        }
        let timeout = match spec.timeout {
            None => DEFAULT_TIMEOUT,
            Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
            Some(s) => {
                return Err(format!(
                    "`timeout` must be a positive number of seconds, not {s}"
                ));
            }
        };
        Ok(Self {
            command: spec.command.clone().unwrap_or_else(|| spec.name.clone()),
            spec,
            template,
            parameters,
            timeout,
        })
    }

    /// The argv (without the program) for these arguments.
    pub fn build_argv(&self, args: &Map<String, Value>) -> Result<Vec<String>, ToolError> {
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: self.spec.name.clone(),
            message,
        };
        if let Some(unknown) = args
            .keys()
            .find(|k| !self.parameters.iter().any(|p| &p.name == *k))
        {
            let accepted: Vec<_> = self.parameters.iter().map(|p| p.name.as_str()).collect();
            return Err(invalid(format!(
                "unexpected argument `{unknown}` (accepted: {})",
                if accepted.is_empty() {
                    "none".to_owned()
                } else {
                    accepted.join(", ")
                }
            )));
        }
        let value_of = |name: &str| -> Option<Value> {
            match args.get(name) {
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => self
                    .parameters
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.default.clone()),
            }
        };
        for p in self.parameters.iter().filter(|p| p.required) {
            if value_of(&p.name).is_none() {
                return Err(invalid(format!("missing required argument `{}`", p.name)));
            }
        }
        let mut argv = Vec::new();
        for token in &self.template {
            if let [Segment::Placeholder(name)] = token.as_slice() {
                // A whole-token placeholder may expand to several arguments.
                match value_of(name) {
                    None | Some(Value::Bool(false)) => {}
                    Some(Value::Array(items)) => {
                        for item in items {
                            argv.push(scalar(name, &item).map_err(invalid)?);
                        }
                    }
                    // Split like a shell splits words (quotes respected, nothing
                    // expanded), so `flags="-sV -T4"` gives two flags. Nothing
                    // here can run a command: the words go to the program as-is.
                    Some(Value::String(s)) => match shell_words::split(&s) {
                        Ok(words) => argv.extend(words),
                        Err(_) => argv.push(s),
                    },
                    Some(other) => argv.push(scalar(name, &other).map_err(invalid)?),
                }
                continue;
            }
            let mut arg = String::new();
            let mut complete = true;
            for segment in token {
                match segment {
                    Segment::Literal(text) => arg.push_str(text),
                    Segment::Placeholder(name) => match value_of(name) {
                        Some(v) => arg.push_str(&scalar(name, &v).map_err(invalid)?),
                        None => complete = false,
                    },
                }
            }
            // `--port={port}` without a port is left out rather than sent half-filled.
            if complete {
                argv.push(arg);
            }
        }
        Ok(argv)
    }
}

fn scalar(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "argument `{name}` must be a string, number or boolean here, not {other}"
        )),
    }
}

fn parse_token(token: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!("`args`: bad placeholder `{{{name}}}` in `{token}`"));
                }
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Placeholder(name));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

#[async_trait]
impl ToolAdapter for CliTool {
    fn name(&self) -> &str {
        &self.spec.name
    }

    async fn info(&self) -> Result<ToolInfo> {
        Ok(ToolInfo {
            name: self.spec.name.clone(),
            kind: "cli".into(),
            description: self.spec.description.clone(),
            tags: self.spec.tags.clone(),
            callables: vec![CallableInfo {
                name: self.spec.name.clone(),
                description: self.spec.description.clone(),
                parameters: self.parameters.clone(),
            }],
        })
    }

    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value> {
        let name = &self.spec.name;
        if let Some(callable) = callable {
            return Err(ToolError::NotFound {
                name: format!("{name}.{callable}"),
            }
            .into());
        }
        let argv = self.build_argv(&args)?;
        tracing::debug!(tool = %name, command = %self.command, ?argv, "running CLI tool");
        let mut child = tokio::process::Command::new(&self.command)
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ToolError::Spawn {
                tool: name.clone(),
                command: self.command.clone(),
                source,
            })?;
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .map(|s| tokio::spawn(OutputCap::read(s, MAX_TOOL_OUTPUT)));
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(OutputCap::read(s, MAX_TOOL_OUTPUT)));
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.map_err(|source| ToolError::Spawn {
                tool: name.clone(),
                command: self.command.clone(),
                source,
            })?,
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                for task in stdout.iter().chain(&stderr) {
                    task.abort();
                }
                return Err(ToolError::Timeout {
                    tool: name.clone(),
                    seconds: self.timeout.as_secs_f64(),
                }
                .into());
            }
        };
        let drain = |task: Option<tokio::task::JoinHandle<OutputCap>>| async move {
            match task {
                Some(task) => tokio::time::timeout(DRAIN_TIMEOUT, task)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default(),
                None => OutputCap::default(),
            }
        };
        let (stdout, stderr) = (drain(stdout).await, drain(stderr).await);
        if let Some(pid) = pid {
            kill_group(pid); // grandchildren left behind do not outlive the call
        }
        if status.success() {
            return Ok(Value::String(stdout.into_text()));
        }
        let stderr = stderr.into_text();
        let excerpt = if stderr.trim().is_empty() {
            stdout.into_text()
        } else {
            stderr
        };
        let excerpt = tail(&excerpt, ERROR_EXCERPT);
        Err(ToolError::Failed {
            tool: name.clone(),
            message: format!(
                "`{}` exited with {status}: {}",
                self.command,
                excerpt.trim()
            ),
        }
        .into())
    }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn tool(yaml: &str) -> CliTool {
        let spec: CliSpec = yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        CliTool::new(spec).unwrap_or_else(|e| panic!("{e}"))
    }

    fn args(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn seed_template_builds_argv_without_a_shell() -> Result<(), ToolError> {
        let nmap = tool("name: nmap\ntype: cli\nargs: \"{flags} {target}\"\n");
        assert_eq!(
            nmap.build_argv(&args(&json!({"target": "10.0.0.1", "flags": "-sV -T4"})))?,
            ["-sV", "-T4", "10.0.0.1"]
        );
        assert_eq!(
            nmap.build_argv(&args(&json!({"target": "10.0.0.1"})))?,
            ["10.0.0.1"]
        );
        assert_eq!(
            nmap.build_argv(&args(
                &json!({"target": "x; touch pwned", "flags": ["-p", "1-100"]})
            ))?,
            ["-p", "1-100", "x;", "touch", "pwned"]
        );
        Ok(())
    }

    #[test]
    fn embedded_placeholders_and_literals() -> Result<(), ToolError> {
        let t = tool("name: t\nargs: ['--port={port}', 'literal {{x}}', '{name}']\n");
        assert_eq!(
            t.build_argv(&args(&json!({"port": 80, "name": "a b"})))?,
            ["--port=80", "literal {x}", "a", "b"]
        );
        assert_eq!(t.build_argv(&args(&json!({})))?, ["literal {x}"]);
        Ok(())
    }

    #[test]
    fn rejects_unknown_and_missing_arguments() {
        let t = tool(
            "name: t\nargs: '{target}'\nparameters:\n  target: {required: true, description: host}\n",
        );
        let err = t
            .build_argv(&args(&json!({"tgt": "x"})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "tool `t`: unexpected argument `tgt` (accepted: target)"
        );
        let err = t.build_argv(&args(&json!({}))).unwrap_err().to_string();
        assert_eq!(err, "tool `t`: missing required argument `target`");
    }
}
