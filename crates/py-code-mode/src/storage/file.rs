//! `FileStorage`: a library in folders, human-browsable and safe for several processes.
//!
//! ```text
//! base/
//!   tools/*.yaml                   tool definitions (read-only to agents)
//!   skills/<name>.py               one skill: a `# py-code-mode-skill/1 {…}` comment
//!                                  line (description, timestamps, provenance), then the source
//!   skills/.history/<name>.<v>.py  each kept version (`greet.0000000007.py`), same
//!                                  form; the newest is the skill file under a second name
//!   skills/.history/<name>.deleted a deleted skill's history goes on from its versions
//!   skills/.history/.lock          one byte a skill, locked while a version is committed
//!   skills/.tests/<name>.json      the skill's recorded test cases
//!   artifacts/<name>               one artifact: a `py-code-mode-artifact/1 {…}` line
//!                                  (type, description, metadata, timestamps), then the data
//!   deps/requirements.txt          the configured runtime dependencies, one spec a line
//!   .cache/<key>                   derived data (embeddings)
//!   <each folder>/.tmp/            writes in flight (swept at open)
//! ```
//!
//! One item is one file, so one rename commits its data and metadata together:
//! a reader, or a crash at any instant, sees the old item or the new one whole.
//! A skill stays a plain Python file (its metadata line is a comment); a skill
//! written by hand without that line is read with its docstring as description
//! and its modification time. Libraries written by earlier versions (data and
//! metadata in two files, `skills/.meta/<name>.json`,
//! `artifacts/.meta/<name>.json`) are read as they are; the next save of an item
//! rewrites it in the one-file form and removes its old metadata file.
//!
//! Nothing below the named folders is trusted (see [`fsx`](super::fsx)): links
//! are never followed, only regular files are opened, every read is bounded, and
//! all of it runs on `spawn_blocking`, off the async runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fsx::{self, Folder, Kind, TMP_DIR};
use super::{
    ItemKind, ListedProvenance, MAX_ARTIFACT_BYTES, MAX_CACHE_BYTES, MAX_CASES_BYTES,
    MAX_META_BYTES, MAX_SKILL_BYTES, MAX_SKILL_HISTORY, MAX_TOOL_FILE_BYTES, Provenance,
    SkillEntry, SkillRecord, SkillVersion, Storage, StorageProblem, ToolSource, WarnOnce,
    validate_cache_key, validate_tool_file_name,
};
use crate::artifacts::{ArtifactKind, ArtifactMeta};
use crate::error::StorageError;
use crate::names::{validate_artifact_name, validate_skill_name};

/// The folder of metadata files in libraries written by earlier versions.
const LEGACY_META_DIR: &str = ".meta";
/// First line of a skill file written by this version: a Python comment, so
/// the file stays a plain skill; the JSON after it is the metadata.
const SKILL_HEADER: &str = "# py-code-mode-skill/1 ";
/// First line of an artifact file written by this version, before its JSON
/// metadata; the data follows the line feed.
const ARTIFACT_HEADER: &str = "py-code-mode-artifact/1 ";
/// The folder of the dependency list, under the base.
const DEPS_DIR: &str = "deps";
/// The dependency list's file: pip's own format, so `pip install -r` reads it.
const DEPS_FILE: &str = "requirements.txt";
/// Deepest artifact folder nesting a listing walks (a 200-byte name has at
/// most 100 parts); deeper folders are reported, not walked.
const MAX_ARTIFACT_DEPTH: usize = 100;

/// A library kept in folders; see the module docs for the layout.
#[derive(Debug, Clone)]
pub struct FileStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tools: PathBuf,
    skills: PathBuf,
    artifacts: PathBuf,
    cache: PathBuf,
    deps: PathBuf,
    warned: WarnOnce,
}

/// A skill's metadata: the JSON of its header line (and of a legacy `.meta` file).
#[derive(Serialize, Deserialize)]
struct SkillMeta {
    #[serde(default)]
    description: String,
    created_at: jiff::Timestamp,
    updated_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provenance: Option<Provenance>,
}

/// A skill's metadata as a listing reads it (see [`SkillEntry`]).
#[derive(Deserialize)]
struct ListedMeta {
    #[serde(default)]
    description: String,
    created_at: jiff::Timestamp,
    updated_at: jiff::Timestamp,
    #[serde(default)]
    provenance: Option<ListedProvenance>,
}

/// The folder of kept versions, under the skills folder (hidden: not a skill).
const HISTORY_DIR: &str = ".history";
/// The folder of recorded test cases, under the skills folder.
const CASES_DIR: &str = ".tests";
/// The history folder's lock file: writers of one skill lock one byte of it
/// (see [`lock_slot`]), so a skill costs no lock file of its own.
const HISTORY_LOCK: &str = ".lock";
/// The lock file an earlier build kept in each skill's own history folder.
const OLD_HISTORY_LOCK: &str = ".lock";

/// The file of version `v` of skill `name` in the history folder
/// (`greet.0000000007.py`): zero-padded so names sort.
fn version_file(name: &str, v: u64) -> String {
    format!("{name}.{v:010}.py")
}

/// The empty file that says a deleted skill `name` has a history.
fn deleted_marker(name: &str) -> String {
    format!("{name}.deleted")
}

/// The byte of [`HISTORY_LOCK`] that writers of skill `name` lock: FNV-1a of
/// the name, the same in every process and build. Two names on one byte
/// only wait for each other.
fn lock_slot(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % (1 << 31)
}

/// An artifact's metadata as its header line holds it (the name is the path and
/// the size is what follows the line).
#[derive(Serialize, Deserialize)]
struct ArtifactHeader {
    #[serde(rename = "type")]
    kind: ArtifactKind,
    #[serde(default)]
    description: String,
    #[serde(default)]
    metadata: Map<String, Value>,
    created_at: jiff::Timestamp,
    updated_at: jiff::Timestamp,
}

