//! Recorded tests of skills: cases captured from a real run, replayed offline.
//!
//! The host owns tool calls, so it records them: between `skills.record_begin`
//! and `skills.record_end` every `tools.call` agent code makes is answered by
//! the real tool and kept (name, arguments, result or error, the tool's
//! signature). Replaying a case answers each call from the recording instead,
//! in order; an unexpected call or different arguments is a failure with a
//! readable diff, and the skill's outcome must equal the recorded one. The
//! cases of a skill are one JSON document in storage
//! ([`crate::Storage::skill_cases`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::drift::ToolSignatures;
use crate::error::SkillError;
use crate::protocol::{CallError, CaseOutcome};

/// Most tool calls one case keeps: a recipe, not a crawler; a run that makes
/// more cannot be recorded (the error says so) rather than growing unbounded.
pub const MAX_CASE_CALLS: usize = 1000;
/// Most cases one skill keeps.
pub const MAX_CASES: usize = 100;
/// Longest case name, in bytes.
pub const MAX_CASE_NAME: usize = 64;
/// Longest rendering of one value in a diff, in characters.
const MAX_DIFF_VALUE: usize = 300;

/// One tool call as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedCall {
    /// The name agent code called (`weather` or `weather.get`).
    pub tool: String,
    pub args: Map<String, Value>,
    pub outcome: CaseOutcome,
    /// The tool's signature when recorded (drift), when it was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// One recorded case of a skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub kwargs: Map<String, Value>,
    pub calls: Vec<RecordedCall>,
    pub outcome: CaseOutcome,
    pub recorded_at: jiff::Timestamp,
    /// The skill's version when recorded.
    #[serde(default)]
    pub version: Option<u64>,
}

/// Every case of one skill, by name: the stored document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cases {
    #[serde(default)]
    pub cases: BTreeMap<String, Case>,
}

impl Cases {
    pub fn parse(name: &str, json: Option<&str>) -> Result<Self, SkillError> {
        match json {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(text).map_err(|e| SkillError::Case {
                message: format!("the recorded tests of skill `{name}` are not valid: {e}"),
            }),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The result of replaying one case: what `skills.test` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReport {
    pub case: String,
    pub ok: bool,
    /// What differed, for a person; empty when `ok`.
    pub diff: String,
}

/// Refuses case names that would be confusing in a report or a file.
pub fn validate_case_name(case: &str) -> Result<(), SkillError> {
    let ok = !case.is_empty()
        && case.len() <= MAX_CASE_NAME
        && case
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SkillError::Case {
            message: format!(
                "case name `{}` is not allowed: use 1 to {MAX_CASE_NAME} letters, digits, `_`, `-` or `.`",
                truncate(case, MAX_CASE_NAME + 8)
            ),
        })
    }
}

/// A recording or replay in progress on a host.
#[derive(Debug)]
pub enum Capture {
    Record {
        skill: String,
        case: String,
        kwargs: Map<String, Value>,
        version: Option<u64>,
        calls: Vec<RecordedCall>,
        /// Calls past [`MAX_CASE_CALLS`]: the case is refused at the end.
        overflow: bool,
        /// The tools when the recording began, for each call's signature.
        tools: ToolSignatures,
    },
    Replay {
        skill: String,
        case: String,
        expected: Case,
        /// The next expected call.
        next: usize,
        /// What went wrong so far, one line each.
        problems: Vec<String>,
    },
}

impl Capture {
    /// Answers a tool call during a replay from the recording; records the
    /// mismatch (and answers with an error) when it is not the expected call.
    pub fn replay_call(&mut self, tool: &str, args: &Map<String, Value>) -> Option<CaseOutcome> {
        let Self::Replay {
            expected,
            next,
            problems,
            ..
        } = self
        else {
            return None;
        };
        let Some(want) = expected.calls.get(*next) else {
            problems.push(format!(
                "call {}: unexpected `{}`: the recording has no more calls",
                *next + 1,
                render_call(tool, args)
            ));
            return Some(unexpected(tool));
        };
        if want.tool == tool && &want.args == args {
            *next += 1;
            return Some(want.outcome.clone());
        }
        let mut lines = vec![format!(
            "call {}: expected `{}`, got `{}`",
            *next + 1,
            render_call(&want.tool, &want.args),
            render_call(tool, args)
        )];
        if want.tool == tool {
            lines.extend(args_diff(&want.args, args));
        }
        problems.push(lines.join("\n"));
        Some(unexpected(tool))
    }

