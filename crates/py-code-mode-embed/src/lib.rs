//! Sentence embeddings for tool and skill search, on candle's CPU backend, offline by default.
//!
//! Layout:
//! - `resolve`: alias → Hugging Face id → model directory (local path, then the Hugging Face
//!   cache; downloads only with the `hub` feature and [`LoadOptions::allow_download`]).
//! - `st_config`: the model's sentence-transformers files (pooling, `Normalize`, query prompt,
//!   maximum length).
//! - `model`: [`EmbeddingModel`], which tokenizes, runs BERT or ModernBERT, pools and
//!   normalises, on a thread pool sized by [`LoadOptions::threads`] or
//!   `PY_CODE_MODE_EMBED_THREADS`.
//!
//! ```no_run
//! use py_code_mode_embed::{DEFAULT_MODEL, EmbeddingModel, LoadOptions};
//!
//! let model = EmbeddingModel::load(DEFAULT_MODEL, &LoadOptions::default())?;
//! let docs = model.embed_documents(&["scan a network for open ports"])?;
//! let query = model.embed_query("port scanner")?;
//! assert_eq!(query.len(), model.dim());
//! # Ok::<(), py_code_mode_embed::EmbedError>(())
//! ```

mod error;
mod model;
mod resolve;
mod st_config;

pub mod env_vars;

pub use error::EmbedError;
pub use model::{EmbeddingModel, LoadOptions};
pub use resolve::{DEFAULT_MODEL, resolve_alias};
pub use st_config::BGE_QUERY_INSTRUCTION;