impl FileStorage {
    /// Opens the library at `base` and removes temporary files that writers
    /// which died left behind. Folders are made on the first write into
    /// them, not here: opening a library changes nothing on disk.
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
        let deps = base.as_ref().join(DEPS_DIR);
        for dir in [&tools, &skills, &artifacts, &cache] {
            if let Err(e) = fsx::open_root(dir, false)
                .and_then(|root| root.map_or(Ok(0), |root| fsx::sweep_tmp(&root)))
            {
                // A library whose leftovers cannot be removed still works.
                tracing::warn!("cannot sweep temporary files: {e}");
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                tools,
                skills,
                artifacts,
                cache,
                deps,
                warned: WarnOnce::default(),
            }),
        })
    }

    pub fn tools_dir(&self) -> &Path {
        &self.inner.tools
    }

    pub fn skills_dir(&self) -> &Path {
        &self.inner.skills
    }

    pub fn artifacts_dir(&self) -> &Path {
        &self.inner.artifacts
    }

    /// Runs blocking file work on tokio's blocking pool, never on the runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| StorageError::Backend {
                backend: "file".into(),
                message: format!("a storage task failed: {e}"),
                source: None,
            })?
    }
}

impl Inner {
    /// A skill's source over [`MAX_SKILL_BYTES`] is refused before anything is written.
    fn refuse_oversized(&self, skill: &SkillRecord, file: &str) -> Result<(), StorageError> {
        if skill.source.len() as u64 > MAX_SKILL_BYTES {
            return Err(StorageError::Refused {
                path: self.skills.join(file),
                reason: format!(
                    "the source holds {} bytes, more than the {MAX_SKILL_BYTES} a skill may",
                    skill.source.len()
                ),
            });
        }
        Ok(())
    }

    // ----- skills -------------------------------------------------------

    /// A skill file's text (its header line and the source), with its path
    /// and modification time.
    fn read_skill_text(
        root: &Folder,
        name: &str,
    ) -> Result<Option<(PathBuf, String, jiff::Timestamp)>, StorageError> {
        let file = format!("{name}.py");
        // The header line and the source together.
        let Some(loaded) = fsx::read_file(root, &file, MAX_SKILL_BYTES + MAX_META_BYTES)? else {
            return Ok(None);
        };
        let path = root.path().join(&file);
        let text = String::from_utf8(loaded.bytes).map_err(|e| StorageError::Corrupt {
            path: path.clone(),
            message: format!("not UTF-8: {}", e.utf8_error()),
        })?;
        Ok(Some((path, text, loaded.modified)))
    }

    /// A skill as a listing reads it: the header's provenance is skipped but
    /// for the version and tools (see [`SkillEntry`]).
    fn read_skill_entry(root: &Folder, name: &str) -> Result<Option<SkillEntry>, StorageError> {
        let Some((path, mut text, _)) = Self::read_skill_text(root, name)? else {
            return Ok(None);
        };
        let Some(rest) = text.strip_prefix(SKILL_HEADER) else {
            // Written by an earlier version or by hand: rare, read whole.
            return Ok(Self::read_skill(root, name)?.map(SkillEntry::from));
        };
        let (json, header_len) = match rest.find('\n') {
            Some(end) => (&rest[..end], SKILL_HEADER.len() + end + 1),
            None => (rest, text.len()),
        };
        let meta: ListedMeta = parse_json(&path, json.as_bytes())?;
        // The source is what follows the header line, moved down in place.
        text.drain(..header_len);
        let (version, tools) = meta
            .provenance
            .map_or((None, std::collections::BTreeMap::default()), |p| {
                (Some(p.version), p.tools)
            });
        Ok(Some(SkillEntry {
            name: name.to_owned(),
            source: text,
            description: meta.description,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            version,
            tools,
        }))
    }

    fn read_skill(root: &Folder, name: &str) -> Result<Option<SkillRecord>, StorageError> {
        let Some((path, text, modified)) = Self::read_skill_text(root, name)? else {
            return Ok(None);
        };
        if let Some(rest) = text.strip_prefix(SKILL_HEADER) {
            let (json, source) = rest.split_once('\n').unwrap_or((rest, ""));
            let meta: SkillMeta = parse_json(&path, json.as_bytes())?;
            return Ok(Some(SkillRecord {
                name: name.to_owned(),
                source: source.to_owned(),
                description: meta.description,
                created_at: meta.created_at,
                updated_at: meta.updated_at,
                provenance: meta.provenance,
            }));
        }
        // Written by an earlier version (metadata apart) or by hand (none).
        let legacy = match fsx::open_dir(root, LEGACY_META_DIR, false)? {
            Some(meta_dir) => {
                let file = format!("{name}.json");
                match fsx::read_file(&meta_dir, &file, MAX_META_BYTES)? {
                    Some(m) => Some(parse_json::<SkillMeta>(
                        &meta_dir.path().join(&file),
                        &m.bytes,
                    )?),
                    None => None,
                }
            }
            None => None,
        };
        let (description, created_at, updated_at) = match legacy {
            Some(m) => (m.description, m.created_at, m.updated_at),
            None => (String::new(), modified, modified),
        };
        Ok(Some(SkillRecord {
            name: name.to_owned(),
            source: text,
            description,
            created_at,
            updated_at,
            provenance: None,
        }))
    }

    fn get_skill(&self, name: &str) -> Result<Option<SkillRecord>, StorageError> {
        validate_skill_name(name)?;
        match fsx::open_root(&self.skills, false)? {
            Some(root) => Self::read_skill(&root, name),
            None => Ok(None),
        }
    }

    fn scan_skills(&self) -> Result<(Vec<SkillRecord>, Vec<StorageProblem>), StorageError> {
        self.scan_skills_with(Self::read_skill)
    }

