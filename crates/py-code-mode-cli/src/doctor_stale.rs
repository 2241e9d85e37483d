//! `py-code-mode doctor`'s stale skills: one `warn` line per skill a tool it
//! depends on changed under or left (see `py_code_mode::drift`), with the
//! reason, as listings show it in `stale`.

use std::sync::Arc;
use std::time::Duration;

use py_code_mode::{Host, LexicalSearcher, Storage, ToolRegistry};

use crate::doctor::{Check, Status};

/// The skills whose tools drifted, each a `warn` check named `skill <name>`
/// (`stale` in its detail); none when every skill is fresh. Asking the tools
/// for their signatures (an MCP server lists its tools) is bounded by `limit`.
pub(crate) async fn stale_skills(storage: Arc<dyn Storage>, limit: Duration) -> Vec<Check> {
    // The tool definitions' own checks say what is wrong with them.
    let Ok(tools) = ToolRegistry::load(storage.as_ref()).await else {
        return Vec::new();
    };
    let host = Host::new(storage, tools, Arc::new(LexicalSearcher));
    let listed = tokio::time::timeout(limit, host.list_skills()).await;
    host.close().await;
    let skills = match listed {
        Ok(Ok(skills)) => skills,
        Ok(Err(e)) => {
            return vec![Check::new(
                "stale skills",
                Status::Fail,
                format!("cannot list the skills: {e}"),
            )];
        }
        Err(_) => {
            return vec![Check::new(
                "stale skills",
                Status::Warn,
                format!(
                    "the tools did not list their signatures within {}s",
                    limit.as_secs()
                ),
            )];
        }
    };
    skills
        .into_iter()
        .filter_map(|skill| {
            let reason = skill.stale?;
            Some(
                Check::new(
                    format!("skill {}", skill.name),
                    Status::Warn,
                    format!("stale: {reason}"),
                )
                .hint(format!(
                    "run `py-code-mode skills test {}`, then update the skill to the tools as they are now",
                    skill.name
                )),
            )
        })
        .collect()
}
