//! Storage backends: where tool definitions, skills, artifacts and caches live.
//!
//! A backend stores opaque records; parsing and search happen above it, once,
//! for every backend. Names are checked above it and again inside it, so a
//! caller of the trait cannot reach outside a folder or key prefix.

mod file;
mod fsx;
#[cfg(feature = "redis")]
mod redis;
pub mod sync;

use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use file::FileStorage;
#[cfg(feature = "redis")]
pub use redis::{RedisStorage, redact_url};

use crate::artifacts::ArtifactMeta;
use crate::error::StorageError;

/// Largest artifact a backend writes or reads, in bytes: an artifact is
/// loaded whole into memory and sent to the worker, so one file must not be
/// able to exhaust the host. Larger data is refused with a clear error.
pub const MAX_ARTIFACT_BYTES: u64 = 256 * 1024 * 1024;
/// Largest skill source, in bytes: source a person reads and a parser walks;
/// a megabyte is far beyond any recipe.
pub const MAX_SKILL_BYTES: u64 = 1024 * 1024;
/// Largest tool definition read, in bytes: a YAML file a person writes.
pub const MAX_TOOL_FILE_BYTES: u64 = 1024 * 1024;
/// Largest metadata record (a skill's or artifact's description, metadata and
/// timestamps), in bytes: a few KiB in practice; a megabyte leaves room for
/// generous free-form metadata without letting one file eat the host.
pub const MAX_META_BYTES: u64 = 1024 * 1024;
/// Largest cache blob (an embedding vector is a few KiB), in bytes.
pub const MAX_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The kind of item a [`StorageProblem`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Tool,
    Skill,
    Artifact,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tool => "tool",
            Self::Skill => "skill",
            Self::Artifact => "artifact",
        })
    }
}

/// One item a listing skipped because it cannot be read: a file that is not
/// UTF-8, metadata that is not valid JSON, a symbolic link or a FIFO where a
/// file should be, a file over the size bound, a Redis entry with a missing or
/// malformed field, a name that is not a valid name.
///
/// Listings never fail for one bad item: they skip it, log it once as a
/// warning (`tracing::warn!`, with the location and the reason) and return the
/// rest. [`Storage::problems`] returns them all for a report (such as a
/// `doctor` command). Reading a bad item by name fails with the same reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StorageProblem {
    pub kind: ItemKind,
    /// Where it is: a path for [`FileStorage`], a key (and field) for Redis.
    pub location: String,
    /// Why it was skipped, for a person.
    pub reason: String,
}

impl fmt::Display for StorageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skipped {} `{}`: {}",
            self.kind, self.location, self.reason
        )
    }
}

/// Logs each problem once per process (a listing runs on every search; the
/// same bad file would otherwise fill the log).
#[derive(Debug, Default)]
pub(crate) struct WarnOnce(Mutex<HashSet<StorageProblem>>);

impl WarnOnce {
    pub(crate) fn warn(&self, problems: &[StorageProblem]) {
        let Ok(mut seen) = self.0.lock() else {
            return;
        };
        for problem in problems {
            if seen.insert(problem.clone()) {
                tracing::warn!("{problem}");
            }
        }
    }
}

/// The text of one tool definition and where it came from (a path or a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSource {
    pub origin: String,
    pub text: String,
}

impl ToolSource {
    /// The definition's file name (`nmap.yaml`): the last part of its origin,
    /// which is a path for [`FileStorage`] and `redis:<prefix>:tools/<file>` for Redis.
    pub fn file_name(&self) -> &str {
        self.origin
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&self.origin)
    }
}

/// A stored skill: its source and what the user said about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillRecord {
    pub name: String,
    pub source: String,
    /// The description given at creation; empty means "use the docstring".
    #[serde(default)]
    pub description: String,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    /// The version and where it came from; `None` for a skill saved without
    /// history (by hand, by an earlier version, or by [`Storage::put_skill`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// Where one version of a skill came from (see `docs/skills.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// 1 for the first version; each save adds one.
    #[serde(default)]
    pub version: u64,
    /// Who saved it: the id the embedding application gave its session.
    #[serde(default)]
    pub session: String,
    /// The run of agent code that saved it; `None` for a call from outside
    /// agent code (the Python facade, an MCP `create_skill`).
    #[serde(default)]
    pub run: Option<String>,
    /// `sha256:<hex>` of the source.
    #[serde(default)]
    pub hash: String,
    /// The tools the source uses, each with its signature when saved (see
    /// [`crate::skills::tool_signature`]): what drift is measured against.
    #[serde(default)]
    pub tools: std::collections::BTreeMap<String, String>,
    /// The version this one restored, for a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}

/// What a listing reads of a stored skill: the record without its
/// provenance, except the two parts a listing shows or needs (the version,
/// and the tools drift compares, see [`crate::drift`]). Backends read it
/// without parsing the rest of the provenance (`session`, `run`, `hash`):
/// listing 1,000 versioned skills costs what listing them without history
/// does. `skills.get` and the history read the whole [`SkillRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct SkillEntry {
    pub name: String,
    pub source: String,
    /// The description given at creation; empty means "use the docstring".
    pub description: String,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    /// The current version; `None` for a skill saved without history.
    pub version: Option<u64>,
    /// The tools the current version uses, each with its signature when saved.
    pub tools: std::collections::BTreeMap<String, String>,
}