    /// Every skill read by `read`, sorted by name, and the ones it could not read.
    fn scan_skills_with<T>(
        &self,
        read: fn(&Folder, &str) -> Result<Option<T>, StorageError>,
    ) -> Result<(Vec<T>, Vec<StorageProblem>), StorageError> {
        let mut skills: Vec<(String, T)> = Vec::new();
        let mut problems = Vec::new();
        let Some(root) = fsx::open_root(&self.skills, false)? else {
            return Ok((Vec::new(), problems));
        };
        let mut problem = |location: &Path, reason: String| {
            problems.push(StorageProblem {
                kind: ItemKind::Skill,
                location: location.display().to_string(),
                reason,
            });
        };
        for entry in fsx::list(&root)? {
            let file = match &entry.name {
                Ok(file) => file,
                Err(lossy) => {
                    if Path::new(lossy).extension().is_some_and(|e| e == "py") {
                        problem(
                            &root.path().join(lossy),
                            "its file name is not UTF-8".into(),
                        );
                    }
                    continue;
                }
            };
            let Some(name) = file.strip_suffix(".py") else {
                continue;
            };
            let path = root.path().join(file);
            if name.starts_with(['.', '_']) {
                continue; // hidden files and helper modules such as `_util.py`
            }
            if let Err(e) = validate_skill_name(name) {
                problem(&path, e.to_string());
                continue;
            }
            if entry.kind != Kind::File {
                problem(&path, entry.kind.refusal());
                continue;
            }
            match read(&root, name) {
                Ok(Some(skill)) => skills.push((name.to_owned(), skill)),
                Ok(None) => {} // deleted between listing and reading: simply gone
                Err(e) => problem(&path, reason(&e)),
            }
        }
        skills.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((skills.into_iter().map(|(_, s)| s).collect(), problems))
    }

    fn put_skill(&self, skill: &SkillRecord) -> Result<(), StorageError> {
        validate_skill_name(&skill.name)?;
        let file = format!("{}.py", skill.name);
        self.refuse_oversized(skill, &file)?;
        let root = open_root_for_write(&self.skills)?;
        let tmp = tmp_dir(&root)?;
        write_skill_file(&tmp, &root, &file, None, skill)?;
        remove_legacy_meta(&root, &[], &format!("{}.json", skill.name));
        Ok(())
    }

    /// The history folder, made with `create` (once per library, synced).
    fn history_folder(root: &Folder, create: bool) -> Result<Option<Folder>, StorageError> {
        fsx::open_dir(root, HISTORY_DIR, create)
    }

    /// Locks the history of skill `name` against other writers (processes
    /// included) until dropped.
    fn lock_history(history: &Folder, name: &str) -> Result<fsx::RangeLock, StorageError> {
        fsx::lock_range(history, HISTORY_LOCK, lock_slot(name))
    }

