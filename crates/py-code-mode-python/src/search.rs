//! The searcher behind a `Session`'s `search_tools` / `search_skills` (and
//! `tools.search` / `skills.search` in agent code), from its keyword arguments
//! `embedding_model` and `semantic`.

use std::path::PathBuf;
use std::sync::Arc;

use py_code_mode::{HybridSearcher, LexicalSearcher, Searcher, Storage};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Embedding model when `Session(embedding_model=None)`: an alias, Hugging Face
/// id or model directory. The same variable as the command line's `--embedding-model`.
pub(crate) const PY_CODE_MODE_EMBEDDING_MODEL: &str = "PY_CODE_MODE_EMBEDDING_MODEL";

/// What `Session(embedding_model=..., semantic=...)` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchChoice {
    /// The model spec to load, or `None` for lexical search only.
    pub(crate) model: Option<String>,
}

impl SearchChoice {
    /// `embedding_model` wins, then the environment variable (when set and not
    /// empty, like the command line reads it), then the default model.
    /// `semantic=False` never loads a model, whatever the model arguments say.
    ///
    /// `embedding_model` is a `PathBuf` so that Python may pass a `str` or an
    /// `os.PathLike`; an alias or a Hugging Face id is a relative path to PyO3.
    pub(crate) fn new(embedding_model: Option<PathBuf>, semantic: bool) -> PyResult<Self> {
        if !semantic {
            return Ok(Self { model: None });
        }
        let model = match embedding_model {
            Some(spec) => {
                let spec = spec.into_os_string().into_string().map_err(|spec| {
                    PyValueError::new_err(format!(
                        "`embedding_model` is not UTF-8: `{}`",
                        spec.to_string_lossy()
                    ))
                })?;
                if spec.trim().is_empty() {
                    return Err(PyValueError::new_err(
                        "`embedding_model` is empty\nhint: pass `semantic=False` for lexical search only",
                    ));
                }
                spec
            }
            None => std::env::var(PY_CODE_MODE_EMBEDDING_MODEL)
                .ok()
                .filter(|spec| !spec.trim().is_empty())
                .unwrap_or_else(|| py_code_mode_embed::DEFAULT_MODEL.to_owned()),
        };
        Ok(Self { model: Some(model) })
    }

    /// The searcher: hybrid over `storage`'s vector cache, its model loading on
    /// a background thread from now (searches are lexical until it is ready, and
    /// stay lexical if it fails), or lexical.
    pub(crate) fn searcher(&self, storage: &Arc<dyn Storage>) -> Arc<dyn Searcher> {
        match &self.model {
            Some(spec) => Arc::new(HybridSearcher::load_model(spec, Some(Arc::clone(storage)))),
            None => Arc::new(LexicalSearcher),
        }
    }
}
