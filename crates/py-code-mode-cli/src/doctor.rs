//! `py-code-mode doctor`: is this setup healthy? One line per check, each
//! `ok`, `warn` or `fail` with a hint; `--json` prints the same as a list.
//!
//! Only what the user configured can fail (the library, a tool definition, a
//! tool server, Redis, the interpreter, the chosen executor); optional parts
//! that are absent (a model not cached while offline, pip) are warnings. The
//! exit code is 1 when a check failed, else 0. Every reachability check is
//! bounded by [`REACH_TIMEOUT`].

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use py_code_mode::{LexicalSearcher, Spawn, Storage, parse_definition, parse_skill};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::{Backend, ExecutorKind, LibraryArgs};

/// How long one reachability check may take (a server, Redis, the hub).
pub const REACH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the executor probe may take: a worker's cold start on a busy
/// machine, plus one tiny run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The oldest Python the runtime supports.
const MIN_PYTHON: (u32, u32) = (3, 10);

/// Options of `py-code-mode doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Print the checks as a JSON list of `{check, status, detail, hint}`
    #[arg(long)]
    pub json: bool,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    /// The next step, empty when there is none.
    pub hint: String,
}

impl Check {
    pub(crate) fn new(check: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status,
            detail: detail.into(),
            hint: String::new(),
        }
    }

    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, detail)
    }

    fn warn(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Warn, detail)
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Fail, detail)
    }

    /// A failure from an error message; its own `hint:` line, if any, wins.
    fn error(check: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        match message.split_once("\nhint: ") {
            Some((detail, hint)) => Self::fail(check, detail).hint(hint),
            None => Self::fail(check, message),
        }
    }

    /// Sets the hint unless the check already has one.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        if self.hint.is_empty() {
            self.hint = hint.into();
        }
        self
    }
}

/// Runs every check and prints the report.
pub async fn run(library: &LibraryArgs, args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let checks = checks(library).await;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &checks)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(&checks, colour()))?;
    }
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Colour on stdout: a terminal, and `NO_COLOR` unset.
pub(crate) fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The report as a person reads it: `status  check  detail`, a hint below.
pub fn render(checks: &[Check], colour: bool) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut text = String::new();
    for c in checks {
        let (word, code) = match c.status {
            Status::Ok => ("ok  ", "32"),
            Status::Warn => ("warn", "33"),
            Status::Fail => ("FAIL", "31"),
        };
        let word = if colour {
            format!("\x1b[{code}m{word}\x1b[0m")
        } else {
            word.to_owned()
        };
        let _ = writeln!(text, "{word}  {:<width$}  {}", c.check, c.detail);
        if !c.hint.is_empty() {
            let _ = writeln!(text, "      {:<width$}  hint: {}", "", c.hint);
        }
    }
    text
}

/// Every check, in the order a person fixes things.
pub async fn checks(library: &LibraryArgs) -> Vec<Check> {
    let mut checks = vec![python(library).await];
    match open_library(library).await {
        Ok((storage, check)) => {
            checks.push(check);
            checks.extend(library_contents(storage.as_ref()).await);
            checks.extend(crate::doctor_stale::stale_skills(storage, REACH_TIMEOUT).await);
        }
        Err(check) => checks.push(check),
    }
    checks.push(embedding_model(library).await);
    checks.extend(isolation(library).await);
    checks.push(deps(library).await);
    checks
}

