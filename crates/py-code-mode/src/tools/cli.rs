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
//!
//! The later form describes the program's options and names recipes, presets
//! of them that agents call as `tools.curl.get(url=...)`:
//!
//! ```yaml
//! name: curl
//! command: curl
//! schema:
//!   options:
//!     silent: {type: boolean, short: s, description: Silent mode}
//!     header: {type: array, short: H}
//!     max-time: {type: integer}          # --max-time, called as max_time=
//!   positional:
//!     - {name: url, type: string, required: true}
//! recipes:
//!   get:
//!     description: GET a URL quietly
//!     preset: {silent: true}
//!     params: {url: {}}
//! ```
//!
//! An option's flag is its `flag` when given, else `-<short>`, else `-x` for a
//! one-letter name and `--name` for a longer one. Options come first, in the
//! schema's order, then the positionals. `tools.curl(**options)` reaches every
//! option directly.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{CallableInfo, MAX_TOOL_OUTPUT, OutputCap, ToolAdapter, ToolInfo, parse_timeout};
use crate::error::{Result, ToolError};
use crate::skills::ParamInfo;
use crate::spawn::kill_tree;

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
    /// The program's options and positionals (the form with recipes).
    #[serde(default)]
    pub schema: Option<CliSchema>,
    /// Named presets of the schema, called as `tools.<name>.<recipe>(...)`.
    #[serde(default)]
    pub recipes: Ordered<RecipeSpec>,
}

/// A YAML mapping that keeps its order (options become flags in this order).
#[derive(Debug, Clone)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    items.push(entry);
                }
                Ok(Ordered(items))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// The options and positionals of a CLI program.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliSchema {
    #[serde(default)]
    pub options: Ordered<OptionSpec>,
    #[serde(default)]
    pub positional: Vec<PositionalSpec>,
}

/// The type of an option or positional value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Boolean,
    #[default]
    String,
    Integer,
    Number,
    Array,
}

impl ValueType {
    fn name(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Array => "array",
        }
    }
}

/// One option of a CLI program.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    #[serde(rename = "type", default)]
    pub ty: ValueType,
    /// A one-letter alias: `short: s` gives `-s`.
    #[serde(default)]
    pub short: Option<String>,
    /// The exact flag, when it is neither `-x` nor `--name` (`-sV`, `+short`).
    #[serde(default)]
    pub flag: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
}

impl OptionSpec {
    fn flag(&self, name: &str) -> String {
        match (&self.flag, &self.short) {
            (Some(flag), _) => flag.clone(),
            (None, Some(short)) => format!("-{short}"),
            (None, None) if name.chars().count() == 1 => format!("-{name}"),
            (None, None) => format!("--{name}"),
        }
    }
}

/// One positional argument, after the options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionalSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub ty: ValueType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default: Option<Value>,
}

/// A named preset: fixed option values plus the parameters the caller gives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub preset: Map<String, Value>,
    #[serde(default)]
    pub params: Ordered<ParamSpec>,
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