    /// The kept versions of skill `name`, newest first; unreadable ones are
    /// logged and left out (one bad file must not hide the rest). Reads the
    /// history folder's whole listing: for history and rollback, never for a
    /// save of a skill that exists.
    fn read_versions(history: &Folder, name: &str) -> Result<Vec<SkillVersion>, StorageError> {
        let mut versions = Vec::new();
        let mut read = |dir: &Folder, stem: &str, number: u64| match Self::read_skill(dir, stem) {
            Ok(Some(record)) => {
                let mut provenance = record.provenance.unwrap_or_default();
                provenance.version = number;
                versions.push(SkillVersion {
                    source: record.source,
                    description: record.description,
                    created_at: record.updated_at,
                    provenance,
                });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("skipped a version of skill `{name}`: {e}"),
        };
        for (number, file) in Self::version_files(history, name)? {
            read(history, file.trim_end_matches(".py"), number);
        }
        // Versions an earlier build kept in a folder of their own, until the
        // skill's next save moves them.
        if let Some(old) = fsx::open_dir(history, name, false)? {
            for (number, file) in Self::version_files(&old, "")? {
                read(&old, file.trim_end_matches(".py"), number);
            }
        }
        versions.sort_by_key(|v| std::cmp::Reverse(v.provenance.version));
        versions.dedup_by_key(|v| v.provenance.version);
        Ok(versions)
    }

    /// The version files of skill `name` in `dir` (`<name>.<v>.py`; with an
    /// empty `name`, `<v>.py` as an earlier build named them in a skill's own
    /// folder), with their numbers, by name only.
    fn version_files(dir: &Folder, name: &str) -> Result<Vec<(u64, String)>, StorageError> {
        let prefix = if name.is_empty() {
            String::new()
        } else {
            format!("{name}.")
        };
        Ok(fsx::list(dir)?
            .into_iter()
            .filter(|e| e.kind == Kind::File)
            .filter_map(|e| e.name.ok())
            .filter_map(|file| {
                let number = file.strip_prefix(&prefix)?.strip_suffix(".py")?;
                // Digits only: `greet.py` is no version of `greet`, and the
                // versions of `greet_v2` start with `greet_v2.`, not `greet.`.
                if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((number.parse().ok()?, file))
            })
            .collect())
    }

    /// Moves the versions an earlier build kept in `.history/<name>/` to
    /// `.history/<name>.<v>.py` and removes that folder; the caller holds the
    /// skill's history lock.
    fn move_old_history(history: &Folder, name: &str) -> Result<(), StorageError> {
        let Some(old) = fsx::open_dir(history, name, false)? else {
            return Ok(());
        };
        for (number, file) in Self::version_files(&old, "")? {
            fsx::rename(&old, &file, history, &version_file(name, number))?;
        }
        fsx::unlink(&old, OLD_HISTORY_LOCK)?;
        fsx::sync(history)?;
        // Something else left in it (by hand) keeps the folder, not the save.
        if let Err(e) = fsx::remove_dir(history, name) {
            tracing::warn!("kept the old history folder of skill `{name}`: {e}");
        }
        Ok(())
    }

    /// The newest kept version of a skill with no current file: 0 when it
    /// has no history. A skill deleted through the library leaves a marker
    /// saying it has one; without it only version 1 is looked for, so that
    /// creating a skill never reads the whole history folder.
    fn newest_kept(history: &Folder, name: &str) -> Result<u64, StorageError> {
        if !fsx::exists(history, &deleted_marker(name))
            && !fsx::exists(history, &version_file(name, 1))
        {
            return Ok(0);
        }
        Ok(Self::version_files(history, name)?
            .into_iter()
            .map(|(v, _)| v)
            .max()
            .unwrap_or(0))
    }

    fn commit_skill(
        &self,
        skill: &SkillRecord,
        provenance: &Provenance,
        keep: usize,
    ) -> Result<SkillRecord, StorageError> {
        validate_skill_name(&skill.name)?;
        let name = &skill.name;
        let file = format!("{name}.py");
        self.refuse_oversized(skill, &file)?;
        let root = open_root_for_write(&self.skills)?;
        let tmp = tmp_dir(&root)?;
        let history = Self::history_folder(&root, true)?.ok_or_else(|| StorageError::Io {
            action: "create",
            path: self.skills.join(HISTORY_DIR),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        // Held until the skill file is renamed into place: the next writer
        // reads the version this one committed.
        let _lock = Self::lock_history(&history, name)?;
        Self::move_old_history(&history, name)?;
        let current = Self::read_skill(&root, name)?;
        let mut next = match current.as_ref().and_then(|c| c.provenance.as_ref()) {
            // A version above the current one is the leftover of a writer
            // that died between its link and its rename: replaced, never shown.
            Some(p) => p.version + 1,
            None => Self::newest_kept(&history, name)? + 1,
        };
        // Durability: the new version and the skill are one file under two
        // names, linked into the history folder and then renamed over the
        // skill, and only the skills folder is synced (one data sync and one
        // folder sync, as a save without history). A journaling file system
        // commits the link with the rename; where a crash loses the link
        // anyway, the current version lives on in the skill file, history
        // shows it from there, and the next save (here) keeps it as a version
        // file before replacing it, durably.
        if let Some(old) = current.as_ref() {
            let archived = match &old.provenance {
                Some(p) if fsx::exists(&history, &version_file(name, p.version)) => None,
                Some(p) => Some(p.clone()),
                // A skill written without history (by hand, or by an
                // earlier version): kept as a version before it is replaced.
                None => {
                    let p = Provenance {
                        version: next,
                        hash: crate::skills::source_hash(&old.source),
                        ..Provenance::default()
                    };
                    next += 1;
                    Some(p)
                }
            };
            if let Some(p) = archived {
                let version = version_file(name, p.version);
                let archived = SkillRecord {
                    provenance: Some(p),
                    ..old.clone()
                };
                write_skill_file(&tmp, &history, &version, None, &archived)?;
            }
        }
        let now = skill.updated_at;
        let record = SkillRecord {
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            provenance: Some(Provenance {
                version: next,
                ..provenance.clone()
            }),
            ..skill.clone()
        };
        let version = version_file(name, next);
        write_skill_file(&tmp, &root, &file, Some((&history, &version)), &record)?;
        remove_legacy_meta(&root, &[], &format!("{name}.json"));
        // The version that fell out of the bound (one a save: the kept ones
        // are consecutive) and a deletion marker go without a sync: one that
        // comes back after a crash is removed by the next save.
        let keep = u64::try_from(keep.max(1)).unwrap_or(u64::MAX);
        if let Some(old) = next.checked_sub(keep).filter(|&v| v > 0) {
            fsx::unlink(&history, &version_file(name, old))?;
        }
        if current.is_none() {
            fsx::unlink(&history, &deleted_marker(name))?;
        }
        Ok(record)
    }

    fn skill_history(&self, name: &str) -> Result<Vec<SkillVersion>, StorageError> {
        validate_skill_name(name)?;
        let Some(root) = fsx::open_root(&self.skills, false)? else {
            return Ok(Vec::new());
        };
        let mut versions = match Self::history_folder(&root, false)? {
            Some(history) => Self::read_versions(&history, name)?,
            None => Vec::new(),
        };
        if let Some(current) = Self::read_skill(&root, name)?
            && let Some(provenance) = current.provenance
        {
            versions.retain(|v| v.provenance.version <= provenance.version);
            // Its version file lost in a crash (see `commit_skill`): the
            // skill file holds the current version.
            if versions.first().map(|v| v.provenance.version) != Some(provenance.version) {
                versions.insert(
                    0,
                    SkillVersion {
                        source: current.source,
                        description: current.description,
                        created_at: current.updated_at,
                        provenance,
                    },
                );
            }
        }
        Ok(versions)
    }

    /// Replaces the version files of skill `name` under its history lock:
    /// each file is written atomically, the set is not (a sync that stops
    /// half-way is completed by the next one, which sees the difference).
    fn put_skill_history(&self, name: &str, versions: &[SkillVersion]) -> Result<(), StorageError> {
        validate_skill_name(name)?;
        let versions = &versions[..versions.len().min(MAX_SKILL_HISTORY)];
        let root = open_root_for_write(&self.skills)?;
        let tmp = tmp_dir(&root)?;
        let history = Self::history_folder(&root, true)?.ok_or_else(|| StorageError::Io {
            action: "create",
            path: self.skills.join(HISTORY_DIR),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        let _lock = Self::lock_history(&history, name)?;
        Self::move_old_history(&history, name)?;
        let keep: Vec<u64> = versions.iter().map(|v| v.provenance.version).collect();
        for (old, file) in Self::version_files(&history, name)? {
            if !keep.contains(&old) {
                fsx::remove(&history, &file)?;
            }
        }
        for version in versions {
            let record = SkillRecord {
                name: name.to_owned(),
                source: version.source.clone(),
                description: version.description.clone(),
                created_at: version.created_at,
                updated_at: version.created_at,
                provenance: Some(version.provenance.clone()),
            };
            let file = version_file(name, version.provenance.version);
            self.refuse_oversized(&record, &file)?;
            write_skill_file(&tmp, &history, &file, None, &record)?;
        }
        Ok(())
    }

    fn purge_skill(&self, name: &str) -> Result<bool, StorageError> {
        validate_skill_name(name)?;
        let Some(root) = fsx::open_root(&self.skills, false)? else {
            return Ok(false);
        };
        let mut any = false;
        if let Some(history) = Self::history_folder(&root, false)? {
            let _lock = Self::lock_history(&history, name)?;
            Self::move_old_history(&history, name)?;
            for (_, file) in Self::version_files(&history, name)? {
                any |= fsx::remove(&history, &file)?;
            }
            fsx::unlink(&history, &deleted_marker(name))?;
        }
        if let Some(cases) = fsx::open_dir(&root, CASES_DIR, false)? {
            any |= fsx::remove(&cases, &format!("{name}.json"))?;
        }
        Ok(any)
    }

    fn skill_cases(&self, name: &str) -> Result<Option<String>, StorageError> {
        validate_skill_name(name)?;
        let Some(root) = fsx::open_root(&self.skills, false)? else {
            return Ok(None);
        };
        let Some(dir) = fsx::open_dir(&root, CASES_DIR, false)? else {
            return Ok(None);
        };
        let file = format!("{name}.json");
        match fsx::read_file(&dir, &file, MAX_CASES_BYTES)? {
            Some(loaded) => {
                String::from_utf8(loaded.bytes)
                    .map(Some)
                    .map_err(|e| StorageError::Corrupt {
                        path: dir.path().join(&file),
                        message: format!("not UTF-8: {}", e.utf8_error()),
                    })
            }
            None => Ok(None),
        }
    }

    fn put_skill_cases(&self, name: &str, json: &str) -> Result<(), StorageError> {
        validate_skill_name(name)?;
        let file = format!("{name}.json");
        if json.len() as u64 > MAX_CASES_BYTES {
            return Err(StorageError::Refused {
                path: self.skills.join(CASES_DIR).join(&file),
                reason: format!(
                    "the recorded tests take {} bytes, more than the {MAX_CASES_BYTES} allowed",
                    json.len()
                ),
            });
        }
        let root = open_root_for_write(&self.skills)?;
        let dir = fsx::open_dir(&root, CASES_DIR, true)?.ok_or_else(|| StorageError::Io {
            action: "create",
            path: self.skills.join(CASES_DIR),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        let tmp = tmp_dir(&dir)?;
        fsx::write(&tmp, &dir, &file, &[json.as_bytes()])
    }

    fn delete_skill(&self, name: &str) -> Result<bool, StorageError> {
        validate_skill_name(name)?;
        let Some(root) = fsx::open_root(&self.skills, false)? else {
            return Ok(false);
        };
        let existed = fsx::remove(&root, &format!("{name}.py"))?;
        remove_legacy_meta(&root, &[], &format!("{name}.json"));
        // Its history stays until purged; the marker tells the next save of
        // this name to number on from it (see `newest_kept`).
        if existed && let Some(history) = Self::history_folder(&root, false)? {
            let tmp = tmp_dir(&root)?;
            fsx::write(&tmp, &history, &deleted_marker(name), &[])?;
        }
        Ok(existed)
    }

    // ----- artifacts ----------------------------------------------------

    /// The artifact `name`'s metadata, and its data unless `meta_only`.
    fn read_artifact(
        &self,
        name: &str,
        meta_only: bool,
    ) -> Result<Option<(ArtifactMeta, Vec<u8>)>, StorageError> {
        validate_artifact_name(name)?;
        let Some(root) = fsx::open_root(&self.artifacts, false)? else {
            return Ok(None);
        };
        let (parents, leaf) = split_name(name);
        let Some(dir) = fsx::open_path(&root, &parents, false)? else {
            return Ok(None);
        };
        let path = dir.path().join(leaf);
        let header_limit =
            ARTIFACT_HEADER.len() + usize::try_from(MAX_META_BYTES).unwrap_or(usize::MAX) + 1;
        let head = if meta_only {
            match fsx::read_head(
                &dir,
                leaf,
                header_limit,
                MAX_ARTIFACT_BYTES + MAX_META_BYTES,
            )? {
                Some(head) => head,
                None => return Ok(None),
            }
        } else {
            match fsx::read_file(&dir, leaf, MAX_ARTIFACT_BYTES + MAX_META_BYTES)? {
                Some(loaded) => fsx::Head {
                    size: loaded.bytes.len() as u64,
                    bytes: loaded.bytes,
                    modified: loaded.modified,
                },
                None => return Ok(None),
            }
        };
        if head.bytes.starts_with(ARTIFACT_HEADER.as_bytes()) {
            let line_end = head.bytes.iter().position(|&b| b == b'\n').ok_or_else(|| {
                StorageError::Corrupt {
                    path: path.clone(),
                    message: format!(
                        "its metadata line is unterminated or longer than {MAX_META_BYTES} bytes"
                    ),
                }
            })?;
            let header: ArtifactHeader =
                parse_json(&path, &head.bytes[ARTIFACT_HEADER.len()..line_end])?;
            let data_size = head.size.saturating_sub(line_end as u64 + 1);
            let meta = ArtifactMeta {
                name: name.to_owned(),
                kind: header.kind,
                description: header.description,
                metadata: header.metadata,
                size: data_size,
                created_at: header.created_at,
                updated_at: header.updated_at,
            };
            let data = if meta_only {
                Vec::new()
            } else {
                let mut bytes = head.bytes;
                bytes.drain(..=line_end);
                bytes
            };
            return Ok(Some((meta, data)));
        }
        // Written by an earlier version (metadata apart) or by hand (none).
        if head.size > MAX_ARTIFACT_BYTES {
            return Err(StorageError::Refused {
                path,
                reason: format!(
                    "it holds {} bytes, more than the {MAX_ARTIFACT_BYTES} bytes the library reads",
                    head.size
                ),
            });
        }
        if let Some(mut meta) = Self::read_legacy_artifact_meta(&root, &parents, leaf)? {
            name.clone_into(&mut meta.name);
            meta.size = head.size;
            let data = if meta_only { Vec::new() } else { head.bytes };
            return Ok(Some((meta, data)));
        }
        // No metadata: typed by its content, so the whole file is read.
        let data = if meta_only {
            match fsx::read_file(&dir, leaf, MAX_ARTIFACT_BYTES)? {
                Some(loaded) => loaded.bytes,
                None => return Ok(None),
            }
        } else {
            head.bytes
        };
        let meta = ArtifactMeta {
            name: name.to_owned(),
            kind: if std::str::from_utf8(&data).is_ok() {
                ArtifactKind::Text
            } else {
                ArtifactKind::Bytes
            },
            description: String::new(),
            metadata: Map::new(),
            size: data.len() as u64,
            created_at: head.modified,
            updated_at: head.modified,
        };
        Ok(Some((meta, if meta_only { Vec::new() } else { data })))
    }

    fn read_legacy_artifact_meta(
        root: &Folder,
        parents: &[&str],
        leaf: &str,
    ) -> Result<Option<ArtifactMeta>, StorageError> {
        let Some(meta_root) = fsx::open_dir(root, LEGACY_META_DIR, false)? else {
            return Ok(None);
        };
        let Some(dir) = fsx::open_path(&meta_root, parents, false)? else {
            return Ok(None);
        };
        let file = format!("{leaf}.json");
        match fsx::read_file(&dir, &file, MAX_META_BYTES)? {
            Some(loaded) => parse_json(&dir.path().join(&file), &loaded.bytes).map(Some),
            None => Ok(None),
        }
    }

    fn scan_artifacts(&self) -> Result<(Vec<ArtifactMeta>, Vec<StorageProblem>), StorageError> {
        let mut metas = Vec::new();
        let mut problems = Vec::new();
        let Some(root) = fsx::open_root(&self.artifacts, false)? else {
            return Ok((metas, problems));
        };
        let mut problem = |location: &Path, reason: String| {
            problems.push(StorageProblem {
                kind: ItemKind::Artifact,
                location: location.display().to_string(),
                reason,
            });
        };
        // (folder, its name prefix such as `scans/`, depth)
        let mut stack = vec![(root, String::new(), 0_usize)];
        while let Some((dir, prefix, depth)) = stack.pop() {
            for entry in fsx::list(&dir)? {
                let file = match entry.name {
                    Ok(file) => file,
                    Err(lossy) => {
                        problem(&dir.path().join(lossy), "its file name is not UTF-8".into());
                        continue;
                    }
                };
                if file.starts_with('.') {
                    continue; // `.tmp`, legacy `.meta` and temporary files
                }
                let path = dir.path().join(&file);
                let name = format!("{prefix}{file}");
                match entry.kind {
                    Kind::Dir if depth + 1 >= MAX_ARTIFACT_DEPTH => {
                        problem(
                            &path,
                            format!("folders nest deeper than {MAX_ARTIFACT_DEPTH}"),
                        );
                    }
                    Kind::Dir => match fsx::open_dir(&dir, &file, false) {
                        Ok(Some(sub)) => stack.push((sub, format!("{name}/"), depth + 1)),
                        Ok(None) => {}
                        Err(e) => problem(&path, reason(&e)),
                    },
                    Kind::File => {
                        if let Err(e) = validate_artifact_name(&name) {
                            problem(&path, e.to_string());
                            continue;
                        }
                        match self.read_artifact(&name, true) {
                            Ok(Some((meta, _))) => metas.push(meta),
                            Ok(None) => {}
                            Err(e) => problem(&path, reason(&e)),
                        }
                    }
                    Kind::Symlink | Kind::Other(_) => problem(&path, entry.kind.refusal()),
                }
            }
        }
        metas.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((metas, problems))
    }

    fn put_artifact(&self, meta: &ArtifactMeta, data: &[u8]) -> Result<(), StorageError> {
        validate_artifact_name(&meta.name)?;
        if data.len() as u64 > MAX_ARTIFACT_BYTES {
            return Err(StorageError::Refused {
                path: self.artifacts.join(&meta.name),
                reason: format!(
                    "the data holds {} bytes, more than the {MAX_ARTIFACT_BYTES} an artifact may",
                    data.len()
                ),
            });
        }
        let header = ArtifactHeader {
            kind: meta.kind,
            description: meta.description.clone(),
            metadata: meta.metadata.clone(),
            created_at: meta.created_at,
            updated_at: meta.updated_at,
        };
        let mut line = ARTIFACT_HEADER.as_bytes().to_vec();
        line.extend(to_json(&header));
        line.push(b'\n');
        if line.len() as u64 > MAX_META_BYTES {
            return Err(StorageError::Refused {
                path: self.artifacts.join(&meta.name),
                reason: format!(
                    "its description and metadata take {} bytes, more than the {MAX_META_BYTES} allowed",
                    line.len()
                ),
            });
        }
        let root = open_root_for_write(&self.artifacts)?;
        let tmp = tmp_dir(&root)?;
        let (parents, leaf) = split_name(&meta.name);
        let dir = fsx::open_path(&root, &parents, true)?.ok_or_else(|| StorageError::Io {
            action: "create",
            path: self.artifacts.join(&meta.name),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        fsx::write(&tmp, &dir, leaf, &[&line, data])?;
        remove_legacy_meta(&root, &parents, &format!("{leaf}.json"));
        Ok(())
    }

    fn delete_artifact(&self, name: &str) -> Result<bool, StorageError> {
        validate_artifact_name(name)?;
        let Some(root) = fsx::open_root(&self.artifacts, false)? else {
            return Ok(false);
        };
        let (parents, leaf) = split_name(name);
        let existed = match fsx::open_path(&root, &parents, false)? {
            Some(dir) => fsx::remove(&dir, leaf)?,
            None => false,
        };
        let had_meta = remove_legacy_meta(&root, &parents, &format!("{leaf}.json"));
        Ok(existed || had_meta)
    }

    // ----- tools ----------------------------------------------------------

    fn scan_tools(&self) -> Result<(Vec<ToolSource>, Vec<StorageProblem>), StorageError> {
        let mut sources = Vec::new();
        let mut problems = Vec::new();
        let Some(root) = fsx::open_root(&self.tools, false)? else {
            return Ok((sources, problems));
        };
        let mut problem = |location: &Path, reason: String| {
            problems.push(StorageProblem {
                kind: ItemKind::Tool,
                location: location.display().to_string(),
                reason,
            });
        };
        let is_yaml = |name: &str| {
            !name.starts_with('.')
                && Path::new(name)
                    .extension()
                    .is_some_and(|e| e == "yaml" || e == "yml")
        };
        for entry in fsx::list(&root)? {
            let file = match entry.name {
                Ok(file) => file,
                Err(lossy) => {
                    if is_yaml(&lossy) {
                        problem(
                            &root.path().join(lossy),
                            "its file name is not UTF-8".into(),
                        );
                    }
                    continue;
                }
            };
            if !is_yaml(&file) {
                continue;
            }
            let path = root.path().join(&file);
            if entry.kind != Kind::File {
                problem(&path, entry.kind.refusal());
                continue;
            }
            let text = fsx::read_file(&root, &file, MAX_TOOL_FILE_BYTES).and_then(|loaded| {
                loaded
                    .map(|l| {
                        String::from_utf8(l.bytes).map_err(|e| StorageError::Corrupt {
                            path: path.clone(),
                            message: format!("not UTF-8: {}", e.utf8_error()),
                        })
                    })
                    .transpose()
            });
            match text {
                Ok(Some(text)) => sources.push(ToolSource {
                    origin: path.display().to_string(),
                    text,
                }),
                Ok(None) => {}
                Err(e) => problem(&path, reason(&e)),
            }
        }
        sources.sort_by(|a, b| a.origin.cmp(&b.origin));
        Ok((sources, problems))
    }

    fn put_tool(&self, file_name: &str, text: &str) -> Result<(), StorageError> {
        validate_tool_file_name(file_name)?;
        if text.len() as u64 > MAX_TOOL_FILE_BYTES {
            return Err(StorageError::Refused {
                path: self.tools.join(file_name),
                reason: format!(
                    "it holds {} bytes, more than the {MAX_TOOL_FILE_BYTES} a tool definition may",
                    text.len()
                ),
            });
        }
        let root = open_root_for_write(&self.tools)?;
        let tmp = tmp_dir(&root)?;
        fsx::write(&tmp, &root, file_name, &[text.as_bytes()])
    }

    // ----- deps -----------------------------------------------------------

    fn deps_get(&self) -> Result<Option<String>, StorageError> {
        let Some(root) = fsx::open_root(&self.deps, false)? else {
            return Ok(None);
        };
        Ok(fsx::read_file(&root, DEPS_FILE, super::MAX_DEPS_BYTES)?
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned()))
    }

    fn deps_put(&self, text: &str) -> Result<(), StorageError> {
        let root = open_root_for_write(&self.deps)?;
        let tmp = tmp_dir(&root)?;
        fsx::write(&tmp, &root, DEPS_FILE, &[text.as_bytes()])
    }

    // ----- cache ----------------------------------------------------------

    fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_cache_key(key)?;
        let Some(root) = fsx::open_root(&self.cache, false)? else {
            return Ok(None);
        };
        Ok(fsx::read_file(&root, key, MAX_CACHE_BYTES)?.map(|l| l.bytes))
    }

    fn cache_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        validate_cache_key(key)?;
        let root = open_root_for_write(&self.cache)?;
        let tmp = tmp_dir(&root)?;
        fsx::write(&tmp, &root, key, &[value])
    }

    fn cache_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let Some(root) = fsx::open_root(&self.cache, false)? else {
            return Ok(Vec::new());
        };
        Ok(fsx::list(&root)?
            .into_iter()
            .filter(|e| e.kind == Kind::File)
            .filter_map(|e| e.name.ok())
            // Hidden names (temporary files of earlier versions) are not keys.
            .filter(|name| name.starts_with(prefix) && validate_cache_key(name).is_ok())
            .collect())
    }

    fn cache_delete(&self, key: &str) -> Result<bool, StorageError> {
        validate_cache_key(key)?;
        match fsx::open_root(&self.cache, false)? {
            Some(root) => fsx::remove(&root, key),
            None => Ok(false),
        }
    }
}

#[async_trait]
impl Storage for FileStorage {
    fn location(&self) -> String {
        self.inner
            .skills
            .parent()
            .unwrap_or(&self.inner.skills)
            .display()
            .to_string()
    }

    async fn tool_sources(&self) -> Result<Vec<ToolSource>, StorageError> {
        self.blocking(|inner| {
            let (sources, problems) = inner.scan_tools()?;
            inner.warned.warn(&problems);
            Ok(sources)
        })
        .await
    }

    async fn put_tool(&self, file_name: &str, text: &str) -> Result<(), StorageError> {
        let (file_name, text) = (file_name.to_owned(), text.to_owned());
        self.blocking(move |inner| inner.put_tool(&file_name, &text))
            .await
    }

    async fn list_skills(&self) -> Result<Vec<SkillRecord>, StorageError> {
        self.blocking(|inner| {
            let (skills, problems) = inner.scan_skills()?;
            inner.warned.warn(&problems);
            Ok(skills)
        })
        .await
    }

    async fn list_skill_entries(&self) -> Result<Vec<SkillEntry>, StorageError> {
        self.blocking(|inner| {
            let (skills, problems) = inner.scan_skills_with(Inner::read_skill_entry)?;
            inner.warned.warn(&problems);
            Ok(skills)
        })
        .await
    }

    async fn get_skill(&self, name: &str) -> Result<Option<SkillRecord>, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.get_skill(&name)).await
    }

    async fn put_skill(&self, skill: &SkillRecord) -> Result<(), StorageError> {
        let skill = skill.clone();
        self.blocking(move |inner| inner.put_skill(&skill)).await
    }

    async fn delete_skill(&self, name: &str) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.delete_skill(&name)).await
    }

    async fn commit_skill(
        &self,
        skill: &SkillRecord,
        provenance: &Provenance,
        keep: usize,
    ) -> Result<SkillRecord, StorageError> {
        let (skill, provenance) = (skill.clone(), provenance.clone());
        self.blocking(move |inner| inner.commit_skill(&skill, &provenance, keep))
            .await
    }

    async fn skill_history(&self, name: &str) -> Result<Vec<SkillVersion>, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.skill_history(&name)).await
    }

    fn keeps_history(&self) -> bool {
        true
    }

    async fn put_skill_history(
        &self,
        name: &str,
        versions: &[SkillVersion],
    ) -> Result<(), StorageError> {
        let (name, versions) = (name.to_owned(), versions.to_vec());
        self.blocking(move |inner| inner.put_skill_history(&name, &versions))
            .await
    }

    async fn purge_skill(&self, name: &str) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.purge_skill(&name)).await
    }

    async fn skill_cases(&self, name: &str) -> Result<Option<String>, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.skill_cases(&name)).await
    }

    async fn put_skill_cases(&self, name: &str, json: &str) -> Result<(), StorageError> {
        let (name, json) = (name.to_owned(), json.to_owned());
        self.blocking(move |inner| inner.put_skill_cases(&name, &json))
            .await
    }

    async fn put_artifact(&self, meta: &ArtifactMeta, data: &[u8]) -> Result<(), StorageError> {
        // Checked before copying the data for the blocking pool.
        validate_artifact_name(&meta.name)?;
        if data.len() as u64 > MAX_ARTIFACT_BYTES {
            return self.inner.put_artifact(meta, data);
        }
        let (meta, data) = (meta.clone(), data.to_vec());
        self.blocking(move |inner| inner.put_artifact(&meta, &data))
            .await
    }

    async fn get_artifact(
        &self,
        name: &str,
    ) -> Result<Option<(ArtifactMeta, Vec<u8>)>, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.read_artifact(&name, false))
            .await
    }

    async fn artifact_meta(&self, name: &str) -> Result<Option<ArtifactMeta>, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| Ok(inner.read_artifact(&name, true)?.map(|(meta, _)| meta)))
            .await
    }

    async fn list_artifacts(&self) -> Result<Vec<ArtifactMeta>, StorageError> {
        self.blocking(|inner| {
            let (metas, problems) = inner.scan_artifacts()?;
            inner.warned.warn(&problems);
            Ok(metas)
        })
        .await
    }

    async fn delete_artifact(&self, name: &str) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.delete_artifact(&name))
            .await
    }

    async fn ensure_layout(&self) -> Result<(), StorageError> {
        self.blocking(|inner| {
            for dir in [&inner.tools, &inner.skills, &inner.artifacts] {
                fsx::open_root(dir, true)?;
            }
            Ok(())
        })
        .await
    }

    async fn deps_get(&self) -> Result<Option<String>, StorageError> {
        self.blocking(Inner::deps_get).await
    }

    async fn deps_put(&self, text: &str) -> Result<(), StorageError> {
        let text = text.to_owned();
        self.blocking(move |inner| inner.deps_put(&text)).await
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.cache_get(&key)).await
    }

    async fn cache_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.blocking(move |inner| inner.cache_put(&key, &value))
            .await
    }

    async fn cache_get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let keys = keys.to_vec();
        self.blocking(move |inner| keys.iter().map(|k| inner.cache_get(k)).collect())
            .await
    }

    async fn cache_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = prefix.to_owned();
        self.blocking(move |inner| inner.cache_keys(&prefix)).await
    }

    async fn cache_delete(&self, key: &str) -> Result<bool, StorageError> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.cache_delete(&key)).await
    }

    async fn problems(&self) -> Result<Vec<StorageProblem>, StorageError> {
        self.blocking(|inner| {
            let mut problems = inner.scan_tools()?.1;
            problems.extend(inner.scan_skills()?.1);
            problems.extend(inner.scan_artifacts()?.1);
            problems.sort();
            Ok(problems)
        })
        .await
    }
}

