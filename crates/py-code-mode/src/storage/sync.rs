//! Moving a library between two storages (`py-code-mode store push|pull|diff`).
//!
//! A sync copies every tool definition, skill (with its description and
//! timestamps) and artifact (with its type, description and metadata) that is
//! missing or different in the target. It never deletes: items only the target
//! has stay, and [`diff_stores`] lists them. Running it twice changes nothing the
//! second time.
//!
//! Between two storages that keep histories (folder and Redis both do), a
//! skill also brings its kept versions (with their provenance) and its
//! recorded test cases: a skill whose history or cases differ counts as
//! different, and copying it replaces the target's history of it with the
//! source's and its cases with the source's (cases only the target has stay).
//! The tools the copied cases called go with them, so drift sees them. A
//! skill deleted in the source (its history kept until purged) is not listed,
//! so not copied.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{SkillRecord, SkillVersion, Storage};
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

/// What a sync compares of a skill's history: each version's number, source,
/// description, session and run.
type VersionKey = (u64, String, String, String, Option<String>);

/// A skill's kept versions and recorded cases, when `storage` keeps them.
async fn extras(
    storage: &dyn Storage,
    name: &str,
) -> Result<Option<(Vec<VersionKey>, Option<String>)>, StorageError> {
    if !storage.keeps_history() {
        return Ok(None);
    }
    let history = storage
        .skill_history(name)
        .await?
        .into_iter()
        .map(|v: SkillVersion| {
            (
                v.provenance.version,
                v.source,
                v.description,
                v.provenance.session,
                v.provenance.run,
            )
        })
        .collect();
    Ok(Some((history, storage.skill_cases(name).await?)))
}

/// Whether a skill present in both differs: its source, description or
/// version, or (when both keep them) its history or the source's cases.
async fn skills_differ(
    source: &dyn Storage,
    target: &dyn Storage,
    x: &SkillRecord,
    y: &SkillRecord,
) -> Result<bool, StorageError> {
    let version = |r: &SkillRecord| r.provenance.as_ref().map(|p| p.version);
    if x.source != y.source || x.description != y.description || version(x) != version(y) {
        return Ok(true);
    }
    Ok(
        match (
            extras(source, &x.name).await?,
            extras(target, &y.name).await?,
        ) {
            (Some((history_x, cases_x)), Some((history_y, cases_y))) => {
                history_x != history_y || (cases_x.is_some() && cases_x != cases_y)
            }
            _ => false,
        },
    )
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
    let names: Vec<&String> = a
        .skills
        .keys()
        .chain(b.skills.keys().filter(|k| !a.skills.contains_key(*k)))
        .collect();
    for name in names {
        let (x, y) = (a.skills.get(name), b.skills.get(name));
        let differs = match (x, y) {
            (Some(x), Some(y)) => skills_differ(source, target, x, y).await?,
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
    let skills: Vec<&str> = report
        .created
        .iter()
        .chain(&report.updated)
        .filter_map(|item| match item {
            StoreItem::Skill(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    copy_recorded_deps(source, target, &skills).await?;
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
                if source.keeps_history() && target.keeps_history() {
                    // The history first: the skill written last commits it
                    // (a folder hides versions above the current one).
                    let history = source.skill_history(name).await?;
                    target.put_skill_history(name, &history).await?;
                    if let Some(cases) = source.skill_cases(name).await? {
                        target.put_skill_cases(name, &cases).await?;
                    }
                }
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

/// The tools the copied skills' recorded cases called (the host's cache entry
/// [`crate::host::RECORDED_DEPS_KEY`], skill -> tool -> signature): the
/// source's entries of `skills` replace the target's.
async fn copy_recorded_deps(
    source: &dyn Storage,
    target: &dyn Storage,
    skills: &[&str],
) -> Result<(), StorageError> {
    type Deps = BTreeMap<String, BTreeMap<String, String>>;
    let key = crate::host::RECORDED_DEPS_KEY;
    let read = |bytes: Option<Vec<u8>>| -> Deps {
        bytes
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    if skills.is_empty() || !(source.keeps_history() && target.keeps_history()) {
        return Ok(());
    }
    let from = read(source.cache_get(key).await?);
    let mut into = read(target.cache_get(key).await?);
    let mut changed = false;
    for skill in skills {
        if let Some(deps) = from.get(*skill)
            && into.get(*skill) != Some(deps)
        {
            into.insert((*skill).to_owned(), deps.clone());
            changed = true;
        }
    }
    if changed {
        let json = serde_json::to_vec(&into).unwrap_or_default();
        target.cache_put(key, &json).await?;
    }
    Ok(())
}
