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
//! shell: `target="x; touch pwned"` reaches the program as one argument. Nor is a
//! value ever an option unless its placeholder takes flags (`{flags}`): see
//! [`template`].
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
//!
//! Layout: [`spec`] (the YAML types), [`template`] (`args:` → argv), [`schema`]
//! (`schema:`/`recipes:` → argv), [`run`] (the process under the spawn policy,
//! capped output, timeout, cancel-safe).

mod run;
mod schema;
mod spec;
mod template;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

pub use spec::{CliSpec, ParamSpec, ValueType};
use template::Template;

use super::{CallableInfo, ToolAdapter, ToolInfo, ToolKind, parse_timeout, substitute_env};
use crate::error::{Result, ToolError};
use crate::skills::ParamInfo;

/// Timeout of a CLI tool whose definition sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_mins(1);

/// A CLI tool ready to run.
#[derive(Debug)]
pub struct CliTool {
    spec: CliSpec,
    command: String,
    template: Template,
    parameters: Vec<ParamInfo>,
    timeout: Duration,
}

impl CliTool {
    pub fn new(spec: CliSpec) -> Result<Self, String> {
        let (template, parameters) = match &spec.schema {
            Some(schema) => (Template::default(), schema::parameters(schema, &spec)?),
            None if !spec.recipes.0.is_empty() => {
                return Err("`recipes` need a `schema` describing the options they set".into());
            }
            None => Template::parse(&spec)?,
        };
        let timeout = parse_timeout(spec.timeout, DEFAULT_TIMEOUT)?;
        Ok(Self {
            command: spec.command.clone().unwrap_or_else(|| spec.name.clone()),
            spec,
            template,
            parameters,
            timeout,
        })
    }

    /// The argv (without the program) for these arguments, from the `args:`
    /// template.
    pub fn build_argv(&self, args: &Map<String, Value>) -> Result<Vec<String>, ToolError> {
        self.template.argv(&self.spec.name, &self.parameters, args)
    }

    /// The tool's `env:`, with `${VAR}` read from the host's environment now.
    fn env(&self) -> Result<Vec<(String, String)>, ToolError> {
        self.spec
            .env
            .iter()
            .map(|(key, value)| Ok((key.clone(), substitute_env(value)?)))
            .collect::<Result<_, String>>()
            .map_err(|message| ToolError::Failed {
                tool: self.spec.name.clone(),
                message,
            })
    }
}

#[async_trait]
impl ToolAdapter for CliTool {
    fn name(&self) -> &str {
        &self.spec.name
    }

    async fn info(&self) -> Result<ToolInfo> {
        Ok(ToolInfo {
            name: self.spec.name.clone(),
            kind: ToolKind::Cli,
            description: self.spec.description.clone(),
            tags: self.spec.tags.clone(),
            callables: std::iter::once(CallableInfo {
                name: self.spec.name.clone(),
                description: self.spec.description.clone(),
                parameters: self.parameters.clone(),
            })
            .chain(self.recipe_infos())
            .collect(),
            unavailable: None,
        })
    }

    async fn call(&self, callable: Option<&str>, args: Map<String, Value>) -> Result<Value> {
        let argv = match (callable, &self.spec.schema) {
            (Some(recipe), _) => self.recipe_argv(recipe, &args)?,
            (None, Some(_)) => self.schema_argv(&args)?,
            (None, None) => self.build_argv(&args)?,
        };
        tracing::debug!(tool = %self.spec.name, command = %self.command, ?argv, "running CLI tool");
        let run = run::Run {
            tool: &self.spec.name,
            command: &self.command,
            argv,
            env: self.env()?,
            timeout: self.timeout,
        };
        Ok(run.output().await?)
    }
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
            ["-p", "1-100", "x; touch pwned"]
        );
        Ok(())
    }

    #[test]
    fn a_value_is_one_word_and_never_an_option() -> Result<(), ToolError> {
        let wc = tool("name: wc\nargs: '{flags} {path}'\n");
        // The attack on `examples/base`'s `word_count`: before, the value was
        // split into words and became `wc --files0-from=/proc/self/environ`.
        assert_eq!(
            wc.build_argv(&args(
                &json!({"path": "--files0-from=/proc/self/environ", "flags": "-l -w"})
            ))?,
            ["-l", "-w", "--", "--files0-from=/proc/self/environ"]
        );
        assert_eq!(
            wc.build_argv(&args(&json!({"path": "a file -l"})))?,
            ["a file -l"]
        );
        assert_eq!(wc.build_argv(&args(&json!({"path": "-"})))?, ["-"]);
        assert_eq!(
            wc.build_argv(&args(&json!({"path": ["a", "-b"]})))?,
            ["a", "--", "-b"]
        );
        // An option the author wrote after the value: no `--` is possible.
        let grep = tool("name: grep\nargs: ['{pattern}', '-r', '{dir}']\n");
        let err = grep
            .build_argv(&args(&json!({"pattern": "-f/etc/shadow", "dir": "."})))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "tool `grep`: the value of `pattern` starts with `-` (`-f/etc/shadow`)"
            ),
            "{err}"
        );
        // A literal `--` already ends the options.
        let grep = tool("name: grep\nargs: ['-r', '--', '{pattern}', '{dir}']\n");
        assert_eq!(
            grep.build_argv(&args(&json!({"pattern": "-x", "dir": "."})))?,
            ["-r", "--", "-x", "."]
        );
        // A value inside a token the author starts is that option's value.
        let t = tool("name: t\nargs: ['--port={port}', '{a}{b}']\n");
        assert_eq!(
            t.build_argv(&args(&json!({"port": "-1", "a": "-x", "b": "y"})))?,
            ["--port=-1", "--", "-xy"]
        );
        Ok(())
    }

    #[test]
    fn only_placeholders_that_take_flags_split_their_values() -> Result<(), ToolError> {
        let t = tool(
            "name: t\nargs: '{opts} {flags} {target}'\nparameters:\n  opts: {flags: true}\n  flags: {flags: false}\n",
        );
        assert_eq!(
            t.build_argv(&args(
                &json!({"opts": "-a -b", "flags": "c d", "target": "x"})
            ))?,
            ["-a", "-b", "c d", "x"]
        );
        let err = CliTool::new(
            yaml_serde::from_str("name: t\nargs: ['--x={flags}']\n")
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .err();
        assert_eq!(
            err.as_deref(),
            Some("`{flags}` takes flags, so it must be a whole token of `args`, not part of one")
        );
        Ok(())
    }

    #[test]
    fn embedded_placeholders_and_literals() -> Result<(), ToolError> {
        let t = tool("name: t\nargs: ['--port={port}', 'literal {{x}}', '{name}']\n");
        assert_eq!(
            t.build_argv(&args(&json!({"port": 80, "name": "a b"})))?,
            ["--port=80", "literal {x}", "a b"]
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
        // A positional that looks like an option comes after `--`; an
        // option's value is the option's argument.
        assert_eq!(
            curl.schema_argv(&args(&json!({"url": "-K/etc/passwd", "request": "-v"})))?,
            ["-X", "-v", "--", "-K/etc/passwd"]
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
