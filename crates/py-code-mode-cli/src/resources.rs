//! Skills (their source) and artifacts (their data) as MCP resources.
//!
//! `skill://<name>` reads a skill's Python source; `artifact://<name>` an
//! artifact's data (JSON and text as text, bytes as a base64 blob). Both are
//! also offered as templates, so a client can read one it has not listed.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};

use py_code_mode::{ArtifactData, Error, Session};
use rmcp::ErrorData;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};

/// URIs of skills: `skill://<name>`.
pub const SKILL_PREFIX: &str = "skill://";
/// URIs of artifacts: `artifact://<name>` (names may hold `/`).
pub const ARTIFACT_PREFIX: &str = "artifact://";

fn failed(error: &Error) -> ErrorData {
    ErrorData::internal_error(error.to_string(), None)
}

/// Every skill and artifact, skills first.
pub async fn list(session: &Session) -> Result<ListResourcesResult, ErrorData> {
    let skills = session.list_skills().await.map_err(|e| failed(&e))?;
    let artifacts = session.list_artifacts().await.map_err(|e| failed(&e))?;
    let mut resources: Vec<Resource> = skills
        .into_iter()
        .map(|skill| {
            Resource::new(format!("{SKILL_PREFIX}{}", skill.name), skill.name.clone())
                .with_title(format!("skill `{}`", skill.name))
                .with_description(skill.description)
                .with_mime_type("text/x-python")
        })
        .collect();
    resources.extend(artifacts.into_iter().map(|artifact| {
        let mime = match artifact.kind {
            py_code_mode::ArtifactKind::Json => "application/json",
            py_code_mode::ArtifactKind::Text => "text/plain",
            py_code_mode::ArtifactKind::Bytes => "application/octet-stream",
        };
        Resource::new(
            format!("{ARTIFACT_PREFIX}{}", artifact.name),
            artifact.name.clone(),
        )
        .with_title(format!("artifact `{}`", artifact.name))
        .with_description(artifact.description)
        .with_mime_type(mime)
        .with_size(artifact.size)
    }));
    Ok(ListResourcesResult::with_all_items(resources))
}

/// The two templates: a skill or an artifact by name.
pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(format!("{SKILL_PREFIX}{{name}}"), "skill")
            .with_description("The Python source of a skill, by name")
            .with_mime_type("text/x-python"),
        ResourceTemplate::new(format!("{ARTIFACT_PREFIX}{{name}}"), "artifact")
            .with_description("The data of a saved artifact, by name (JSON, text or bytes)"),
    ])
}

fn not_found(uri: &str, error: &Error) -> ErrorData {
    ErrorData::resource_not_found(
        format!("no resource `{uri}`: {error}"),
        Some(serde_json::json!({ "uri": uri })),
    )
}

/// Reads `skill://…` or `artifact://…`.
pub async fn read(session: &Session, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if let Some(name) = uri.strip_prefix(SKILL_PREFIX) {
        let skill = session
            .get_skill(name)
            .await
            .map_err(|e| not_found(uri, &e))?;
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(skill.source, uri).with_mime_type("text/x-python"),
        ]));
    }
    if let Some(name) = uri.strip_prefix(ARTIFACT_PREFIX) {
        let data = session
            .load_artifact(name)
            .await
            .map_err(|e| not_found(uri, &e))?;
        let contents = match data {
            ArtifactData::Json { value } => {
                ResourceContents::text(value.to_string(), uri).with_mime_type("application/json")
            }
            ArtifactData::Text { value } => ResourceContents::text(value, uri),
            ArtifactData::Bytes { base64 } => {
                ResourceContents::blob(base64, uri).with_mime_type("application/octet-stream")
            }
        };
        return Ok(ReadResourceResult::new(vec![contents]));
    }
    Err(ErrorData::resource_not_found(
        format!(
            "no resource `{uri}`\nhint: resources are `{SKILL_PREFIX}<name>` and `{ARTIFACT_PREFIX}<name>`"
        ),
        Some(serde_json::json!({ "uri": uri })),
    ))
}

/// A digest of what `list` would show (names and change times): when it
/// moves, the list changed.
pub async fn fingerprint(session: &Session) -> Option<u64> {
    let skills = session.list_skills().await.ok()?;
    let artifacts = session.list_artifacts().await.ok()?;
    let mut hasher = DefaultHasher::new();
    for skill in &skills {
        (&skill.name, skill.updated_at.as_nanosecond()).hash(&mut hasher);
    }
    for artifact in &artifacts {
        (&artifact.name, artifact.updated_at.as_nanosecond()).hash(&mut hasher);
    }
    Some(hasher.finish())
}