/// The interpreter the worker runs on, and its version.
async fn python(library: &LibraryArgs) -> Check {
    let hint = "install Python 3.10 or newer, or name one with `--python`";
    let path = match py_code_mode::resolve_python(library.python.as_deref()).await {
        Ok(path) => path,
        Err(e) => return Check::error("python", e.to_string()).hint(hint),
    };
    let script = "import sys; print('%d.%d.%d' % sys.version_info[:3])";
    let version = match output(&path, &["-I", "-c", script]).await {
        Ok(text) => text.trim().to_owned(),
        Err(e) => return Check::fail("python", format!("`{}`: {e}", path.display())).hint(hint),
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let detail = format!("{} (Python {version})", path.display());
    if (major, minor) < MIN_PYTHON {
        Check::fail("python", detail).hint(hint)
    } else {
        Check::ok("python", detail)
    }
}

/// Runs `program args` (bounded) and returns its stdout.
async fn output(program: &Path, args: &[&str]) -> Result<String, String> {
    let mut command = Spawn::new(program).args(args).into_command();
    command.kill_on_drop(true);
    match tokio::time::timeout(REACH_TIMEOUT, command.output()).await {
        Err(_) => Err(format!(
            "did not answer within {}s",
            REACH_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Ok(out)) => Err(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Opens the library: the folder (created if missing, must be writable) or Redis
/// (reachable within [`REACH_TIMEOUT`]).
async fn open_library(library: &LibraryArgs) -> Result<(Arc<dyn Storage>, Check), Check> {
    let backend = library
        .effective_backend()
        .map_err(|e| Check::error("library", format!("{e:#}")))?;
    match backend {
        Backend::Redis => {
            let url = library
                .redis_url()
                .ok()
                .flatten()
                .map_or_else(String::new, |u| py_code_mode::redact_url(&u));
            match tokio::time::timeout(REACH_TIMEOUT, library.redis_storage()).await {
                Ok(Ok(storage)) => Ok((
                    Arc::new(storage) as Arc<dyn Storage>,
                    Check::ok(
                        "library",
                        format!("Redis at `{url}`, prefix `{}`", library.prefix),
                    ),
                )),
                Ok(Err(e)) => Err(Check::error("library", format!("{e:#}"))
                    .hint("start Redis, or fix `--redis` / `PY_CODE_MODE_REDIS_URL`")),
                Err(_) => Err(Check::fail(
                    "library",
                    format!(
                        "Redis at `{url}` did not answer within {}s",
                        REACH_TIMEOUT.as_secs()
                    ),
                )
                .hint("start Redis, or fix `--redis` / `PY_CODE_MODE_REDIS_URL`")),
            }
        }
        Backend::File => {
            let base = library.base.clone().unwrap_or_else(|| PathBuf::from("."));
            let storage = library
                .file_storage()
                .map_err(|e| Check::error("library", format!("{e:#}")))?;
            let probe = base.join(format!(".py-code-mode-doctor-{}", std::process::id()));
            let writable = std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe));
            let check = match writable {
                Ok(()) => Check::ok("library", format!("folder `{}` (writable)", base.display())),
                Err(e) => Check::fail(
                    "library",
                    format!("folder `{}` is not writable: {e}", base.display()),
                )
                .hint("fix its permissions, or choose another folder with `--base`"),
            };
            Ok((Arc::new(storage) as Arc<dyn Storage>, check))
        }
    }
}

/// Counts, every item a listing skips, every tool definition and skill that
/// does not parse, and each tool server's reachability.
async fn library_contents(storage: &dyn Storage) -> Vec<Check> {
    let mut checks = Vec::new();
    let tools = storage.tool_sources().await;
    let skills = storage.list_skills().await;
    let artifacts = storage.list_artifacts().await;
    match (&tools, &skills, &artifacts) {
        (Ok(t), Ok(s), Ok(a)) => checks.push(Check::ok(
            "contents",
            format!(
                "{} tools, {} skills, {} artifacts",
                t.len(),
                s.len(),
                a.len()
            ),
        )),
        _ => {
            for e in [
                tools.as_ref().err(),
                skills.as_ref().err(),
                artifacts.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            {
                checks.push(Check::fail("contents", e.to_string()));
            }
        }
    }
    match storage.problems().await {
        Ok(problems) => checks.extend(problems.into_iter().map(|p| {
            Check::fail(format!("{} {}", p.kind, p.location), p.reason)
                .hint("fix or remove it; it is skipped until then")
        })),
        Err(e) => checks.push(Check::fail("contents", e.to_string())),
    }
    for skill in skills.unwrap_or_default() {
        if let Err(reason) = parse_skill(&skill.source) {
            checks.push(
                Check::fail(format!("skill {}", skill.name), reason)
                    .hint("fix the skill's source; calling it fails until then"),
            );
        }
    }
    let mut servers = JoinSet::new();
    for source in tools.unwrap_or_default() {
        let label = format!("tool {}", source.file_name());
        match parse_definition(&source) {
            Err(e) => checks.push(
                Check::fail(label, e.to_string())
                    .hint("fix the YAML; the tool is not loaded until then"),
            ),
            Ok(adapter) => {
                let yaml: serde_json::Value =
                    yaml_serde::from_str(&source.text).unwrap_or_default();
                servers.spawn(async move { tool_check(label, adapter, &yaml).await });
            }
        }
    }
    let mut reached = Vec::new();
    while let Some(done) = servers.join_next().await {
        if let Ok(check) = done {
            reached.push(check);
        }
    }
    reached.sort_by(|a, b| a.check.cmp(&b.check));
    checks.extend(reached);
    checks
}

/// One tool: an MCP server answers within [`REACH_TIMEOUT`], an HTTP base URL
/// accepts a connection, a CLI tool's program is on `PATH`.
async fn tool_check(
    label: String,
    adapter: Arc<dyn py_code_mode::ToolAdapter>,
    yaml: &serde_json::Value,
) -> Check {
    let kind = yaml["type"].as_str().unwrap_or("cli");
    let check = match kind {
        "mcp" => match tokio::time::timeout(REACH_TIMEOUT, adapter.info()).await {
            Ok(Ok(info)) => match info.unavailable {
                None => Check::ok(
                    label,
                    format!("MCP server answered: {} tools", info.callables.len()),
                ),
                Some(reason) => Check::fail(label, reason),
            },
            Ok(Err(e)) => Check::fail(label, e.to_string()),
            Err(_) => Check::fail(
                label,
                format!(
                    "the MCP server did not answer within {}s",
                    REACH_TIMEOUT.as_secs()
                ),
            ),
        }
        .hint_if_failed("start the server, or fix `command` / `url` in its YAML"),
        "http" => {
            let url = yaml["base_url"].as_str().unwrap_or_default();
            match reach(url).await {
                Ok(addr) => Check::ok(
                    label,
                    format!("HTTP server at `{addr}` accepts connections"),
                ),
                Err(e) => Check::fail(label, format!("`{url}`: {e}"))
                    .hint("start the server, or fix `base_url` in its YAML"),
            }
        }
        _ => {
            let program = yaml["command"]
                .as_str()
                .or_else(|| yaml["name"].as_str())
                .unwrap_or_default();
            let program = program.split_whitespace().next().unwrap_or_default();
            if on_path(program) {
                Check::ok(label, format!("command `{program}` found"))
            } else {
                Check::warn(label, format!("command `{program}` is not on PATH"))
                    .hint("install it; calls to this tool fail until then")
            }
        }
    };
    adapter.close().await;
    check
}

trait HintIfFailed {
    fn hint_if_failed(self, hint: &str) -> Self;
}

impl HintIfFailed for Check {
    fn hint_if_failed(self, hint: &str) -> Self {
        if self.status == Status::Fail {
            self.hint(hint)
        } else {
            self
        }
    }
}

fn on_path(program: &str) -> bool {
    let path = Path::new(program);
    if path.components().count() > 1 {
        return path.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Opens a TCP connection to the host and port of `url` within [`REACH_TIMEOUT`].
async fn reach(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "not a URL".to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()));
    let addr = if has_port {
        authority.to_owned()
    } else {
        let port = if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        format!("{authority}:{port}")
    };
    match tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Ok(addr),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", REACH_TIMEOUT.as_secs())),
    }
}

/// The embedding model: found locally, or whether it can be downloaded.
async fn embedding_model(library: &LibraryArgs) -> Check {
    const LABEL: &str = "embedding model";
    if library.no_semantic {
        return Check::ok(LABEL, "off (`--no-semantic`): search is lexical");
    }
    let spec = library.embedding_model.clone();
    let spinner = crate::progress::spinner(format!("loading embedding model `{spec}`"));
    let loaded = tokio::task::spawn_blocking(move || {
        let options = py_code_mode_embed::LoadOptions {
            allow_download: false,
            ..py_code_mode_embed::LoadOptions::default()
        };
        py_code_mode_embed::EmbeddingModel::load(&spec, &options).map(|m| m.dim())
    })
    .await;
    spinner.finish_and_clear();
    let spec = &library.embedding_model;
    match loaded {
        Ok(Ok(dim)) => Check::ok(LABEL, format!("`{spec}` loads ({dim} dimensions)")),
        Ok(Err(py_code_mode_embed::EmbedError::NotCached { model, .. })) => {
            let offline = !py_code_mode_embed::LoadOptions::online_unless_offline().allow_download;
            if offline || !cfg!(feature = "download") {
                return Check::warn(
                    LABEL,
                    format!("`{model}` is not cached and downloads are off: search is lexical"),
                )
                .hint(format!("`hf download {model}` on a machine online, or pass a model directory with `--embedding-model`"));
            }
            let endpoint = std::env::var(py_code_mode_embed::env_vars::HF_ENDPOINT)
                .unwrap_or_else(|_| "https://huggingface.co".to_owned());
            match reach(&endpoint).await {
                Ok(_) => Check::warn(
                    LABEL,
                    format!("`{model}` is not cached; it downloads from `{endpoint}` on first use"),
                )
                .hint("`py-code-mode index` downloads it now"),
                Err(e) => Check::warn(
                    LABEL,
                    format!("`{model}` is not cached and `{endpoint}` is unreachable ({e}): search is lexical"),
                )
                .hint("pass a local model directory with `--embedding-model`, or `--no-semantic`"),
            }
        }
        // A model the user named that exists but does not load.
        Ok(Err(e)) => Check::fail(LABEL, e.to_string())
            .hint("name another model with `--embedding-model`, or `--no-semantic`"),
        Err(e) => Check::fail(LABEL, format!("the check itself failed: {e}")),
    }
}

/// Which isolation runs agent code here, probed by running `1 + 1` in the
/// executor the command would use: one the user chose that does not work
/// fails; without `--executor`, the sandbox where the kernel allows it, and
/// a warning where agent code would run without one.
pub async fn isolation(library: &LibraryArgs) -> Vec<Check> {
    let kind = match library.executor {
        Some(kind) => kind,
        None => match sandbox_layers().await {
            Ok(status) if status.usable() => ExecutorKind::Sandbox,
            Ok(status) => {
                return vec![
                    Check::warn(
                        "sandbox",
                        format!("not usable here: {}", status.summary()),
                    )
                    .hint("`py-code-mode sandbox` shows each layer; agent code runs as a plain subprocess"),
                    probe_executor(library, SUBPROCESS).await,
                ];
            }
            Err(e) => return vec![Check::error("sandbox", format!("{e:#}"))],
        },
    };
    match kind {
        ExecutorKind::Subprocess => vec![probe_executor(library, SUBPROCESS).await],
        ExecutorKind::Sandbox => {
            let what = match sandbox_layers().await {
                Ok(status) => format!("sandbox: {}", status.summary()),
                Err(e) => format!("sandbox: {e:#}"),
            };
            vec![probe_executor(library, &what).await]
        }
        ExecutorKind::Container => {
            let config = match library.container.config(&library.isolation) {
                Ok(config) => config,
                Err(e) => return vec![Check::fail("executor", format!("{e:#}"))],
            };
            let what = format!(
                "container: image `{}`, no network{}, memory {} bytes, {} CPUs",
                config.image,
                if config.network { " (allowed)" } else { "" },
                config.memory,
                config.cpus
            );
            vec![probe_executor(library, &what).await]
        }
    }
}

const SUBPROCESS: &str = "subprocess: agent code runs in its own process as this user (no filesystem or network isolation)";

/// The sandbox's layers as this binary can make them.
async fn sandbox_layers() -> anyhow::Result<py_code_mode::sandbox::SandboxStatus> {
    let launcher = py_code_mode::sandbox::Launcher::current_exe()
        .context("this program was not started as the `py-code-mode` binary")?;
    Ok(py_code_mode::sandbox::probe(&launcher).await?)
}

/// Runs `1 + 1` in the configured executor over an empty scratch library.
async fn probe_executor(library: &LibraryArgs, what: &str) -> Check {
    const LABEL: &str = "executor";
    let scratch = std::env::temp_dir().join(format!("py-code-mode-doctor-{}", std::process::id()));
    let spinner = crate::progress::spinner("starting a worker".to_owned());
    let outcome = async {
        let storage = Arc::new(py_code_mode::FileStorage::open(&scratch)?);
        let session = library
            .session_with(storage, Arc::new(LexicalSearcher))
            .await?;
        let result = tokio::time::timeout(PROBE_TIMEOUT, session.run("1 + 1")).await;
        session.close().await;
        anyhow::Ok(result)
    }
    .await;
    spinner.finish_and_clear();
    let _ = std::fs::remove_dir_all(&scratch);
    match outcome {
        Ok(Ok(Ok(result))) if result.repr.as_deref() == Some("2") => Check::ok(LABEL, what),
        Ok(Ok(Ok(result))) => Check::fail(
            LABEL,
            format!("`1 + 1` did not give 2: {}", result.to_text()),
        ),
        Ok(Ok(Err(e))) => Check::fail(LABEL, e.to_string()),
        Ok(Err(_)) => Check::fail(
            LABEL,
            format!("`1 + 1` took over {}s", PROBE_TIMEOUT.as_secs()),
        ),
        Err(e) => Check::error(LABEL, format!("{e:#}")),
    }
    .hint_if_failed(
        "see the `python` check above; `PY_CODE_MODE_LOG=debug` shows the worker's stderr",
    )
}

/// Whether packages can be installed into the worker's interpreter (`pip`).
async fn deps(library: &LibraryArgs) -> Check {
    const LABEL: &str = "deps";
    let Ok(path) = py_code_mode::resolve_python(library.python.as_deref()).await else {
        return Check::warn(LABEL, "no interpreter (see `python`)");
    };
    match output(&path, &["-I", "-m", "pip", "--version"]).await {
        Ok(version) => Check::ok(LABEL, version.trim().to_owned()),
        Err(e) => Check::warn(LABEL, format!("pip is not available: {e}"))
            .hint("packages cannot be installed into this interpreter; use a venv (`python -m venv`) and `--python`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_each_check_with_its_hint() {
        let checks = [
            Check::ok("python", "/usr/bin/python3 (Python 3.11.2)"),
            Check::fail("tool bad.yaml", "invalid YAML").hint("fix it"),
        ];
        assert_eq!(
            render(&checks, false),
            "ok    python         /usr/bin/python3 (Python 3.11.2)\n\
             FAIL  tool bad.yaml  invalid YAML\n\
             \x20                    hint: fix it\n"
        );
    }
}