impl From<SkillRecord> for SkillEntry {
    fn from(record: SkillRecord) -> Self {
        let (version, tools) = record
            .provenance
            .map_or((None, std::collections::BTreeMap::default()), |p| {
                (Some(p.version), p.tools)
            });
        Self {
            name: record.name,
            source: record.source,
            description: record.description,
            created_at: record.created_at,
            updated_at: record.updated_at,
            version,
            tools,
        }
    }
}

/// The part of a stored [`Provenance`] a listing reads; serde skips the
/// other fields without allocating them.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListedProvenance {
    #[serde(default)]
    pub(crate) version: u64,
    #[serde(default)]
    pub(crate) tools: std::collections::BTreeMap<String, String>,
}

/// One entry of a skill's history: a version as it was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillVersion {
    pub source: String,
    #[serde(default)]
    pub description: String,
    /// When this version was saved.
    pub created_at: jiff::Timestamp,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// How many versions of one skill a storage keeps (the newest, the current
/// one included): enough to roll back a bad week of edits, while a skill
/// rewritten in a loop cannot grow the library without bound.
pub const MAX_SKILL_HISTORY: usize = 50;
/// Largest recorded-tests document of one skill, in bytes: a case holds the
/// tool calls of one run, bounded by [`crate::skills`]'s recording limits.
pub const MAX_CASES_BYTES: u64 = 16 * 1024 * 1024;

