//! The one RPC protocol between a Python runtime and the host.
//!
//! Newline-delimited JSON; every message is an object tagged by `kind`. The host
//! sends `execute`, `reset` and `response`; the runtime sends `ready`, `call` and
//! `result`. Calls carry a runtime-chosen `id` so several can be outstanding at
//! once. The same [`HostCall`] enum serves every executor: the subprocess worker
//! sends it over a pipe, the in-process executor hands it over directly. The
//! Python side is `python/py_code_mode_runtime.py`; docs/protocol.md has the prose.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::artifacts::ArtifactData;

/// Bumped whenever a message changes shape; the worker reports it in `ready`.
pub const PROTOCOL_VERSION: u32 = 2;

/// A message from the host to a runtime.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostMessage {
    /// Run a cell of agent code.
    Execute { id: u64, code: String },
    /// Forget every variable the agent defined.
    Reset { id: u64 },
    /// The answer to a [`RuntimeMessage::Call`].
    Response {
        id: u64,
        #[serde(flatten)]
        outcome: CallOutcome,
        /// What tools said during the call (an MCP server's progress and log
        /// messages), for the run's stderr; absent when nothing.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notices: Vec<String>,
    },
}

/// A message from a runtime to the host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuntimeMessage {
    /// The worker started and is ready for `execute`.
    Ready {
        protocol: u32,
        pid: u32,
        python: String,
    },
    /// Agent code asks the host for something.
    Call {
        id: u64,
        #[serde(flatten)]
        call: HostCall,
    },
    /// The outcome of an `execute` or `reset`.
    Result { id: u64, result: RawRunResult },
    /// Output of the run in flight written since the last `output` (a long
    /// run's, at most twice a second), before its `result` — which still
    /// carries all of it.
    Output {
        id: u64,
        #[serde(default)]
        stdout: String,
        #[serde(default)]
        stderr: String,
    },
}

/// The result of a cell as the runtime reports it; the host adds what only it knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RawRunResult {
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub repr: Option<String>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub error: Option<crate::ExecutionError>,
    #[serde(default)]
    pub duration_ms: f64,
}

impl RawRunResult {
    /// The result every executor returns for a run that finished, with the
    /// duration the host measured: one conversion, one result shape.
    pub fn finish(self, duration_ms: f64) -> crate::ExecutionResult {
        crate::ExecutionResult {
            value: self.value,
            repr: self.repr,
            stdout: self.stdout,
            stderr: self.stderr,
            error: self.error,
            duration_ms,
            state_reset: false,
        }
    }
}

/// Either `{"ok": value}` or `{"error": {"type", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Ok(Value),
    Error(CallError),
}

/// An error the runtime raises in agent code as the Python exception named `type`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CallError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// How a skill run ended, as a recorded case keeps it: its result (as JSON,
/// or `{"$repr": ...}` for what JSON cannot hold) or the exception it raised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    Result(Value),
    Error(CallError),
}

fn default_tool_limit() -> usize {
    10
}

fn default_skill_limit() -> usize {
    5
}

/// Everything agent code can ask of the host: one variant per namespace method.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "method", content = "params")]
pub enum HostCall {
    #[serde(rename = "tools.list")]
    ToolsList {},
    #[serde(rename = "tools.search")]
    ToolsSearch {
        query: String,
        #[serde(default = "default_tool_limit")]
        limit: usize,
    },
    #[serde(rename = "tools.call")]
    ToolsCall {
        name: String,
        #[serde(default)]
        args: Map<String, Value>,
    },
    #[serde(rename = "skills.list")]
    SkillsList {},
    #[serde(rename = "skills.search")]
    SkillsSearch {
        query: String,
        #[serde(default = "default_skill_limit")]
        limit: usize,
    },
    #[serde(rename = "skills.get")]
    SkillsGet {
        name: String,
        /// A kept version instead of the current one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
    },
    #[serde(rename = "skills.create")]
    SkillsCreate {
        name: String,
        source: String,
        #[serde(default)]
        description: String,
    },
    #[serde(rename = "skills.delete")]
    SkillsDelete { name: String },
    /// A skill's kept versions, newest first.
    #[serde(rename = "skills.history")]
    SkillsHistory { name: String },
    /// Saves kept version `version` as a new version.
    #[serde(rename = "skills.rollback")]
    SkillsRollback { name: String, version: u64 },
    /// Starts recording case `case` of skill `name`, run with `kwargs`: the
    /// host keeps every tool call until [`HostCall::SkillsRecordEnd`].
    #[serde(rename = "skills.record_begin")]
    SkillsRecordBegin {
        name: String,
        case: String,
        #[serde(default)]
        kwargs: Map<String, Value>,
    },
    /// Ends a recording with the skill's outcome and stores the case.
    #[serde(rename = "skills.record_end")]
    SkillsRecordEnd { outcome: CaseOutcome },
    /// The recorded cases of a skill: `[{case, kwargs}]`.
    #[serde(rename = "skills.cases")]
    SkillsCases { name: String },
    /// Starts replaying a case: tool calls are answered from the recording
    /// until [`HostCall::SkillsReplayEnd`]; returns the case's `kwargs`.
    #[serde(rename = "skills.replay_begin")]
    SkillsReplayBegin { name: String, case: String },
    /// Ends a replay with the skill's outcome; returns `{case, ok, diff}`.
    #[serde(rename = "skills.replay_end")]
    SkillsReplayEnd { outcome: CaseOutcome },
    #[serde(rename = "artifacts.save")]
    ArtifactsSave {
        name: String,
        data: ArtifactData,
        #[serde(default)]
        description: String,
        #[serde(default)]
        metadata: Map<String, Value>,
    },
    #[serde(rename = "artifacts.load")]
    ArtifactsLoad { name: String },
    #[serde(rename = "artifacts.list")]
    ArtifactsList {},
    #[serde(rename = "artifacts.exists")]
    ArtifactsExists { name: String },
    #[serde(rename = "artifacts.delete")]
    ArtifactsDelete { name: String },
    #[serde(rename = "deps.list")]
    DepsList {},
    #[serde(rename = "deps.add")]
    DepsAdd { specs: Vec<String> },
    #[serde(rename = "deps.remove")]
    DepsRemove { names: Vec<String> },
    #[serde(rename = "deps.sync")]
    DepsSync {},
}

