//! Every environment variable the command reads, declared once.

/// The library folder (`tools/`, `skills/`, `artifacts/`), like `--base`.
pub const PY_CODE_MODE_BASE: &str = "PY_CODE_MODE_BASE";
/// The Python interpreter of the worker, like `--python`.
pub const PY_CODE_MODE_PYTHON: &str = "PY_CODE_MODE_PYTHON";
/// Where agent code runs (`sandbox`, `subprocess`), like `--executor`.
pub const PY_CODE_MODE_EXECUTOR: &str = "PY_CODE_MODE_EXECUTOR";
/// The worker image of `--executor container`, like `--image`.
pub const PY_CODE_MODE_IMAGE: &str = "PY_CODE_MODE_IMAGE";
/// The container engine (`docker`, `podman`), like `--engine`.
pub const PY_CODE_MODE_ENGINE: &str = "PY_CODE_MODE_ENGINE";
/// Memory the worker may use (`512m`, `1g`), like `--memory`.
pub const PY_CODE_MODE_MEMORY: &str = "PY_CODE_MODE_MEMORY";
/// CPUs the worker may use, like `--cpus`.
pub const PY_CODE_MODE_CPUS: &str = "PY_CODE_MODE_CPUS";
/// Processes the worker may run at once, like `--pids-limit`.
pub const PY_CODE_MODE_PIDS_LIMIT: &str = "PY_CODE_MODE_PIDS_LIMIT";
/// Default timeout of one run in seconds, like `--timeout`.
pub const PY_CODE_MODE_TIMEOUT: &str = "PY_CODE_MODE_TIMEOUT";
/// Log filter (`info`, `py_code_mode=debug`); logs always go to stderr.
pub const PY_CODE_MODE_LOG: &str = "PY_CODE_MODE_LOG";
/// Storage backend, `file` or `redis`, like `--backend`.
pub const PY_CODE_MODE_BACKEND: &str = "PY_CODE_MODE_BACKEND";
/// Redis URL (`redis://…`, `rediss://…`), like `--redis` / `--url`.
pub const PY_CODE_MODE_REDIS_URL: &str = "PY_CODE_MODE_REDIS_URL";
/// A file holding the Redis password, like `--redis-password-file`.
pub const PY_CODE_MODE_REDIS_PASSWORD_FILE: &str = "PY_CODE_MODE_REDIS_PASSWORD_FILE";
/// Key prefix in Redis (the tenant), like `--prefix`.
pub const PY_CODE_MODE_PREFIX: &str = "PY_CODE_MODE_PREFIX";
/// The session id skill versions record, like `--session-id`.
pub const PY_CODE_MODE_SESSION_ID: &str = "PY_CODE_MODE_SESSION_ID";
/// Embedding model for hybrid search (alias, Hugging Face id or directory), like `--embedding-model`.
pub const PY_CODE_MODE_EMBEDDING_MODEL: &str = "PY_CODE_MODE_EMBEDDING_MODEL";
/// The bearer token HTTP clients must send to `serve --http`, like `--token-file`.
pub const PY_CODE_MODE_TOKEN: &str = "PY_CODE_MODE_TOKEN";
/// The REPL's history file, like `repl --history`.
pub const PY_CODE_MODE_HISTORY: &str = "PY_CODE_MODE_HISTORY";