/// A place that keeps a library: tools, skills, artifacts and derived caches.
///
/// Every write is atomic per item: a reader sees the old item or the new one.
/// Every name is validated by the backend itself (a name that would escape its
/// folder or key prefix fails with [`StorageError::Name`]), whoever calls it.
/// Listings skip items that cannot be read and report them (see
/// [`StorageProblem`]).
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// Where the library lives, for messages (`/path/to/base`, `redis://host/prefix`).
    fn location(&self) -> String;

    /// Every tool definition, in a stable order.
    async fn tool_sources(&self) -> Result<Vec<ToolSource>, StorageError>;

    /// Saves a tool definition as `file_name` (`nmap.yaml`), replacing one of
    /// that name; used by `py-code-mode store` to move a library.
    async fn put_tool(&self, file_name: &str, text: &str) -> Result<(), StorageError> {
        let _ = text;
        Err(StorageError::Backend {
            backend: self.location(),
            message: format!(
                "cannot save tool `{file_name}`: this storage keeps no tool definitions"
            ),
            source: None,
        })
    }

    async fn list_skills(&self) -> Result<Vec<SkillRecord>, StorageError>;
    /// Every skill as a listing reads it (see [`SkillEntry`]), sorted by
    /// name. Backends override it to skip what a listing does not show.
    async fn list_skill_entries(&self) -> Result<Vec<SkillEntry>, StorageError> {
        Ok(self
            .list_skills()
            .await?
            .into_iter()
            .map(SkillEntry::from)
            .collect())
    }
    async fn get_skill(&self, name: &str) -> Result<Option<SkillRecord>, StorageError>;
    async fn put_skill(&self, skill: &SkillRecord) -> Result<(), StorageError>;
    /// Returns whether the skill existed.
    async fn delete_skill(&self, name: &str) -> Result<bool, StorageError>;

    /// Saves a new version of a skill: the skill becomes `skill` and its
    /// history gains the version, in one atomic step (two writers never get
    /// the same number, a reader never sees one without the other), keeping
    /// at most `keep` versions. The version number, and `created_at` (kept
    /// from the current skill when there is one) are decided here; the
    /// record's own are ignored. Returns the record as saved.
    async fn commit_skill(
        &self,
        skill: &SkillRecord,
        provenance: &Provenance,
        keep: usize,
    ) -> Result<SkillRecord, StorageError> {
        let _ = (provenance, keep);
        Err(self.no_history(&skill.name))
    }

    /// The versions of a skill kept, newest first; also after the skill was
    /// deleted, until [`Storage::purge_skill`].
    async fn skill_history(&self, name: &str) -> Result<Vec<SkillVersion>, StorageError> {
        Err(self.no_history(name))
    }

    /// Forgets a skill's history and recorded tests (the skill itself stays
    /// unless deleted); returns whether there was anything.
    async fn purge_skill(&self, name: &str) -> Result<bool, StorageError> {
        Err(self.no_history(name))
    }

    /// The recorded tests of a skill: a JSON document (see [`crate::skills`]).
    async fn skill_cases(&self, name: &str) -> Result<Option<String>, StorageError> {
        Err(self.no_history(name))
    }

    /// Replaces the recorded tests of a skill.
    async fn put_skill_cases(&self, name: &str, json: &str) -> Result<(), StorageError> {
        let _ = json;
        Err(self.no_history(name))
    }

    /// Whether this backend keeps skill histories and recorded tests (the
    /// methods above work); `py-code-mode store push|pull` moves them
    /// between two that do.
    fn keeps_history(&self) -> bool {
        false
    }

    /// Replaces the kept versions of a skill with `versions` (newest first,
    /// at most [`MAX_SKILL_HISTORY`] of them kept): how a sync copies a
    /// history from another storage. The current skill is written apart
    /// ([`Storage::put_skill`], its provenance included).
    async fn put_skill_history(
        &self,
        name: &str,
        versions: &[SkillVersion],
    ) -> Result<(), StorageError> {
        let _ = versions;
        Err(self.no_history(name))
    }

    /// The error of the history methods of a backend without history.
    fn no_history(&self, name: &str) -> StorageError {
        StorageError::Backend {
            backend: self.location(),
            message: format!(
                "cannot keep versions of skill `{name}`: this storage keeps no history"
            ),
            source: None,
        }
    }

    async fn put_artifact(&self, meta: &ArtifactMeta, data: &[u8]) -> Result<(), StorageError>;
    async fn get_artifact(
        &self,
        name: &str,
    ) -> Result<Option<(ArtifactMeta, Vec<u8>)>, StorageError>;
    async fn artifact_meta(&self, name: &str) -> Result<Option<ArtifactMeta>, StorageError>;
    async fn list_artifacts(&self) -> Result<Vec<ArtifactMeta>, StorageError>;
    /// Returns whether the artifact existed.
    async fn delete_artifact(&self, name: &str) -> Result<bool, StorageError>;

    /// A derived blob (such as an embedding) under `key` (`[A-Za-z0-9._-]+`).
    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    async fn cache_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError>;

    /// The blobs of many keys, in order (`None` where absent). Backends with
    /// round trips override this to fetch them together.
    async fn cache_get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let mut blobs = Vec::with_capacity(keys.len());
        for key in keys {
            blobs.push(self.cache_get(key).await?);
        }
        Ok(blobs)
    }

    /// Every cache key starting with `prefix`, in no particular order.
    async fn cache_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Removes a cache entry; returns whether it existed.
    async fn cache_delete(&self, key: &str) -> Result<bool, StorageError>;

    /// Makes the library's layout when a session starts over it (the seed's
    /// `FileStorage` promise: `tools/`, `skills/`, `artifacts/`). Opening a
    /// storage changes nothing, as in 0.10; backends without a layout do
    /// nothing.
    async fn ensure_layout(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// The configured runtime dependencies: `requirements.txt` text, one
    /// spec a line (see [`crate::deps`]); `None` when none were ever saved.
    /// Backends without a place of their own keep it as the cache entry
    /// `deps.txt`.
    async fn deps_get(&self) -> Result<Option<String>, StorageError> {
        Ok(self
            .cache_get(DEPS_CACHE_KEY)
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Replaces the configured runtime dependencies.
    async fn deps_put(&self, text: &str) -> Result<(), StorageError> {
        self.cache_put(DEPS_CACHE_KEY, text.as_bytes()).await
    }

    /// Every tool definition, skill and artifact the listings skip because it
    /// cannot be read, with where it is and why, sorted. Reads the whole
    /// library (it lists everything), so it is meant for reports, not for
    /// every call. Backends that cannot hold bad items return none.
    async fn problems(&self) -> Result<Vec<StorageProblem>, StorageError> {
        Ok(Vec::new())
    }
}

/// The cache key of the dependency list for backends without a place of their own.
const DEPS_CACHE_KEY: &str = "deps.txt";
/// The largest dependency list read, in bytes: [`crate::deps::MAX_DEPS`] lines
/// of at most [`crate::deps::MAX_SPEC_LEN`] bytes, with room to spare.
pub const MAX_DEPS_BYTES: u64 = 256 * 1024;

/// `[A-Za-z0-9._-]+`: no path separator, no Redis `:` and no glob character.
/// Callers that make file names of it also refuse a leading `.` (`..`, hidden files).
pub(crate) fn is_key_safe(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A cache key is `[A-Za-z0-9._-]+` and does not start with `.`: it becomes a
/// file name or the end of a Redis key.
pub(crate) fn validate_cache_key(key: &str) -> Result<(), StorageError> {
    if is_key_safe(key) && !key.starts_with('.') {
        Ok(())
    } else {
        Err(StorageError::Backend {
            backend: "storage".into(),
            message: format!("invalid cache key `{key}`"),
            source: None,
        })
    }
}

/// A tool definition's file name: `[A-Za-z0-9._-]+` ending in `.yaml` or `.yml`,
/// not starting with `.`.
pub(crate) fn validate_tool_file_name(name: &str) -> Result<(), StorageError> {
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"));
    let ok = stem.is_some_and(|s| !s.is_empty())
        && !name.starts_with('.')
        && name.len() <= 200
        && is_key_safe(name);
    if ok {
        Ok(())
    } else {
        Err(StorageError::Backend {
            backend: "storage".into(),
            message: format!(
                "tool file name `{name}` is not allowed: it must be letters, digits, `.`, `_` or `-` ending in `.yaml` or `.yml`"
            ),
            source: None,
        })
    }
}