/// `a/b/c` -> (`["a", "b"]`, `"c"`); the name was validated (no empty part).
fn split_name(name: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = name.split('/').collect();
    let leaf = parts.pop().unwrap_or(name);
    (parts, leaf)
}

/// The folder a write goes to, made if it went missing since `open`.
fn open_root_for_write(path: &Path) -> Result<Folder, StorageError> {
    fsx::open_root(path, true)?.ok_or_else(|| StorageError::Io {
        action: "open",
        path: path.to_path_buf(),
        source: std::io::ErrorKind::NotFound.into(),
    })
}

fn tmp_dir(root: &Folder) -> Result<Folder, StorageError> {
    fsx::open_dir(root, TMP_DIR, true)?.ok_or_else(|| StorageError::Io {
        action: "create",
        path: root.path().join(TMP_DIR),
        source: std::io::ErrorKind::NotFound.into(),
    })
}

/// Removes the metadata file an earlier version kept apart for an item
/// (`<root>/.meta/<parents>/<file>`), once the item holds its own; returns
/// whether there was one. Failing to remove it is harmless (the item's own
/// metadata wins) and only logged.
fn remove_legacy_meta(root: &Folder, parents: &[&str], file: &str) -> bool {
    let removed = fsx::open_dir(root, LEGACY_META_DIR, false).and_then(|meta| match meta {
        Some(meta) => match fsx::open_path(&meta, parents, false)? {
            Some(dir) => fsx::remove(&dir, file),
            None => Ok(false),
        },
        None => Ok(false),
    });
    removed.unwrap_or_else(|e| {
        tracing::warn!("cannot remove old metadata: {e}");
        false
    })
}