impl HostCall {
    /// The method name as it appears on the wire, for logs.
    pub fn method(&self) -> &'static str {
        match self {
            Self::ToolsList {} => "tools.list",
            Self::ToolsSearch { .. } => "tools.search",
            Self::ToolsCall { .. } => "tools.call",
            Self::SkillsList {} => "skills.list",
            Self::SkillsSearch { .. } => "skills.search",
            Self::SkillsGet { .. } => "skills.get",
            Self::SkillsCreate { .. } => "skills.create",
            Self::SkillsDelete { .. } => "skills.delete",
            Self::SkillsHistory { .. } => "skills.history",
            Self::SkillsRollback { .. } => "skills.rollback",
            Self::SkillsRecordBegin { .. } => "skills.record",
            Self::SkillsRecordEnd { .. } => "skills.record",
            Self::SkillsCases { .. } => "skills.test",
            Self::SkillsReplayBegin { .. } => "skills.test",
            Self::SkillsReplayEnd { .. } => "skills.test",
            Self::ArtifactsSave { .. } => "artifacts.save",
            Self::ArtifactsLoad { .. } => "artifacts.load",
            Self::ArtifactsList {} => "artifacts.list",
            Self::ArtifactsExists { .. } => "artifacts.exists",
            Self::ArtifactsDelete { .. } => "artifacts.delete",
            Self::DepsList {} => "deps.list",
            Self::DepsAdd { .. } => "deps.add",
            Self::DepsRemove { .. } => "deps.remove",
            Self::DepsSync {} => "deps.sync",
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn call_round_trips_in_the_shape_the_runtime_sends() -> Result<(), serde_json::Error> {
        let wire = json!({"kind": "call", "id": 7, "method": "tools.call",
                          "params": {"name": "nmap", "args": {"target": "10.0.0.1"}}});
        let message: RuntimeMessage = serde_json::from_value(wire.clone())?;
        let mut args = Map::new();
        args.insert("target".into(), json!("10.0.0.1"));
        assert_eq!(
            message,
            RuntimeMessage::Call {
                id: 7,
                call: HostCall::ToolsCall {
                    name: "nmap".into(),
                    args
                }
            }
        );
        assert_eq!(serde_json::to_value(&message)?, wire);
        Ok(())
    }

    #[test]
    fn response_is_flat_ok_or_error() -> Result<(), serde_json::Error> {
        let ok = HostMessage::Response {
            id: 1,
            outcome: CallOutcome::Ok(json!([1, 2])),
            notices: Vec::new(),
        };
        assert_eq!(
            serde_json::to_value(&ok)?,
            json!({"kind": "response", "id": 1, "ok": [1, 2]})
        );
        let err = HostMessage::Response {
            id: 2,
            outcome: CallOutcome::Error(CallError {
                kind: "ToolError".into(),
                message: "boom".into(),
            }),
            notices: vec!["[tools.t] info: working".into()],
        };
        assert_eq!(
            serde_json::to_value(&err)?,
            json!({"kind": "response", "id": 2, "error": {"type": "ToolError", "message": "boom"},
                   "notices": ["[tools.t] info: working"]})
        );
        Ok(())
    }

    #[test]
    fn search_limit_defaults_per_namespace() -> Result<(), serde_json::Error> {
        let tools: HostCall =
            serde_json::from_value(json!({"method": "tools.search", "params": {"query": "x"}}))?;
        let skills: HostCall =
            serde_json::from_value(json!({"method": "skills.search", "params": {"query": "x"}}))?;
        assert_eq!(
            tools,
            HostCall::ToolsSearch {
                query: "x".into(),
                limit: 10
            }
        );
        assert_eq!(
            skills,
            HostCall::SkillsSearch {
                query: "x".into(),
                limit: 5
            }
        );
        Ok(())
    }
}
