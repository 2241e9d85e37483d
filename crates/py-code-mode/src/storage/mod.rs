//! Storage backends: where tool definitions, skills, artifacts and caches live.
//!
//! A backend stores opaque records; validation, parsing and search happen above
//! it, once, for every backend.

mod file;

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use file::FileStorage;

use crate::artifacts::ArtifactMeta;
use crate::error::StorageError;

/// The text of one tool definition and where it came from (a path or a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSource {
    pub origin: String,
    pub text: String,
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
}