/// Writes `skill` as the file `name` of `dir`: its header line, then its
/// source; with `copy`, the same file also under that folder and name (see
/// [`fsx::write_linked`]).
fn write_skill_file(
    tmp: &Folder,
    dir: &Folder,
    name: &str,
    copy: Option<(&Folder, &str)>,
    skill: &SkillRecord,
) -> Result<(), StorageError> {
    let meta = SkillMeta {
        description: skill.description.clone(),
        created_at: skill.created_at,
        updated_at: skill.updated_at,
        provenance: skill.provenance.clone(),
    };
    let header = skill_header(&meta);
    fsx::write_linked(
        tmp,
        dir,
        name,
        copy,
        &[header.as_bytes(), skill.source.as_bytes()],
    )
}

/// The first line of a skill file: a comment holding the metadata as JSON.
fn skill_header(meta: &SkillMeta) -> String {
    let json = String::from_utf8(to_json(meta)).unwrap_or_default();
    // Python reads `coding[:=]` in a first-line comment as the file's encoding
    // (PEP 263); a description must not be able to declare one. `\u0063` is
    // `c` in JSON, and the word can only occur inside a string.
    format!("{SKILL_HEADER}{}\n", json.replace("coding", "\\u0063oding"))
}

/// The reason of an error for a [`StorageProblem`] (the location is apart).
fn reason(e: &StorageError) -> String {
    match e {
        StorageError::Corrupt { message, .. } => message.clone(),
        StorageError::Refused { reason, .. } => reason.clone(),
        StorageError::Io { action, source, .. } => format!("cannot {action} it: {source}"),
        other => other.to_string(),
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs cannot fail; compact, so one line.
    serde_json::to_vec(value).unwrap_or_default()
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        path: path.to_path_buf(),
        message: format!("its metadata is not valid: {e}"),
    })
}
