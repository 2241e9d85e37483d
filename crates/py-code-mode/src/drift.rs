//! Drift: a skill is stale when a tool it depends on changed or is gone.
//!
//! A version records the tools its source names, each with its signature when
//! it was saved ([`crate::skills::tool_signature`]); a recorded case records the
//! signature of every tool it called. Comparing those with the tools now gives
//! the reason a listing shows in `stale`.

use std::collections::{BTreeMap, HashMap};

use crate::skills::tool_signature;
use crate::tools::ToolInfo;

/// Signature recorded for a tool whose callables were unknown when saved (its
/// server did not answer): never compared.
pub const UNKNOWN_SIGNATURE: &str = "?";

/// The tools now: name -> signature (`None` while unavailable).
#[derive(Debug, Default, Clone)]
pub struct ToolSignatures(HashMap<String, Option<String>>);

impl ToolSignatures {
    pub fn of(tools: &[ToolInfo]) -> Self {
        Self(
            tools
                .iter()
                .map(|t| (t.name.clone(), tool_signature(t)))
                .collect(),
        )
    }

    /// The signatures to record for `names`: tools that do not exist now are
    /// left out (nothing to drift from), unavailable ones are [`UNKNOWN_SIGNATURE`].
    pub fn record<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> BTreeMap<String, String> {
        names
            .into_iter()
            .filter_map(|name| {
                self.0.get(name).map(|sig| {
                    (
                        name.clone(),
                        sig.clone().unwrap_or_else(|| UNKNOWN_SIGNATURE.to_owned()),
                    )
                })
            })
            .collect()
    }

    /// The signature of tool `name` now, when it exists and is available.
    pub fn signature(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().flatten()
    }

    /// What changed about tool `name` since it had signature `then`, if anything.
    pub fn change(&self, name: &str, then: &str) -> Option<String> {
        match self.0.get(name) {
            None => Some(format!("tool `{name}` is gone")),
            // Unknown now or then: nothing to say.
            Some(None) => None,
            Some(Some(_)) if then == UNKNOWN_SIGNATURE => None,
            Some(Some(now)) if now == then => None,
            Some(Some(now)) => Some(format!("tool `{name}` changed: `{then}` is now `{now}`")),
        }
    }

    /// Why a skill that depends on `deps` (tool -> signature then) is stale,
    /// or `None` when every tool is as it was.
    pub fn stale_reason(&self, deps: &BTreeMap<String, String>) -> Option<String> {
        let reasons: Vec<String> = deps
            .iter()
            .filter_map(|(name, then)| self.change(name, then))
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::ParamInfo;
    use crate::tools::{CallableInfo, ToolKind};

    fn tool(name: &str, param: &str) -> ToolInfo {
        ToolInfo {
            name: name.into(),
            kind: ToolKind::Http,
            description: String::new(),
            tags: Vec::new(),
            callables: vec![CallableInfo {
                name: "get".into(),
                description: String::new(),
                parameters: vec![ParamInfo {
                    name: param.into(),
                    ty: "str".into(),
                    required: true,
                    default: None,
                    description: String::new(),
                }],
            }],
            unavailable: None,
        }
    }

    #[test]
    fn a_renamed_parameter_or_a_missing_tool_is_stale_with_the_reason() {
        let then = ToolSignatures::of(&[tool("weather", "city")]);
        let deps = then.record([&"weather".to_owned(), &"nope".to_owned()]);
        assert_eq!(
            deps.len(),
            1,
            "a tool that does not exist is not a dependency"
        );
        assert_eq!(then.stale_reason(&deps), None);
        let now = ToolSignatures::of(&[tool("weather", "town")]);
        assert_eq!(
            now.stale_reason(&deps).as_deref(),
            Some("tool `weather` changed: `get(city: str)` is now `get(town: str)`")
        );
        let gone = ToolSignatures::of(&[]);
        assert_eq!(
            gone.stale_reason(&deps).as_deref(),
            Some("tool `weather` is gone")
        );
    }
}
