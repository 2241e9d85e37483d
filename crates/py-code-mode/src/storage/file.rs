//! `FileStorage`: a library in folders, human-browsable and safe for several processes.
//!
//! ```text
//! base/
//!   tools/*.yaml                   tool definitions (read-only to agents)
//!   skills/<name>.py               skill source, exactly as created
//!   skills/.meta/<name>.json       description and timestamps
//!   artifacts/<name>               the data: JSON text, UTF-8 text or raw bytes
//!   artifacts/.meta/<name>.json    type, description, metadata, timestamps
//!   .cache/<key>                   derived data (embeddings)
//! ```
//!
//! Every item is its own file, written to a temporary file in the same folder and
//! renamed into place, so two processes never lose each other's writes and a
//! crash leaves the old file or the new one.

use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{SkillRecord, Storage, ToolSource, validate_cache_key, validate_tool_file_name};
use crate::artifacts::{ArtifactKind, ArtifactMeta};
use crate::error::StorageError;

const META_DIR: &str = ".meta";

/// A library kept in folders; see the module docs for the layout.
#[derive(Debug, Clone)]
pub struct FileStorage {
    tools: PathBuf,
    skills: PathBuf,
    artifacts: PathBuf,
    cache: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct SkillMetaFile {
    #[serde(default)]
    description: String,
    created_at: jiff::Timestamp,
    updated_at: jiff::Timestamp,
}

impl FileStorage {
    /// Opens (and creates) `base/tools`, `base/skills` and `base/artifacts`.
    pub fn open(base: impl AsRef<Path>) -> Result<Self, StorageError> {
        let base = base.as_ref();
        Self::with_dirs(
            base,
            base.join("tools"),
            base.join("skills"),
            base.join("artifacts"),
        )
    }

