//! Storage backends: where tool definitions, skills, artifacts and caches live.
//!
//! A backend stores opaque records; validation, parsing and search happen above
//! it, once, for every backend.

mod file;
#[cfg(feature = "redis")]
mod redis;
pub mod sync;

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use file::FileStorage;
#[cfg(feature = "redis")]
pub use redis::{RedisStorage, redact_url};

use crate::artifacts::ArtifactMeta;
use crate::error::StorageError;

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
}

/// A place that keeps a library: tools, skills, artifacts and derived caches.
///
/// Every write is atomic per item: a reader sees the old item or the new one.
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
    async fn get_skill(&self, name: &str) -> Result<Option<SkillRecord>, StorageError>;
    async fn put_skill(&self, skill: &SkillRecord) -> Result<(), StorageError>;
    /// Returns whether the skill existed.
    async fn delete_skill(&self, name: &str) -> Result<bool, StorageError>;

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
}

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
