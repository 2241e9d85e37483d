//! Command-line options, merged with the environment by clap, turned into a session.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use py_code_mode::{
    FileStorage, HybridSearcher, LexicalSearcher, RedisStorage, SandboxConfig, Searcher, Session,
    Storage, SubprocessConfig,
};

use crate::container::ContainerArgs;
use crate::env_vars;
use crate::isolation::IsolationArgs;

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
    /// Serve MCP on stdio (the default), or on streamable HTTP with `--http`
    Serve(crate::http::ServeArgs),
    /// Run Python code once and print its output and value
    Run(RunArgs),
    /// List, search or call tools
    #[command(subcommand)]
    Tools(crate::human::ToolsCommand),
    /// List, search, show, add or remove skills
    #[command(subcommand)]
    Skills(crate::human::SkillsCommand),
    /// List, show, save or remove artifacts
    #[command(subcommand)]
    Artifacts(crate::human::ArtifactsCommand),
    /// Embed every tool and skill now, so searches and restarts find them cached
    Index,
    /// Move a library between the folder (`--base`) and Redis (`--redis`, `--prefix`)
    #[command(subcommand)]
    Store(StoreCommand),
    /// Show which sandbox layers work on this machine, as JSON
    Sandbox,
    /// An interactive Python session with `tools`, `skills` and `artifacts` bound
    Repl(crate::repl::ReplArgs),
    /// Check the setup: interpreter, library, tool servers, model, isolation
    Doctor(crate::doctor::DoctorArgs),
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

/// Where agent code runs. Every executor runs the same worker and protocol;
/// they differ in how much of the machine agent code can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// The worker in a kernel sandbox: namespaces, Landlock, seccomp, limits, no network
    Sandbox,
    /// A worker process on the host's interpreter, in its own scratch folder
    Subprocess,
    /// The worker in a Docker/Podman container (`--image`), no network unless allowed
    Container,
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
        /// Most results to print (1 to 1000)
        #[arg(long, default_value = "5", value_parser = parse_limit, allow_negative_numbers = true)]
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
    /// Library folder holding `tools/`, `skills/` and `artifacts/` (0.10's `--storage`)
    #[arg(long, alias = "storage", global = true, env = env_vars::PY_CODE_MODE_BASE, value_name = "DIR")]
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
    /// Redis URL: `redis://[user@]host[:port][/db]` or `rediss://` (TLS). A password goes in
    /// `PY_CODE_MODE_REDIS_URL` or `--redis-password-file`, never on the command line, where
    /// every process of the user can read it
    #[arg(long, alias = "url", global = true, env = env_vars::PY_CODE_MODE_REDIS_URL, value_name = "URL")]
    pub redis: Option<String>,
    /// A file holding the Redis password (its first line), for the URL of `--redis`
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_REDIS_PASSWORD_FILE, value_name = "FILE")]
    pub redis_password_file: Option<PathBuf>,
    /// The Redis URL came from the command line (not the environment); set by [`crate::run`].
    #[arg(skip)]
    pub redis_url_in_argv: bool,
    /// Key prefix in Redis: one prefix is one isolated library
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_PREFIX, default_value = DEFAULT_PREFIX, value_name = "NAME")]
    pub prefix: String,
    /// Where agent code runs (default: `sandbox` where the kernel allows it, else `subprocess`)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_EXECUTOR, value_enum)]
    pub executor: Option<ExecutorKind>,
    #[command(flatten)]
    pub isolation: IsolationArgs,
    #[command(flatten)]
    pub container: ContainerArgs,
    /// Python interpreter for the worker (default: `python3` on PATH)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_PYTHON, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Default timeout of one run, in seconds (at most a day)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_TIMEOUT, default_value = "60", value_parser = parse_timeout, allow_negative_numbers = true, value_name = "SECS")]
    pub timeout: Duration,
    /// Embedding model for hybrid search: `bge-small`, `bge-base`, `granite`, a Hugging Face id
    /// in the local cache, or a model directory
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_EMBEDDING_MODEL, default_value = "bge-small", value_name = "NAME")]
    pub embedding_model: String,
    /// Rank search results lexically only; never load an embedding model
    #[arg(long, global = true)]
    pub no_semantic: bool,
    /// Who saves skill versions from this process: recorded as `session` in
    /// each version's provenance (an agent's name, say)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_SESSION_ID, value_name = "ID")]
    pub session_id: Option<String>,
    #[command(flatten)]
    pub deps: crate::deps_tools::DepsArgs,
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
        let Some(url) = self.redis_url()? else {
            bail!(
                "no Redis URL\nhint: `--redis redis://localhost:6379` or set `{}`",
                env_vars::PY_CODE_MODE_REDIS_URL
            );
        };
        Ok(RedisStorage::connect(&url, &self.prefix).await?)
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

    /// The Redis URL to connect to: `--redis` (or the environment), with the
    /// password of `--redis-password-file` when given. A URL with a password
    /// typed on the command line is refused: `/proc/<pid>/cmdline` shows it to
    /// every process of the user, agent code included.
    pub fn redis_url(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = &self.redis else {
            return Ok(None);
        };
        if self.redis_url_in_argv && url_password(url).is_some() {
            bail!(
                "a password in `--redis` is visible to every process of this user (`/proc/<pid>/cmdline`)\n\
                 hint: put the URL in `{}`, or the password in a file named by `--redis-password-file`",
                env_vars::PY_CODE_MODE_REDIS_URL
            );
        }
        let Some(file) = &self.redis_password_file else {
            return Ok(Some(url.clone()));
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the Redis password file `{}`", file.display()))?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            bail!("the Redis password file `{}` is empty", file.display());
        }
        with_password(url, password).map(Some)
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
        let builder = Session::builder(storage)
            .searcher(searcher)
            .timeout(self.timeout)
            .deps(self.deps.config());
        let builder = match &self.session_id {
            Some(id) => builder.session_id(id.clone()),
            None => builder,
        };
        let kind = match self.executor {
            Some(kind) => kind,
            None => crate::sandboxing::default_executor(&self.isolation).await?,
        };
        if kind != ExecutorKind::Container
            && let Some(option) = self.container.first_given()
        {
            bail!(
                "`{option}` is an option of `--executor container`\n\
                 hint: add `--executor container`, or drop `{option}`"
            );
        }
        let builder = match kind {
            ExecutorKind::Container => builder.executor(self.container.config(&self.isolation)?),
            ExecutorKind::Subprocess => {
                if let Some(option) = self.isolation.first_given() {
                    bail!(
                        "`{option}` is not enforced by `--executor subprocess`\n\
                         hint: choose an executor that isolates agent code, or drop `{option}`"
                    );
                }
                builder.executor(SubprocessConfig {
                    python: self.python.clone(),
                    ..SubprocessConfig::default()
                })
            }
            ExecutorKind::Sandbox => builder.executor(SandboxConfig {
                python: self.python.clone(),
                ..crate::sandboxing::sandbox_config(&self.isolation)
            }),
        };
        let started = crate::progress::while_slow(
            "preparing the session (installing the library's missing dependencies)",
            builder.build(),
        );
        Ok(started.await?)
    }
}