    /// Opens a library whose folders live apart (the seed's `--tools` / `--skills`);
    /// the cache goes under `base/.cache`.
    pub fn with_dirs(
        base: impl AsRef<Path>,
        tools: PathBuf,
        skills: PathBuf,
        artifacts: PathBuf,
    ) -> Result<Self, StorageError> {
        let cache = base.as_ref().join(".cache");
        for dir in [&tools, &skills, &artifacts] {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        Ok(Self {
            tools,
            skills,
            artifacts,
            cache,
        })
    }

    pub fn tools_dir(&self) -> &Path {
        &self.tools
    }

    pub fn skills_dir(&self) -> &Path {
        &self.skills
    }

    pub fn artifacts_dir(&self) -> &Path {
        &self.artifacts
    }

    fn skill_path(&self, name: &str) -> PathBuf {
        self.skills.join(format!("{name}.py"))
    }

    fn skill_meta_path(&self, name: &str) -> PathBuf {
        self.skills.join(META_DIR).join(format!("{name}.json"))
    }

    fn artifact_meta_path(&self, name: &str) -> PathBuf {
        self.artifacts.join(META_DIR).join(format!("{name}.json"))
    }

    fn read_skill(&self, name: &str) -> Result<Option<SkillRecord>, StorageError> {
        let path = self.skill_path(name);
        let Some(source) = read_optional(&path)? else {
            return Ok(None);
        };
        let source = String::from_utf8(source).map_err(|e| StorageError::Corrupt {
            path: path.clone(),
            message: format!("not UTF-8: {e}"),
        })?;
        let meta_path = self.skill_meta_path(name);
        let meta = match read_optional(&meta_path)? {
            Some(bytes) => Some(parse_json::<SkillMetaFile>(&meta_path, &bytes)?),
            None => None,
        };
        let (description, created_at, updated_at) = match meta {
            Some(m) => (m.description, m.created_at, m.updated_at),
            None => {
                let modified = modified_time(&path);
                (String::new(), modified, modified)
            }
        };
        Ok(Some(SkillRecord {
            name: name.to_owned(),
            source,
            description,
            created_at,
            updated_at,
        }))
    }

    fn read_artifact_meta(&self, name: &str) -> Result<Option<ArtifactMeta>, StorageError> {
        let data_path = self.artifacts.join(name);
        let meta_path = self.artifact_meta_path(name);
        if let Some(bytes) = read_optional(&meta_path)? {
            return parse_json(&meta_path, &bytes).map(Some);
        }
        // A file put there by hand, without metadata: describe it from the file.
        match std::fs::metadata(&data_path) {
            Ok(m) if m.is_file() => {
                let modified = modified_time(&data_path);
                let kind = match std::fs::read(&data_path) {
                    Ok(bytes) if std::str::from_utf8(&bytes).is_ok() => ArtifactKind::Text,
                    _ => ArtifactKind::Bytes,
                };
                Ok(Some(ArtifactMeta {
                    name: name.to_owned(),
                    kind,
                    description: String::new(),
                    metadata: serde_json::Map::new(),
                    size: m.len(),
                    created_at: modified,
                    updated_at: modified,
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &data_path)(e)),
        }
    }
}

#[async_trait]
impl Storage for FileStorage {
    fn location(&self) -> String {
        self.skills
            .parent()
            .unwrap_or(&self.skills)
            .display()
            .to_string()
    }

    async fn tool_sources(&self) -> Result<Vec<ToolSource>, StorageError> {
        let mut files = list_files(&self.tools, |p| {
            matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })?;
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
                let text = String::from_utf8(bytes).map_err(|e| StorageError::Corrupt {
                    path: path.clone(),
                    message: format!("not UTF-8: {e}"),
                })?;
                Ok(ToolSource {
                    origin: path.display().to_string(),
                    text,
                })
            })
            .collect()
    }

    async fn put_tool(&self, file_name: &str, text: &str) -> Result<(), StorageError> {
        validate_tool_file_name(file_name)?;
        write_atomic(&self.tools.join(file_name), text.as_bytes())
    }

    async fn list_skills(&self) -> Result<Vec<SkillRecord>, StorageError> {
        let files = list_files(&self.skills, |p| {
            p.extension().and_then(|e| e.to_str()) == Some("py")
        })?;
        let mut skills = Vec::with_capacity(files.len());
        for path in files {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if crate::names::validate_skill_name(name).is_err() {
                continue; // helper modules such as `_util.py` are not skills
            }
            // A file deleted between listing and reading is simply gone.
            if let Some(skill) = self.read_skill(name)? {
                skills.push(skill);
            }
        }
        skills.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(skills)
    }

    async fn get_skill(&self, name: &str) -> Result<Option<SkillRecord>, StorageError> {
        self.read_skill(name)
    }

    async fn put_skill(&self, skill: &SkillRecord) -> Result<(), StorageError> {
        let meta = SkillMetaFile {
            description: skill.description.clone(),
            created_at: skill.created_at,
            updated_at: skill.updated_at,
        };
        // Metadata first: a crash in between leaves an orphan metadata file, never
        // a skill that lost its description.
        write_atomic(&self.skill_meta_path(&skill.name), &to_json(&meta))?;
        write_atomic(&self.skill_path(&skill.name), skill.source.as_bytes())
    }

    async fn delete_skill(&self, name: &str) -> Result<bool, StorageError> {
        let existed = remove_optional(&self.skill_path(name))?;
        remove_optional(&self.skill_meta_path(name))?;
        Ok(existed)
    }

    async fn put_artifact(&self, meta: &ArtifactMeta, data: &[u8]) -> Result<(), StorageError> {
        write_atomic(&self.artifacts.join(&meta.name), data)?;
        write_atomic(&self.artifact_meta_path(&meta.name), &to_json(meta))
    }

    async fn get_artifact(
        &self,
        name: &str,
    ) -> Result<Option<(ArtifactMeta, Vec<u8>)>, StorageError> {
        let Some(meta) = self.read_artifact_meta(name)? else {
            return Ok(None);
        };
        let data_path = self.artifacts.join(name);
        Ok(read_optional(&data_path)?.map(|data| (meta, data)))
    }

    async fn artifact_meta(&self, name: &str) -> Result<Option<ArtifactMeta>, StorageError> {
        self.read_artifact_meta(name)
    }

    async fn list_artifacts(&self) -> Result<Vec<ArtifactMeta>, StorageError> {
        let mut metas = Vec::new();
        for path in walk_files(&self.artifacts)? {
            let Ok(relative) = path.strip_prefix(&self.artifacts) else {
                continue;
            };
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if crate::names::validate_artifact_name(&name).is_err() {
                continue;
            }
            if let Some(meta) = self.read_artifact_meta(&name)? {
                metas.push(meta);
            }
        }
        Ok(metas)
    }

    async fn delete_artifact(&self, name: &str) -> Result<bool, StorageError> {
        let existed = remove_optional(&self.artifacts.join(name))?;
        let had_meta = remove_optional(&self.artifact_meta_path(name))?;
        Ok(existed || had_meta)
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        read_optional(&self.cache.join(cache_file_name(key)?))
    }

    async fn cache_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        write_atomic(&self.cache.join(cache_file_name(key)?), value)
    }

    async fn cache_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let entries = match std::fs::read_dir(&self.cache) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &self.cache)(e)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.cache))?;
            // Temporary files of writes in flight start with `.`; not keys.
            if let Some(name) = entry.file_name().to_str()
                && name.starts_with(prefix)
                && validate_cache_key(name).is_ok()
            {
                keys.push(name.to_owned());
            }
        }
        Ok(keys)
    }

    async fn cache_delete(&self, key: &str) -> Result<bool, StorageError> {
        remove_optional(&self.cache.join(cache_file_name(key)?))
    }
}

fn cache_file_name(key: &str) -> Result<&str, StorageError> {
    validate_cache_key(key).map(|()| key)
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs cannot fail.
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn modified_time(path: &Path) -> jiff::Timestamp {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .unwrap_or_else(jiff::Timestamp::now)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(e) if e.kind() == ErrorKind::IsADirectory => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

fn remove_optional(path: &Path) -> Result<bool, StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(io_err("delete", path)(e)),
    }
}

/// Writes `data` to `path` via a temporary file in the same folder and a rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let mut file = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("write", path))?;
    file.write_all(data).map_err(io_err("write", path))?;
    file.as_file().sync_data().map_err(io_err("write", path))?;
    file.persist(path)
        .map_err(|e| io_err("write", path)(e.error))?;
    Ok(())
}

/// Regular files directly in `dir` (created if missing) that `keep` accepts.
fn list_files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.file_type().is_ok_and(|t| t.is_file()) && keep(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

/// Regular files below `dir`, skipping hidden files and folders (`.meta`, temporaries).
fn walk_files(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("list", &dir))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    Ok(files)
}
