//! Artifacts: named data that outlives the session, with its type and a description.

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ArtifactError, Result};
use crate::names::validate_artifact_name;
use crate::storage::Storage;

/// The data of an artifact with its type, so JSON, text and bytes round-trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ArtifactData {
    Json { value: Value },
    Text { value: String },
    Bytes { base64: String },
}

/// The kind of data an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    Json,
    Text,
    Bytes,
}

impl ArtifactData {
    pub fn kind(&self) -> ArtifactKind {
        match self {
            Self::Json { .. } => ArtifactKind::Json,
            Self::Text { .. } => ArtifactKind::Text,
            Self::Bytes { .. } => ArtifactKind::Bytes,
        }
    }

    /// The bytes a backend stores: JSON text, UTF-8 text or the raw bytes.
    pub fn to_bytes(&self, name: &str) -> Result<Vec<u8>, ArtifactError> {
        match self {
            Self::Json { value } => serde_json::to_vec(value).map_err(|e| ArtifactError::Invalid {
                name: name.to_owned(),
                message: e.to_string(),
            }),
            Self::Text { value } => Ok(value.clone().into_bytes()),
            Self::Bytes { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map_err(|e| ArtifactError::Invalid {
                    name: name.to_owned(),
                    message: format!("bad base64: {e}"),
                }),
        }
    }

    /// Rebuilds the data from stored bytes and the kind recorded with them.
    pub fn from_bytes(kind: ArtifactKind, bytes: Vec<u8>) -> Result<Self, String> {
        Ok(match kind {
            ArtifactKind::Json => Self::Json {
                value: serde_json::from_slice(&bytes).map_err(|e| e.to_string())?,
            },
            ArtifactKind::Text => Self::Text {
                value: String::from_utf8(bytes).map_err(|e| e.to_string())?,
            },
            ArtifactKind::Bytes => Self::Bytes {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        })
    }
}

/// What is known about an artifact besides its data; `artifacts.list()` returns these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ArtifactKind,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub size: u64,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

/// Saves, loads, lists and deletes artifacts in a storage backend.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    storage: Arc<dyn Storage>,
}

impl ArtifactStore {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }

    /// Saves `data` under `name`, keeping the first save's `created_at`.
    pub async fn save(
        &self,
        name: &str,
        data: &ArtifactData,
        description: &str,
        metadata: Map<String, Value>,
    ) -> Result<ArtifactMeta> {
        validate_artifact_name(name)?;
        let bytes = data.to_bytes(name)?;
        let now = jiff::Timestamp::now();
        let created_at = self
            .storage
            .artifact_meta(name)
            .await?
            .map_or(now, |m| m.created_at);
        let meta = ArtifactMeta {
            name: name.to_owned(),
            kind: data.kind(),
            description: description.to_owned(),
            metadata,
            size: bytes.len() as u64,
            created_at,
            updated_at: now,
        };
        self.storage.put_artifact(&meta, &bytes).await?;
        Ok(meta)
    }

    pub async fn load(&self, name: &str) -> Result<ArtifactData> {
        validate_artifact_name(name)?;
        let (meta, bytes) =
            self.storage
                .get_artifact(name)
                .await?
                .ok_or_else(|| ArtifactError::NotFound {
                    name: name.to_owned(),
                })?;
        Ok(
            ArtifactData::from_bytes(meta.kind, bytes).map_err(|message| {
                ArtifactError::Invalid {
                    name: name.to_owned(),
                    message,
                }
            })?,
        )
    }

    pub async fn list(&self) -> Result<Vec<ArtifactMeta>> {
        let mut all = self.storage.list_artifacts().await?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    pub async fn exists(&self, name: &str) -> Result<bool> {
        validate_artifact_name(name)?;
        Ok(self.storage.artifact_meta(name).await?.is_some())
    }

    pub async fn delete(&self, name: &str) -> Result<bool> {
        validate_artifact_name(name)?;
        Ok(self.storage.delete_artifact(name).await?)
    }
}
