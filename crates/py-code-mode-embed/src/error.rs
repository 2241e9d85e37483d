//! The one error type of this crate: every variant names the model directory, file or model id
//! it is about, with the underlying cause in `#[source]`.

use std::path::PathBuf;

/// Why a model could not be found, loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    #[error("model directory `{}` does not exist", dir.display())]
    DirNotFound { dir: PathBuf },

    #[error("model directory `{}` is missing `{file}`", dir.display())]
    MissingFile { dir: PathBuf, file: &'static str },

    #[error("could not read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not parse `{}`", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "model `{model}` is not in the Hugging Face cache at `{}`\n\
         hint: {hint}",
        cache.display()
    )]
    NotCached {
        model: String,
        cache: PathBuf,
        hint: String,
    },

    #[error(
        "cannot locate the Hugging Face cache for model `{model}`: none of `HF_HUB_CACHE`, \
         `HF_HOME`, `XDG_CACHE_HOME` or `HOME` is set\n\
         hint: pass a local model directory or set `HF_HOME`"
    )]
    NoCacheDir { model: String },

    #[error("unsupported architecture `{architecture}` in `{}`", config.display())]
    UnsupportedArchitecture {
        architecture: String,
        config: PathBuf,
    },

    #[error("unsupported sentence-transformers module `{module}` in `{}`", path.display())]
    UnsupportedModule { module: String, path: PathBuf },

    #[error("unsupported pooling in `{}`: {reason}", path.display())]
    UnsupportedPooling { path: PathBuf, reason: String },

    #[error("could not load tokenizer `{}`", path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },

    #[error("could not load weights `{}`", path.display())]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },

    #[error("tokenizing input for model `{model}` failed")]
    Tokenize {
        model: String,
        #[source]
        source: tokenizers::Error,
    },

    #[error("running model `{model}` failed")]
    Inference {
        model: String,
        #[source]
        source: candle_core::Error,
    },

    #[error("invalid thread count `{value}` from {origin}: expected a positive integer")]
    InvalidThreads { value: String, origin: &'static str },

    #[error("could not start {threads} embedding worker threads")]
    ThreadPool {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },

    #[cfg(feature = "hub")]
    #[error("downloading `{file}` of model `{model}` from the Hugging Face Hub failed")]
    Download {
        model: String,
        file: String,
        #[source]
        source: hf_hub::api::sync::ApiError,
    },
}
