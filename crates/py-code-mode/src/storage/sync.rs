//! Moving a library between two storages (`py-code-mode store push|pull|diff`).
//!
//! A sync copies every tool definition, skill (with its description and
//! timestamps) and artifact (with its type, description and metadata) that is
//! missing or different in the target. It never deletes: items only the target
//! has stay, and [`diff_stores`] lists them. Running it twice changes nothing the
//! second time.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{SkillRecord, Storage};
use crate::artifacts::ArtifactMeta;
use crate::error::StorageError;

/// One item of a library.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum StoreItem {
    /// A tool definition, by file name (`nmap.yaml`).
    Tool(String),
    Skill(String),
    Artifact(String),
}

impl fmt::Display for StoreItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tool(name) => write!(f, "tool `{name}`"),
            Self::Skill(name) => write!(f, "skill `{name}`"),
            Self::Artifact(name) => write!(f, "artifact `{name}`"),
        }
    }
}

/// How two libraries differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreDiff {
    /// In the source only: a sync would create these.
    pub only_in_source: Vec<StoreItem>,
    /// In the target only: a sync leaves these alone.
    pub only_in_target: Vec<StoreItem>,
    /// In both with different content: a sync would overwrite the target's.
    pub different: Vec<StoreItem>,
    /// In both, the same.
    pub same: usize,
}

impl StoreDiff {
    pub fn is_empty(&self) -> bool {
        self.only_in_source.is_empty()
            && self.only_in_target.is_empty()
            && self.different.is_empty()
    }
}

/// What a sync did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub created: Vec<StoreItem>,
    pub updated: Vec<StoreItem>,
    pub unchanged: usize,
    pub dry_run: bool,
}

struct Snapshot {
    tools: BTreeMap<String, String>,
    skills: BTreeMap<String, SkillRecord>,
    artifacts: BTreeMap<String, ArtifactMeta>,
}

async fn snapshot(storage: &dyn Storage) -> Result<Snapshot, StorageError> {
    Ok(Snapshot {
        tools: storage
            .tool_sources()
            .await?
            .into_iter()
            .map(|t| (t.file_name().to_owned(), t.text))
            .collect(),
        skills: storage
            .list_skills()
            .await?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect(),
        artifacts: storage
            .list_artifacts()
            .await?
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect(),
    })
}

/// Whether an item present in both differs. Timestamps do not count: a file
/// without metadata reports its modification time.
async fn artifacts_differ(
    source: &dyn Storage,
    target: &dyn Storage,
    a: &ArtifactMeta,
    b: &ArtifactMeta,
) -> Result<bool, StorageError> {
    if a.kind != b.kind
        || a.description != b.description
        || a.metadata != b.metadata
        || a.size != b.size
    {
        return Ok(true);
    }
    let left = source.get_artifact(&a.name).await?.map(|(_, d)| d);
    let right = target.get_artifact(&b.name).await?.map(|(_, d)| d);
    Ok(left != right)
}

/// Compares two libraries item by item.
pub async fn diff_stores(
    source: &dyn Storage,
    target: &dyn Storage,
) -> Result<StoreDiff, StorageError> {
    let (a, b) = (snapshot(source).await?, snapshot(target).await?);
    let mut diff = StoreDiff::default();
    let mut classify = |item: StoreItem, in_a: bool, in_b: bool, differs: bool| match (in_a, in_b) {
        (true, false) => diff.only_in_source.push(item),
        (false, true) => diff.only_in_target.push(item),
        _ if differs => diff.different.push(item),
        _ => diff.same += 1,
    };
    for name in a
        .tools
        .keys()
        .chain(b.tools.keys().filter(|k| !a.tools.contains_key(*k)))
    {
        let (x, y) = (a.tools.get(name), b.tools.get(name));
        classify(
            StoreItem::Tool(name.clone()),
            x.is_some(),
            y.is_some(),
            x != y,
        );
    }
    for name in a
        .skills
        .keys()
        .chain(b.skills.keys().filter(|k| !a.skills.contains_key(*k)))
    {
        let (x, y) = (a.skills.get(name), b.skills.get(name));
        let differs = match (x, y) {
            (Some(x), Some(y)) => x.source != y.source || x.description != y.description,
            _ => false,
        };
        classify(
            StoreItem::Skill(name.clone()),
            x.is_some(),
            y.is_some(),
            differs,
        );
    }
    let names: Vec<&String> = a
        .artifacts
        .keys()
        .chain(b.artifacts.keys().filter(|k| !a.artifacts.contains_key(*k)))
        .collect();
    for name in names {
        let (x, y) = (a.artifacts.get(name), b.artifacts.get(name));
        let differs = match (x, y) {
            (Some(x), Some(y)) => artifacts_differ(source, target, x, y).await?,
            _ => false,
        };
        classify(
            StoreItem::Artifact(name.clone()),
            x.is_some(),
            y.is_some(),
            differs,
        );
    }
    for list in [
        &mut diff.only_in_source,
        &mut diff.only_in_target,
        &mut diff.different,
    ] {
        list.sort();
    }
    Ok(diff)
}

/// Copies into `target` every item of `source` that it lacks or holds
/// differently; with `dry_run`, only reports what it would copy.
pub async fn sync_stores(
    source: &dyn Storage,
    target: &dyn Storage,
    dry_run: bool,
) -> Result<SyncReport, StorageError> {
    let diff = diff_stores(source, target).await?;
    let report = SyncReport {
        created: diff.only_in_source,
        updated: diff.different,
        unchanged: diff.same,
        dry_run,
    };
    if dry_run {
        return Ok(report);
    }
    for item in report.created.iter().chain(&report.updated) {
        copy_item(source, target, item).await?;
    }
    Ok(report)
}

async fn copy_item(
    source: &dyn Storage,
    target: &dyn Storage,
    item: &StoreItem,
) -> Result<(), StorageError> {
    match item {
        StoreItem::Tool(name) => {
            let tools = source.tool_sources().await?;
            if let Some(tool) = tools.iter().find(|t| t.file_name() == name) {
                target.put_tool(name, &tool.text).await?;
            }
        }
        StoreItem::Skill(name) => {
            if let Some(skill) = source.get_skill(name).await? {
                target.put_skill(&skill).await?;
            }
        }
        StoreItem::Artifact(name) => {
            if let Some((meta, data)) = source.get_artifact(name).await? {
                target.put_artifact(&meta, &data).await?;
            }
        }
    }
    Ok(())
}
