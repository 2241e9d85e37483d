//! Command-line options, merged with the environment by clap, turned into a session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use py_code_mode::{
    FileStorage, HybridSearcher, LexicalSearcher, RedisStorage, Searcher, Session, Storage,
    SubprocessConfig,
};

use crate::env_vars;

/// Tools your agents can search, compose, and learn from.
///
/// With no command, serves the Model Context Protocol on stdio.
#[derive(Debug, Parser)]
#[command(name = "py-code-mode", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub library: LibraryArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP on stdio (the default)
    Serve,
    /// Run Python code once and print its output and value
    Run(RunArgs),
    /// List or search tools
    #[command(subcommand)]
    Tools(Listing),
    /// List or search skills
    #[command(subcommand)]
    Skills(Listing),
    /// Embed every tool and skill now, so searches and restarts find them cached
    Index,
    /// Move a library between the folder (`--base`) and Redis (`--redis`, `--prefix`)
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy the folder's tools, skills and artifacts into Redis
    Push(StoreArgs),
    /// Copy Redis's tools, skills and artifacts into the folder
    Pull(StoreArgs),
    /// List what differs between the folder and Redis (exit code 1 if anything does)
    Diff(StoreArgs),
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Only say what would be copied
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// Where the library is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Folders under `--base`
    File,
    /// Redis at `--redis` (alias `--url`), under `--prefix`
    Redis,
}

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "py-code-mode";

#[derive(Debug, Subcommand)]
pub enum Listing {
    /// Everything, as JSON
    List,
    /// The best matches for a query, as JSON
    Search {
        query: String,
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The code to run
    #[arg(short = 'c', long = "code", conflicts_with = "file")]
    pub code: Option<String>,
    /// A file with the code to run (`-` for stdin)
    pub file: Option<PathBuf>,
    /// Print the whole result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Where the library lives and how code runs; shared by every command.
#[derive(Debug, Args)]
pub struct LibraryArgs {
    /// Library folder holding `tools/`, `skills/` and `artifacts/`
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_BASE, value_name = "DIR")]
    pub base: Option<PathBuf>,
    /// Tool definitions folder (default: `<base>/tools`)
    #[arg(long, global = true, value_name = "DIR")]
    pub tools: Option<PathBuf>,
    /// Skills folder (default: `<base>/skills`)
    #[arg(long, global = true, value_name = "DIR")]
    pub skills: Option<PathBuf>,
    /// Artifacts folder (default: `<base>/artifacts`)
    #[arg(long, global = true, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Storage backend (default: `redis` when `--redis` is given, else `file`)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_BACKEND, value_enum)]
    pub backend: Option<Backend>,
    /// Redis URL: `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS)
    #[arg(long, alias = "url", global = true, env = env_vars::PY_CODE_MODE_REDIS_URL, value_name = "URL")]
    pub redis: Option<String>,
    /// Key prefix in Redis: one prefix is one isolated library
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_PREFIX, default_value = DEFAULT_PREFIX, value_name = "NAME")]
    pub prefix: String,
    /// Python interpreter for the worker (default: `python3` on PATH)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_PYTHON, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Default timeout of one run, in seconds
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_TIMEOUT, default_value_t = 60.0, value_name = "SECS")]
    pub timeout: f64,
    /// Embedding model for hybrid search: `bge-small`, `bge-base`, `granite`, a Hugging Face id
    /// in the local cache, or a model directory
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_EMBEDDING_MODEL, default_value = "bge-small", value_name = "NAME")]
    pub embedding_model: String,
    /// Rank search results lexically only; never load an embedding model
    #[arg(long, global = true)]
    pub no_semantic: bool,
}

impl LibraryArgs {
    /// Opens the storage the options describe: Redis or the folder.
    pub async fn storage(&self) -> anyhow::Result<Arc<dyn Storage>> {
        match self.effective_backend()? {
            Backend::Redis => Ok(Arc::new(self.redis_storage().await?)),
            Backend::File => Ok(Arc::new(self.file_storage()?)),
        }
    }

    /// `--backend`, or `redis` when a Redis URL is given.
    pub fn effective_backend(&self) -> anyhow::Result<Backend> {
        match (self.backend, &self.redis) {
            (Some(Backend::Redis) | None, Some(_)) => Ok(Backend::Redis),
            (Some(Backend::Redis), None) => bail!(
                "`--backend redis` needs a Redis URL\nhint: `--redis redis://localhost:6379` or set `{}`",
                env_vars::PY_CODE_MODE_REDIS_URL
            ),
            (Some(Backend::File), Some(_)) => bail!(
                "`--backend file` and `--redis` contradict each other\nhint: drop one of them"
            ),
            (Some(Backend::File) | None, None) => Ok(Backend::File),
        }
    }

    /// The Redis library of `--redis` and `--prefix`.
    pub async fn redis_storage(&self) -> anyhow::Result<RedisStorage> {
        let Some(url) = &self.redis else {
            bail!(
                "no Redis URL\nhint: `--redis redis://localhost:6379` or set `{}`",
                env_vars::PY_CODE_MODE_REDIS_URL
            );
        };
        Ok(RedisStorage::connect(url, &self.prefix).await?)
    }

    /// The folder library of `--base` (and `--tools`, `--skills`, `--artifacts`).
    pub fn file_storage(&self) -> anyhow::Result<FileStorage> {
        let base = self.base.clone().unwrap_or_else(|| PathBuf::from("."));
        let storage = FileStorage::with_dirs(
            &base,
            self.tools.clone().unwrap_or_else(|| base.join("tools")),
            self.skills.clone().unwrap_or_else(|| base.join("skills")),
            self.artifacts
                .clone()
                .unwrap_or_else(|| base.join("artifacts")),
        )
        .with_context(|| format!("cannot open the library at `{}`", base.display()))?;
        Ok(storage)
    }

    pub fn timeout(&self) -> anyhow::Result<Duration> {
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!(
                "`--timeout` must be a positive number of seconds, not {}",
                self.timeout
            );
        }
        Ok(Duration::from_secs_f64(self.timeout))
    }

    /// Builds the session (the worker starts on first use). Unless
    /// `--no-semantic`, the embedding model starts loading in the background.
    pub async fn session(&self) -> anyhow::Result<Session> {
        let storage = self.storage().await?;
        let searcher: Arc<dyn Searcher> = match self.hybrid_searcher(&storage) {
            Some(hybrid) => hybrid,
            None => Arc::new(LexicalSearcher),
        };
        self.session_with(storage, searcher).await
    }

    /// The hybrid searcher the options ask for (its model starts loading now),
    /// or `None` with `--no-semantic`.
    pub fn hybrid_searcher(&self, storage: &Arc<dyn Storage>) -> Option<Arc<HybridSearcher>> {
        (!self.no_semantic).then(|| {
            Arc::new(HybridSearcher::load_model(
                &self.embedding_model,
                Some(Arc::clone(storage)),
            ))
        })
    }

    /// Builds the session over `storage` with `searcher`.
    pub async fn session_with(
        &self,
        storage: Arc<dyn Storage>,
        searcher: Arc<dyn Searcher>,
    ) -> anyhow::Result<Session> {
        let executor = SubprocessConfig {
            python: self.python.clone(),
            ..SubprocessConfig::default()
        };
        Ok(Session::builder(storage)
            .searcher(searcher)
            .executor(executor)
            .timeout(self.timeout()?)
            .build()
            .await?)
    }
}