/// `--timeout`: through the one bounds helper, so `1e20`, `NaN` and `-1` are
/// usage errors naming the option.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`--timeout` must be a number of seconds, not `{text}`"))?;
    py_code_mode::timeout_secs("--timeout", seconds).map_err(|e| e.to_string())
}

/// The most results a search prints: more is no use, and a huge `--limit`
/// would only cost memory.
pub const MAX_LIMIT: u64 = 1000;

pub(crate) fn parse_limit(text: &str) -> Result<usize, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`--limit` must be a whole number, not `{text}`"))?;
    let n = py_code_mode::count("--limit", n, 1, MAX_LIMIT).map_err(|e| e.to_string())?;
    usize::try_from(n).map_err(|e| e.to_string())
}

/// The user-info part of `scheme://user:password@host/…`, if any.
fn user_info(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((scheme, &rest[..at], &rest[at + 1..]))
}

/// The password in `url`, if it has a non-empty one.
fn url_password(url: &str) -> Option<&str> {
    let (_, info, _) = user_info(url)?;
    let (_, password) = info.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `url` with `password` (percent-encoded) in place of any password it has.
fn with_password(url: &str, password: &str) -> anyhow::Result<String> {
    let (scheme, user, host) = match user_info(url) {
        Some((scheme, info, host)) => (scheme, info.split_once(':').map_or(info, |(u, _)| u), host),
        None => {
            let Some((scheme, host)) = url.split_once("://") else {
                bail!("`--redis` must be a URL such as `redis://localhost:6379`");
            };
            (scheme, "", host)
        }
    };
    let mut encoded = String::new();
    for byte in password.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    Ok(format!("{scheme}://{user}:{encoded}@{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_and_set_in_urls() {
        assert_eq!(url_password("redis://:s3cret@host:6379/0"), Some("s3cret"));
        assert_eq!(url_password("redis://user:pw@host"), Some("pw"));
        assert_eq!(url_password("redis://user@host"), None);
        assert_eq!(url_password("redis://host:6379"), None);
        assert_eq!(url_password("redis://host/a@b"), None);
        assert_eq!(
            with_password("redis://host:6379/1", "p@ss word").ok(),
            Some("redis://:p%40ss%20word@host:6379/1".to_owned())
        );
        assert_eq!(
            with_password("rediss://me:old@host", "new").ok(),
            Some("rediss://me:new@host".to_owned())
        );
    }

    #[test]
    fn timeouts_and_limits_are_bounded() {
        assert!(parse_timeout("1e20").is_err_and(|e| e.starts_with("`--timeout` must be")));
        assert!(parse_timeout("NaN").is_err());
        assert!(parse_timeout("0").is_err());
        assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_limit("0").is_err());
        assert!(parse_limit("1001").is_err());
        assert_eq!(parse_limit("1000"), Ok(1000));
    }
}