    /// Keeps a call made during a recording.
    pub fn record_call(&mut self, tool: &str, args: &Map<String, Value>, outcome: &CaseOutcome) {
        if let Self::Record {
            calls,
            overflow,
            tools,
            ..
        } = self
        {
            let signature = tools.signature(tool.split('.').next().unwrap_or(tool));
            if calls.len() >= MAX_CASE_CALLS {
                *overflow = true;
                return;
            }
            calls.push(RecordedCall {
                tool: tool.to_owned(),
                args: args.clone(),
                outcome: outcome.clone(),
                signature,
            });
        }
    }
}

fn unexpected(tool: &str) -> CaseOutcome {
    CaseOutcome::Error(CallError {
        kind: "ToolError".into(),
        message: format!(
            "tools.call: `{tool}` was not called like this when the case was recorded (replay)"
        ),
    })
}

/// Compares a replay's end with its recording: the report `skills.test` shows.
pub fn finish_replay(
    case: &str,
    expected: &Case,
    next: usize,
    mut problems: Vec<String>,
    outcome: &CaseOutcome,
    tools_now: &ToolSignatures,
) -> CaseReport {
    // The first call the skill did not make (the rest follow from it).
    if let Some(missed) = expected.calls.get(next) {
        problems.push(format!(
            "call {}: `{}` was expected but never made",
            next + 1,
            render_call(&missed.tool, &missed.args)
        ));
    }
    if &expected.outcome != outcome {
        problems.push(format!(
            "outcome: expected {}, got {}",
            render_outcome(&expected.outcome),
            render_outcome(outcome)
        ));
    }
    if !problems.is_empty() {
        // Say what changed in the tools since the recording: the likely why.
        let mut seen = std::collections::BTreeSet::new();
        for call in &expected.calls {
            let tool = call.tool.split('.').next().unwrap_or(&call.tool);
            if let Some(then) = &call.signature
                && seen.insert(tool.to_owned())
                && let Some(change) = tools_now.change(tool, then)
            {
                problems.push(format!("since the recording, {change}"));
            }
        }
    }
    CaseReport {
        case: case.to_owned(),
        ok: problems.is_empty(),
        diff: problems.join("\n"),
    }
}

/// `tools.weather.get(city="Paris")`.
pub fn render_call(tool: &str, args: &Map<String, Value>) -> String {
    let args = args
        .iter()
        .map(|(k, v)| format!("{k}={}", render_value(v)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("tools.{tool}({args})")
}

/// `- city="Paris"` / `+ town="Paris"` lines for arguments that differ.
fn args_diff(want: &Map<String, Value>, got: &Map<String, Value>) -> Vec<String> {
    let mut lines = Vec::new();
    for (k, v) in want {
        if got.get(k) != Some(v) {
            lines.push(format!("  - {k}={}", render_value(v)));
        }
    }
    for (k, v) in got {
        if want.get(k) != Some(v) {
            lines.push(format!("  + {k}={}", render_value(v)));
        }
    }
    lines
}

fn render_outcome(outcome: &CaseOutcome) -> String {
    match outcome {
        CaseOutcome::Result(v) => format!("result {}", render_value(v)),
        CaseOutcome::Error(e) => format!("{}: {}", e.kind, truncate(&e.message, MAX_DIFF_VALUE)),
    }
}

fn render_value(v: &Value) -> String {
    truncate(&v.to_string(), MAX_DIFF_VALUE)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn different_arguments_fail_with_a_readable_diff() {
        let expected = Case {
            kwargs: Map::new(),
            calls: vec![RecordedCall {
                tool: "weather.get".into(),
                args: map(&json!({"city": "Paris"})),
                outcome: CaseOutcome::Result(json!(21)),
                signature: None,
            }],
            outcome: CaseOutcome::Result(json!(21)),
            recorded_at: jiff::Timestamp::UNIX_EPOCH,
            version: Some(1),
        };
        let mut capture = Capture::Replay {
            skill: "s".into(),
            case: "c".into(),
            expected: expected.clone(),
            next: 0,
            problems: Vec::new(),
        };
        let answer = capture.replay_call("weather.get", &map(&json!({"town": "Paris"})));
        assert!(matches!(answer, Some(CaseOutcome::Error(_))));
        let Capture::Replay { next, problems, .. } = capture else {
            unreachable!()
        };
        let report = finish_replay(
            "c",
            &expected,
            next,
            problems,
            &CaseOutcome::Result(json!(null)),
            &ToolSignatures::default(),
        );
        assert!(!report.ok);
        assert_eq!(
            report.diff,
            "call 1: expected `tools.weather.get(city=\"Paris\")`, got `tools.weather.get(town=\"Paris\")`\n  - city=\"Paris\"\n  + town=\"Paris\"\ncall 1: `tools.weather.get(city=\"Paris\")` was expected but never made\noutcome: expected result 21, got result null"
        );
    }

    #[test]
    fn case_names_are_bounded_and_plain() {
        assert!(validate_case_name("paris-1.ok").is_ok());
        for bad in ["", "a b", "../x", &"x".repeat(65)] {
            assert!(validate_case_name(bad).is_err(), "{bad}");
        }
    }
}