impl ParamSpec {
    pub(crate) fn into_info(self, name: String) -> ParamInfo {
        ParamInfo {
            name,
            ty: self.ty.unwrap_or_else(|| "string".into()),
            required: self.required,
            default: self.default,
            description: self.description,
        }
    }
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
        if let Some(schema) = &spec.schema {
            return Self::with_schema(&schema.clone(), spec);
        }
        if !spec.recipes.0.is_empty() {
            return Err("`recipes` need a `schema` describing the options they set".into());
        }
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
        let timeout = parse_timeout(spec.timeout, DEFAULT_TIMEOUT)?;
        Ok(Self {
            command: spec.command.clone().unwrap_or_else(|| spec.name.clone()),
            spec,
            template,
            parameters,
            timeout,
        })
    }

    fn with_schema(schema: &CliSchema, spec: CliSpec) -> Result<Self, String> {
        if spec.args.is_some() {
            return Err("give either `args` (a template) or `schema`, not both".into());
        }
        if !spec.parameters.is_empty() {
            return Err(
                "`parameters` documents `args` placeholders; with `schema`, describe options there"
                    .into(),
            );
        }
        let mut parameters: Vec<ParamInfo> = Vec::new();
        for (name, option) in &schema.options.0 {
            parameters.push(ParamInfo {
                name: py_name(name),
                ty: option.ty.name().into(),
                required: option.required,
                default: option.default.clone(),
                description: option.description.clone(),
            });
        }
        for p in &schema.positional {
            parameters.push(ParamInfo {
                name: py_name(&p.name),
                ty: p.ty.name().into(),
                required: p.required,
                default: p.default.clone(),
                description: p.description.clone(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = parameters.iter().find(|p| !seen.insert(p.name.as_str())) {
            return Err(format!("`schema` names `{}` twice", dup.name));
        }
        for (recipe, r) in &spec.recipes.0 {
            let known = |k: &str| parameters.iter().any(|p| p.name == py_name(k));
            if let Some(k) = r.preset.keys().find(|k| !known(k)) {
                return Err(format!(
                    "recipe `{recipe}`: `preset` sets `{k}`, which `schema` does not describe"
                ));
            }
            if let Some((k, _)) = r.params.0.iter().find(|(k, _)| !known(k)) {
                return Err(format!(
                    "recipe `{recipe}`: `params` names `{k}`, which `schema` does not describe"
                ));
            }
        }
        let timeout = parse_timeout(spec.timeout, DEFAULT_TIMEOUT)?;
        Ok(Self {
            command: spec.command.clone().unwrap_or_else(|| spec.name.clone()),
            spec,
            template: Vec::new(),
            parameters,
            timeout,
        })
    }

    /// The argv (without the program) of recipe `recipe` with these arguments.
    pub fn recipe_argv(
        &self,
        recipe: &str,
        args: &Map<String, Value>,
    ) -> Result<Vec<String>, ToolError> {
        let Some((_, spec)) = self.spec.recipes.0.iter().find(|(n, _)| n == recipe) else {
            return Err(ToolError::NotFound {
                name: format!("{}.{recipe}", self.spec.name),
            });
        };
        if let Some(unknown) = args
            .keys()
            .find(|k| !spec.params.0.iter().any(|(p, _)| py_name(p) == **k))
        {
            let accepted: Vec<String> = spec.params.0.iter().map(|(p, _)| py_name(p)).collect();
            return Err(ToolError::InvalidArguments {
                tool: format!("{}.{recipe}", self.spec.name),
                message: format!(
                    "unexpected argument `{unknown}` (accepted: {}; `tools.{}(...)` takes every option)",
                    if accepted.is_empty() {
                        "none".to_owned()
                    } else {
                        accepted.join(", ")
                    },
                    self.spec.name
                ),
            });
        }
        let mut values: Map<String, Value> = spec
            .preset
            .iter()
            .map(|(k, v)| (py_name(k), v.clone()))
            .collect();
        for (name, param) in &spec.params.0 {
            let key = py_name(name);
            match args.get(&key) {
                Some(v) if !v.is_null() => {
                    values.insert(key, v.clone());
                }
                _ => match &param.default {
                    Some(default) => {
                        values.insert(key, default.clone());
                    }
                    None if param.required => {
                        return Err(ToolError::InvalidArguments {
                            tool: format!("{}.{recipe}", self.spec.name),
                            message: format!("missing required argument `{key}`"),
                        });
                    }
                    None => {}
                },
            }
        }
        self.schema_argv(&values)
    }

    /// The argv (without the program) for options and positionals given by name.
    pub fn schema_argv(&self, args: &Map<String, Value>) -> Result<Vec<String>, ToolError> {
        let schema = self.spec.schema.clone().unwrap_or_default();
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
                accepted.join(", ")
            )));
        }
        let value_of = |name: &str, default: &Option<Value>| -> Option<Value> {
            match args.get(&py_name(name)) {
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => default.clone(),
            }
        };
        let mut argv = Vec::new();
        for (name, option) in &schema.options.0 {
            let key = py_name(name);
            let Some(value) = value_of(name, &option.default) else {
                if option.required {
                    return Err(invalid(format!("missing required argument `{key}`")));
                }
                continue;
            };
            let flag = option.flag(name);
            match (option.ty, &value) {
                (ValueType::Boolean, Value::Bool(true)) => argv.push(flag),
                (ValueType::Boolean, Value::Bool(false)) => {}
                (ValueType::Boolean, other) => {
                    return Err(invalid(format!(
                        "`{key}` is a flag: pass True or False, not {other}"
                    )));
                }
                (ValueType::Array, Value::Array(items)) => {
                    for item in items {
                        argv.push(flag.clone());
                        argv.push(typed(&key, ValueType::String, item).map_err(invalid)?);
                    }
                }
                (ty, value) => {
                    let ty = if ty == ValueType::Array {
                        ValueType::String
                    } else {
                        ty
                    };
                    argv.push(flag);
                    argv.push(typed(&key, ty, value).map_err(invalid)?);
                }
            }
        }
        for p in &schema.positional {
            let key = py_name(&p.name);
            match (p.ty, value_of(&p.name, &p.default)) {
                (_, None) if p.required => {
                    return Err(invalid(format!("missing required argument `{key}`")));
                }
                (_, None) => {}
                (ValueType::Array, Some(Value::Array(items))) => {
                    for item in &items {
                        argv.push(typed(&key, ValueType::String, item).map_err(invalid)?);
                    }
                }
                (ty, Some(value)) => {
                    let ty = if ty == ValueType::Array {
                        ValueType::String
                    } else {
                        ty
                    };
                    argv.push(typed(&key, ty, &value).map_err(invalid)?);
                }
            }
        }
        Ok(argv)
    }

    /// The recipes as callables, parameters described by the schema.
    fn recipe_infos(&self) -> Vec<CallableInfo> {
        self.spec
            .recipes
            .0
            .iter()
            .map(|(name, recipe)| CallableInfo {
                name: name.clone(),
                description: recipe.description.clone(),
                parameters: recipe
                    .params
                    .0
                    .iter()
                    .map(|(p, spec)| {
                        let key = py_name(p);
                        let base = self.parameters.iter().find(|i| i.name == key);
                        ParamInfo {
                            ty: spec
                                .ty
                                .clone()
                                .or_else(|| base.map(|b| b.ty.clone()))
                                .unwrap_or_else(|| "string".into()),
                            required: spec.required
                                || (spec.default.is_none() && base.is_some_and(|b| b.required)),
                            default: spec.default.clone(),
                            description: if spec.description.is_empty() {
                                base.map(|b| b.description.clone()).unwrap_or_default()
                            } else {
                                spec.description.clone()
                            },
                            name: key,
                        }
                    })
                    .collect(),
            })
            .collect()
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

/// How agent code spells an option: `max-time` is called as `max_time=`.
fn py_name(name: &str) -> String {
    name.replace('-', "_")
}

fn typed(name: &str, ty: ValueType, value: &Value) -> Result<String, String> {
    match (ty, value) {
        (ValueType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        (ValueType::Integer, Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Ok(s.trim().to_owned())
        }
        (ValueType::Integer, other) => Err(format!("`{name}` must be an integer, not {other}")),
        (ValueType::Number, Value::Number(n)) => Ok(n.to_string()),
        (ValueType::Number, other) => Err(format!("`{name}` must be a number, not {other}")),
        (_, other) => scalar(name, other),
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
            callables: std::iter::once(CallableInfo {
                name: self.spec.name.clone(),
                description: self.spec.description.clone(),
                parameters: self.parameters.clone(),
            })
            .chain(self.recipe_infos())
            .collect(),
        })
    }

    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value> {
        let name = &self.spec.name;
        let argv = match (callable, &self.spec.schema) {
            (Some(recipe), _) => self.recipe_argv(recipe, &args)?,
            (None, Some(_)) => self.schema_argv(&args)?,
            (None, None) => self.build_argv(&args)?,
        };
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
                    kill_tree(pid);
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
            kill_tree(pid); // grandchildren left behind do not outlive the call
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

    const CURL: &str = r"
name: curl
command: curl
schema:
  options:
    silent: {type: boolean, short: s}
    location: {type: boolean, short: L}
    header: {type: array, short: H}
    request: {type: string, short: X}
    max-time: {type: integer}
    v: {type: boolean}
    sV: {type: boolean, flag: '-sV'}
  positional:
    - {name: url, type: string, required: true}
    - {name: more, type: array}
recipes:
  get:
    description: GET quietly
    preset: {silent: true, location: true}
    params: {url: {}}
  post:
    preset: {request: POST}
    params: {url: {}, header: {default: ['Accept: */*']}}
";

    #[test]
    fn schema_options_become_exact_flags() -> Result<(), ToolError> {
        let curl = tool(CURL);
        assert_eq!(
            curl.schema_argv(&args(&json!({
                "url": "http://x", "more": ["a", "b c"], "header": ["A: 1", "B: 2"],
                "max_time": 5, "v": true, "sV": true, "silent": false, "request": "PUT"
            })))?,
            [
                "-H",
                "A: 1",
                "-H",
                "B: 2",
                "-X",
                "PUT",
                "--max-time",
                "5",
                "-v",
                "-sV",
                "http://x",
                "a",
                "b c"
            ]
        );
        let err = curl
            .schema_argv(&args(&json!({"max_time": "soon", "url": "u"})))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tool `curl`: `max_time` must be an integer, not \"soon\""
        );
        let err = curl
            .schema_argv(&args(&json!({"silent": true})))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tool `curl`: missing required argument `url`"
        );
        Ok(())
    }

    #[test]
    fn recipes_apply_presets_and_accept_only_their_params() -> Result<(), ToolError> {
        let curl = tool(CURL);
        assert_eq!(
            curl.recipe_argv("get", &args(&json!({"url": "http://x"})))?,
            ["-s", "-L", "http://x"]
        );
        assert_eq!(
            curl.recipe_argv("post", &args(&json!({"url": "u"})))?,
            ["-H", "Accept: */*", "-X", "POST", "u"]
        );
        let err = curl
            .recipe_argv("get", &args(&json!({"url": "u", "request": "PUT"})))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tool `curl.get`: unexpected argument `request` (accepted: url; `tools.curl(...)` takes every option)"
        );
        assert!(matches!(
            curl.recipe_argv("nope", &Map::new()),
            Err(ToolError::NotFound { .. })
        ));
        Ok(())
    }

    #[test]
    fn schema_mistakes_are_definition_errors() {
        let spec = |yaml: &str| -> CliSpec {
            yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
        };
        let err = CliTool::new(spec(
            "name: t
schema: {options: {a: {}}}
recipes: {r: {preset: {b: 1}}}
",
        ))
        .err();
        assert_eq!(
            err.as_deref(),
            Some("recipe `r`: `preset` sets `b`, which `schema` does not describe")
        );
        let err = CliTool::new(spec(
            "name: t
recipes: {r: {}}
",
        ))
        .err();
        assert_eq!(
            err.as_deref(),
            Some("`recipes` need a `schema` describing the options they set")
        );
    }
}
