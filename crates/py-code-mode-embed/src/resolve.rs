//! Turning a model spec (alias, Hugging Face id or directory) into a model directory on disk.
//!
//! Nothing here touches the network unless the `hub` feature is compiled in and the caller set
//! `LoadOptions::allow_download`.

use std::path::{Path, PathBuf};

use crate::LoadOptions;
use crate::env_vars;
use crate::error::EmbedError;

/// The model used when the configuration names none.
pub const DEFAULT_MODEL: &str = "bge-small";

/// Short names for the models we recommend, mapped to their Hugging Face ids.
const ALIASES: &[(&str, &str)] = &[
    ("bge-small", "BAAI/bge-small-en-v1.5"),
    ("bge-base", "BAAI/bge-base-en-v1.5"),
    ("granite", "ibm-granite/granite-embedding-small-english-r2"),
];

/// Files without which a model directory cannot be loaded.
pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";
pub(crate) const WEIGHTS_FILE: &str = "model.safetensors";
const REQUIRED_FILES: [&str; 3] = [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE];

/// Sentence-transformers files that refine pooling, normalisation, prompts and length.
#[cfg_attr(
    not(feature = "hub"),
    expect(dead_code, reason = "only downloads list them")
)]
pub(crate) const OPTIONAL_FILES: [&str; 4] = [
    "modules.json",
    "1_Pooling/config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
];

/// Maps an alias to its Hugging Face id; any other spec is returned unchanged.
pub fn resolve_alias(spec: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == spec)
        .map_or(spec, |(_, id)| id)
}

/// A model directory that holds the required files, and the id it is known by.
#[derive(Debug)]
pub(crate) struct ResolvedModel {
    /// Hugging Face id (`ORG/NAME`) when known, else the directory path.
    pub(crate) id: String,
    pub(crate) dir: PathBuf,
}

pub(crate) fn resolve(spec: &str, opts: &LoadOptions) -> Result<ResolvedModel, EmbedError> {
    let path = Path::new(spec);
    if path.is_dir() {
        check_required_files(path)?;
        let dir = path.canonicalize().map_err(|source| EmbedError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let id = hub_id_from_snapshot_path(&dir).unwrap_or_else(|| dir.display().to_string());
        return Ok(ResolvedModel { id, dir });
    }
    if looks_like_path(spec) {
        return Err(EmbedError::DirNotFound {
            dir: path.to_path_buf(),
        });
    }

    let id = resolve_alias(spec);
    let cache = match &opts.cache_dir {
        Some(dir) => dir.clone(),
        None => default_hub_cache().ok_or_else(|| EmbedError::NoCacheDir {
            model: id.to_owned(),
        })?,
    };
    if let Some(dir) = find_cached_snapshot(&cache, id) {
        check_required_files(&dir)?;
        return Ok(ResolvedModel {
            id: id.to_owned(),
            dir,
        });
    }
    if opts.allow_download {
        return download(id, &cache, opts.endpoint.as_deref());
    }
    Err(EmbedError::NotCached {
        model: id.to_owned(),
        cache,
        hint: not_cached_hint(id),
    })
}

fn not_cached_hint(id: &str) -> String {
    let download = if cfg!(feature = "hub") {
        "allow downloads"
    } else {
        "build with the `hub` feature and allow downloads"
    };
    format!("run `hf download {id}`, pass a local model directory, or {download}")
}

/// Specs that can only mean a directory; everything else may be a Hugging Face id `ORG/NAME`.
fn looks_like_path(spec: &str) -> bool {
    spec.starts_with(['/', '.', '~'])
        || spec.contains('\\')
        || spec.matches('/').count() > 1
        || Path::new(spec).is_absolute()
}

fn check_required_files(dir: &Path) -> Result<(), EmbedError> {
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            return Err(EmbedError::MissingFile {
                dir: dir.to_path_buf(),
                file,
            });
        }
    }
    Ok(())
}

/// The hub cache `huggingface_hub` would use: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub(crate) fn default_hub_cache() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var(env_vars::HF_HUB_CACHE) {
        return Some(dir);
    }
    let home = var(env_vars::HF_HOME)
        .or_else(|| var(env_vars::XDG_CACHE_HOME).map(|d| d.join("huggingface")))
        .or_else(|| var(env_vars::HOME).map(|d| d.join(".cache").join("huggingface")))?;
    Some(home.join("hub"))
}

/// `models--ORG--NAME/snapshots/<rev>/` for the revision `refs/main` points at; without that ref,
/// the most recently written snapshot that has a `config.json`.
fn find_cached_snapshot(cache: &Path, id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let dir = snapshots.join(rev.trim());
        if dir.join(CONFIG_FILE).is_file() {
            return Some(dir);
        }
    }
    std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|dir| dir.join(CONFIG_FILE).is_file())
        .max_by_key(|dir| dir.metadata().and_then(|m| m.modified()).ok())
}

