//! Every environment variable this crate reads, declared once.

/// Number of CPU threads used to run the model; overridden by `LoadOptions::threads`.
pub const PY_CODE_MODE_EMBED_THREADS: &str = "PY_CODE_MODE_EMBED_THREADS";

/// The Hugging Face hub cache directory (holds `models--ORG--NAME/`), as in `huggingface_hub`.
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";

/// The Hugging Face home; the hub cache is `$HF_HOME/hub`.
pub const HF_HOME: &str = "HF_HOME";

/// Fallback base of the Hugging Face home: `$XDG_CACHE_HOME/huggingface`.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";

/// Last fallback: `$HOME/.cache/huggingface`.
pub const HOME: &str = "HOME";

/// Hugging Face access token for downloads (feature `hub`); otherwise the `token` file in the
/// Hugging Face home is used.
pub const HF_TOKEN: &str = "HF_TOKEN";

/// Read by candle, not by us: sizes candle's process-wide pool for large element-wise ops
/// (falls back to `RAYON_NUM_THREADS`, then the number of physical cores). Set it to the same
/// value as [`PY_CODE_MODE_EMBED_THREADS`] in the process environment to bound all of candle.
pub const CANDLE_NUM_THREADS: &str = "CANDLE_NUM_THREADS";

/// Where downloads come from (feature `hub`), as in `huggingface_hub`; overridden by
/// `LoadOptions::endpoint`.
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";

/// `1`, `true`, `yes` or `on`: never download, as in `huggingface_hub`
/// (read by `LoadOptions::online_unless_offline`).
pub const HF_HUB_OFFLINE: &str = "HF_HUB_OFFLINE";