/// `ORG/NAME` when `dir` is a snapshot inside a hub cache (`…/models--ORG--NAME/snapshots/<rev>`).
fn hub_id_from_snapshot_path(dir: &Path) -> Option<String> {
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let repo = snapshots.parent()?.file_name()?.to_str()?;
    let (org, name) = repo.strip_prefix("models--")?.split_once("--")?;
    Some(format!("{org}/{name}"))
}

/// Whether `HF_HUB_OFFLINE` forbids downloads.
pub(crate) fn hub_offline() -> bool {
    std::env::var(env_vars::HF_HUB_OFFLINE).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

#[cfg(feature = "hub")]
fn download(id: &str, cache: &Path, endpoint: Option<&str>) -> Result<ResolvedModel, EmbedError> {
    use hf_hub::api::sync::ApiBuilder;
    use std::io::IsTerminal as _;

    let err = |file: &str| {
        let model = id.to_owned();
        let file = file.to_owned();
        move |source| EmbedError::Download {
            model,
            file,
            source,
        }
    };
    // `from_env` reads `HF_ENDPOINT`; download bars only when a person watches.
    let mut builder = ApiBuilder::from_env()
        .with_cache_dir(cache.to_path_buf())
        .with_progress(std::io::stderr().is_terminal());
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint.to_owned());
    }
    // hf-hub itself only reads the token file next to the cache; gated models need the
    // variable too, as with `huggingface_hub`.
    if let Some(token) = std::env::var(env_vars::HF_TOKEN)
        .ok()
        .filter(|t| !t.is_empty())
    {
        builder = builder.with_token(Some(token));
    }
    let api = builder.build().map_err(err(""))?;
    let repo = api.model(id.to_owned());
    tracing::info!(model = id, cache = %cache.display(), "downloading embedding model");
    let config = repo.get(CONFIG_FILE).map_err(err(CONFIG_FILE))?;
    for file in [TOKENIZER_FILE, WEIGHTS_FILE] {
        repo.get(file).map_err(err(file))?;
    }
    for file in OPTIONAL_FILES {
        if let Err(error) = repo.get(file) {
            tracing::debug!(model = id, file, %error, "optional model file not fetched");
        }
    }
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| EmbedError::DirNotFound {
            dir: config.clone(),
        })?;
    Ok(ResolvedModel {
        id: id.to_owned(),
        dir,
    })
}

#[cfg(not(feature = "hub"))]
fn download(id: &str, cache: &Path, _endpoint: Option<&str>) -> Result<ResolvedModel, EmbedError> {
    Err(EmbedError::NotCached {
        model: id.to_owned(),
        cache: cache.to_path_buf(),
        hint: format!(
            "this build has no `hub` feature, so downloads are impossible; run `hf download {id}` \
             or pass a local model directory"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_ids_pass_through() {
        assert_eq!(resolve_alias("bge-small"), "BAAI/bge-small-en-v1.5");
        assert_eq!(resolve_alias("bge-base"), "BAAI/bge-base-en-v1.5");
        assert_eq!(
            resolve_alias("granite"),
            "ibm-granite/granite-embedding-small-english-r2"
        );
        assert_eq!(resolve_alias("org/model"), "org/model");
    }

    #[test]
    fn paths_are_told_apart_from_hub_ids() {
        assert!(looks_like_path("./model"));
        assert!(looks_like_path("/opt/models/x"));
        assert!(looks_like_path("a/b/c"));
        assert!(!looks_like_path("BAAI/bge-small-en-v1.5"));
        assert!(!looks_like_path("bge-small"));
    }

    #[test]
    fn snapshot_paths_yield_hub_ids() {
        let dir = Path::new("/c/hub/models--BAAI--bge-small-en-v1.5/snapshots/abc123");
        assert_eq!(
            hub_id_from_snapshot_path(dir).as_deref(),
            Some("BAAI/bge-small-en-v1.5")
        );
        assert_eq!(hub_id_from_snapshot_path(Path::new("/opt/model")), None);
    }

    #[test]
    fn cached_snapshot_follows_refs_main() -> Result<(), Box<dyn std::error::Error>> {
        let cache = tempfile::tempdir()?;
        let repo = cache.path().join("models--org--m");
        for rev in ["old", "new"] {
            std::fs::create_dir_all(repo.join("snapshots").join(rev))?;
            std::fs::write(repo.join("snapshots").join(rev).join(CONFIG_FILE), "{}")?;
        }
        std::fs::create_dir_all(repo.join("refs"))?;
        std::fs::write(repo.join("refs").join("main"), "old\n")?;
        assert_eq!(
            find_cached_snapshot(cache.path(), "org/m"),
            Some(repo.join("snapshots").join("old"))
        );
        assert_eq!(find_cached_snapshot(cache.path(), "org/other"), None);
        Ok(())
    }
}
