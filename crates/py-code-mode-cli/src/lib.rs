//! The `py-code-mode` command (also installed as `py-code-mode-mcp`).
//!
//! - `config`: options and environment, turned into a session.
//! - `server`: the MCP server over a [`py_code_mode::Session`].
//! - `stdio`: its stdio transport, answering malformed JSON-RPC.
//! - [`run`]: dispatches the subcommands; the binaries call only this.

mod config;
mod container;
mod deps_tools;
mod doctor;
mod doctor_stale;
mod env_vars;
mod http;
mod human;
mod isolation;
mod progress;
mod prompts;
mod repl;
mod resources;
mod sandboxing;
mod server;
mod skills_cmd;
mod skills_tools;
mod stdio;
mod store;
mod surface;

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _};
use py_code_mode::Session;
use rmcp::ServiceExt as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

pub use config::{
    Backend, Cli, Command, ExecutorKind, LibraryArgs, Listing, RunArgs, StoreArgs, StoreCommand,
};
pub use deps_tools::DepsArgs;
pub use doctor::{Check, DoctorArgs, Status};
pub use human::{ArtifactsCommand, SkillsCommand, ToolsCommand};
pub use isolation::IsolationArgs;
pub use repl::ReplArgs;
pub use server::{CodeModeServer, MAX_SEARCH_LIMIT};
pub use stdio::{MAX_MESSAGE_BYTES, StdioTransport};

/// How long closing the session may take after a signal or the client's
/// goodbye before the process exits anyway (workers still die with it: they
/// carry a parent-death signal).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The whole program: runs the command line of this process and reports a
/// failure on stderr. Both binaries are this one call.
pub fn main() -> ExitCode {
    // First, while the process has one thread: as the sandbox launcher this
    // applies the sandbox and becomes the worker.
    py_code_mode::sandbox::launcher_main();
    sandboxing::use_small_launcher();
    match run(std::env::args_os()) {
        Ok(code) => code,
        Err(error) => {
            #[expect(clippy::print_stderr, reason = "the last word of a failed command")]
            {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// What the binary does to itself before anything else.
fn protect_the_host() {
    // Orphans of the worker's tree (a double fork) are re-parented to us, not
    // to init, so the tree kill still finds them.
    if let Err(error) = py_code_mode::become_subreaper() {
        tracing::warn!("cannot become a subreaper: {error}");
    }
    // Non-dumpable: `/proc/<our pid>/environ` (the host's secrets) and our
    // memory are closed to other processes of the user, agent code included.
    py_code_mode::make_host_undumpable();
    raise_open_files_limit();
}

/// Each worker holds a few descriptors of the host (its pipes, its cgroup's
/// events file): at the usual soft limit of 1,024 an HTTP server would stop
/// opening sessions at a few hundred, far below `--max-sessions`. The soft
/// limit goes up to the hard one, which the administrator set.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(soft, hard, "cannot raise the open-files limit: {error}");
    }
}

/// Parses `args` (the program name first) and runs the command.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> anyhow::Result<ExitCode> {
    let matches = Cli::command().get_matches_from(args);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.library.redis_url_in_argv =
        matches.value_source("redis") == Some(clap::parser::ValueSource::CommandLine);
    init_logging();
    // Here rather than in `main`: the Python package's console scripts call
    // `run` directly and are hosts just the same.
    protect_the_host();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(dispatch(cli));
    // A blocking read of stdin (`run -`) cannot be cancelled: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    // A worker's cgroups can outlive its process by a moment on a loaded
    // machine; leave none behind.
    py_code_mode::sandbox::remove_left_behind(Duration::from_secs(2));
    outcome
}

/// SIGINT and SIGTERM: the first one cancels `stop` and is remembered, so the
/// command stops its run, closes the session and exits `128 + signal`.
struct Signals {
    stop: CancellationToken,
    received: Arc<AtomicU8>,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let stop = CancellationToken::new();
        let received = Arc::new(AtomicU8::new(0));
        let (token, number) = (stop.clone(), Arc::clone(&received));
        tokio::spawn(async move {
            let signo = tokio::select! {
                _ = interrupt.recv() => nix::sys::signal::Signal::SIGINT,
                _ = terminate.recv() => nix::sys::signal::Signal::SIGTERM,
            };
            tracing::info!("{signo}: stopping");
            number.store(u8::try_from(signo as i32).unwrap_or(0), Ordering::SeqCst);
            token.cancel();
        });
        Ok(Self { stop, received })
    }

    /// `128 + signal` once a signal arrived.
    fn exit_code(&self) -> Option<ExitCode> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signo => Some(ExitCode::from(128 + signo)),
        }
    }
}

/// As a subreaper we inherit the orphans of every worker's tree (a `sleep`
/// agent code started, left behind when the tree is killed); nobody else
/// will wait for them, so each would stay a zombie for the life of the server.
/// On every SIGCHLD this reaps the zombie children we adopted, and only those:
/// a child we spawned ourselves has a `Child` handle that waits for it.
fn reap_adopted_orphans() {
    let Ok(mut children) = signal(SignalKind::child()) else {
        tracing::warn!("cannot watch SIGCHLD; adopted orphans stay zombies until exit");
        return;
    };
    tokio::spawn(async move {
        while children.recv().await.is_some() {
            // A walk of /proc: blocking I/O, kept off the async workers that
            // serve the client (every tool call's exit raises SIGCHLD).
            let _ = tokio::task::spawn_blocking(|| {
                for pid in adopted_zombies() {
                    let _ =
                        nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
                }
            })
            .await;
        }
    });
}

/// Our zombie children that we did not spawn. Everything we spawn leads its
/// own process group inside our session, or stays in our group; a process in
/// another group it does not lead (a worker's child), or leading its own
/// session (`setsid`), came to us as an orphan.
fn adopted_zombies() -> Vec<nix::unistd::Pid> {
    let me = nix::unistd::getpid().as_raw();
    let my_group = nix::unistd::getpgrp().as_raw();
    let my_session = nix::unistd::getsid(None).map_or(0, nix::unistd::Pid::as_raw);
    py_code_mode::processes()
        .into_iter()
        .filter(|&(pid, stat)| {
            let foreign_group = stat.pgrp != pid && stat.pgrp != my_group;
            let own_session = stat.session == pid && stat.session != my_session;
            stat.state == 'Z' && stat.ppid == me && (foreign_group || own_session)
        })
        .map(|(pid, _)| nix::unistd::Pid::from_raw(pid))
        .collect()
}

/// Runs `work` unless `stop` is cancelled first (then `None`); dropping the
/// work stops whatever it started.
async fn unless_stopped<T>(stop: &CancellationToken, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        outcome = work => Some(outcome),
        () = stop.cancelled() => None,
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::PY_CODE_MODE_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // stdout belongs to MCP: logs go to stderr only.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Repl(args)) = &cli.command {
        // The REPL handles Ctrl-C itself: it stops the running cell, not the command.
        reap_adopted_orphans();
        return repl::run(&cli.library, args).await;
    }
    let signals = Signals::install()?;
    reap_adopted_orphans();
    let outcome = Box::pin(command(cli, &signals.stop)).await;
    match signals.exit_code() {
        Some(code) => Ok(code),
        None => outcome,
    }
}

/// Runs the command; when `stop` is cancelled (a signal) it stops its run,
/// closes the session and returns early.
async fn command(cli: Cli, stop: &CancellationToken) -> anyhow::Result<ExitCode> {
    let stopped = Ok(ExitCode::FAILURE); // replaced by the signal's exit code
    if let Some(Command::Store(store)) = &cli.command {
        return unless_stopped(stop, store::run(&cli.library, store))
            .await
            .unwrap_or(stopped);
    }
    if let Some(Command::Sandbox) = &cli.command {
        return sandboxing::print_status().await;
    }
    if let Some(Command::Serve(args)) = &cli.command
        && args.http.is_some()
    {
        // Its own sessions, one per MCP session; it drains runs on a signal.
        return Box::pin(http::serve(cli, stop)).await;
    }
    if let Some(Command::Doctor(args)) = &cli.command {
        return unless_stopped(stop, doctor::run(&cli.library, args))
            .await
            .unwrap_or(stopped);
    }
    if let Some(Command::Index) = &cli.command {
        return unless_stopped(stop, index(&cli.library))
            .await
            .unwrap_or(stopped);
    }
    let Some(session) = unless_stopped(stop, cli.library.session()).await else {
        return stopped;
    };
    let session = Arc::new(session?);
    let work = async {
        match cli
            .command
            .unwrap_or_else(|| Command::Serve(http::ServeArgs::stdio()))
        {
            Command::Serve(_) => Box::pin(serve(Arc::clone(&session), stop.child_token())).await,
            Command::Run(args) => run_once(&session, &args).await,
            Command::Tools(ToolsCommand::Listing(Listing::List)) => {
                print_json(&session.list_tools().await?)
            }
            Command::Tools(ToolsCommand::Listing(Listing::Search { query, limit })) => {
                wait_for_model(&session, &cli.library).await;
                print_json(&session.search_tools(&query, limit).await?)
            }
            Command::Skills(SkillsCommand::Listing(Listing::List)) => {
                print_json(&session.list_skills().await?)
            }
            Command::Skills(SkillsCommand::Listing(Listing::Search { query, limit })) => {
                wait_for_model(&session, &cli.library).await;
                print_json(&session.search_skills(&query, limit).await?)
            }
            Command::Tools(other) => human::tools(&session, other).await,
            Command::Skills(SkillsCommand::Versions(command)) => {
                skills_cmd::run(&session, command).await
            }
            Command::Skills(other) => human::skills(&session, other).await,
            Command::Artifacts(other) => human::artifacts(&session, other).await,
            Command::Store(store) => store::run(&cli.library, &store).await,
            Command::Index => index(&cli.library).await,
            Command::Sandbox => sandboxing::print_status().await,
            // Handled before a session is built.
            Command::Repl(_) | Command::Doctor(_) => Ok(ExitCode::FAILURE),
        }
    };
    // On a signal the work is dropped, which stops a run (the executor kills
    // the worker's tree); `serve` watches `stop` itself to close MCP cleanly.
    let outcome = unless_stopped(stop, Box::pin(work))
        .await
        .unwrap_or(stopped);
    if tokio::time::timeout(SHUTDOWN_GRACE, session.close())
        .await
        .is_err()
    {
        tracing::warn!(
            "closing the session took over {}s; exiting anyway",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    outcome
}

/// One-shot searches are worth waiting for the model, however long it takes,
/// rather than ranking lexically.
async fn wait_for_model(session: &Session, library: &LibraryArgs) {
    if !library.no_semantic {
        loading_model(
            &library.embedding_model,
            session.host().searcher().wait_ready(),
        )
        .await;
    }
}

/// Awaits `ready` (a model loading) with a spinner naming `model`.
async fn loading_model<T>(model: &str, ready: impl Future<Output = T>) -> T {
    let spinner = progress::spinner(format!("loading embedding model `{model}`"));
    let outcome = ready.await;
    spinner.finish_and_clear();
    outcome
}

/// `py-code-mode index`: embeds every tool and skill into the cache and
/// drops cached vectors of this model that no tool or skill needs any more.
async fn index(library: &LibraryArgs) -> anyhow::Result<ExitCode> {
    let storage = library.storage().await?;
    let Some(hybrid) = library.hybrid_searcher(&storage) else {
        anyhow::bail!("`--no-semantic` leaves nothing to index\nhint: drop `--no-semantic`");
    };
    let session = library
        .session_with(
            storage,
            Arc::clone(&hybrid) as Arc<dyn py_code_mode::Searcher>,
        )
        .await?;
    let outcome = index_library(&session, &hybrid, &library.embedding_model).await;
    session.close().await;
    let (docs, stats, pruned) = outcome?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "indexed {docs} docs with `{}`: {} embedded, {} cached, {pruned} stale removed",
        library.embedding_model, stats.embedded, stats.cached
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn index_library(
    session: &Session,
    hybrid: &py_code_mode::HybridSearcher,
    model: &str,
) -> anyhow::Result<(usize, py_code_mode::IndexStats, usize)> {
    let docs = session.host().search_docs().await?;
    // A failure is reported by `index_with_progress` below, naming the model.
    let _ = loading_model(model, hybrid.wait_ready()).await;
    let bar = progress::embedding_bar();
    let stats = hybrid
        .index_with_progress(&docs, &|p| progress::update(&bar, p))
        .await;
    bar.finish_and_clear();
    let stats = stats.map_err(|e| anyhow::anyhow!(e))?;
    let pruned = hybrid.prune(&docs).await.map_err(|e| anyhow::anyhow!(e))?;
    Ok((docs.len(), stats, pruned))
}

/// Serves MCP on stdio until the client closes stdin or `stop` is cancelled;
/// either way the runs in flight stop at once.
async fn serve(session: Arc<Session>, stop: CancellationToken) -> anyhow::Result<ExitCode> {
    for error in session.host().tools().load_errors() {
        tracing::warn!("{error}");
    }
    // Start the worker in the background: the server answers `initialize` and
    // `tools/list` at once, and the first `run_code` waits for the worker.
    let warm = Arc::clone(&session);
    tokio::spawn(async move {
        if let Err(e) = warm.start().await {
            tracing::error!("{e}");
        }
    });
    let (read, write) = rmcp::transport::stdio_pipes();
    let transport = StdioTransport::new(read, write, stop.clone());
    let service = CodeModeServer::with_shutdown(session, stop.clone()).serve(transport);
    let Some(service) = unless_stopped(&stop, Box::pin(service)).await else {
        return Ok(ExitCode::SUCCESS);
    };
    let service = service.context("MCP initialisation failed")?;
    let quit = service.cancellation_token();
    let watch = tokio::spawn({
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            quit.cancel();
        }
    });
    let outcome = service.waiting().await;
    // However the service ended, runs still in flight stop now.
    stop.cancel();
    watch.abort();
    outcome.context("MCP server failed")?;
    Ok(ExitCode::SUCCESS)
}

async fn run_once(session: &Session, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let code = match (&args.code, &args.file) {
        (Some(code), _) => code.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut code = String::new();
            std::io::stdin()
                .read_to_string(&mut code)
                .context("cannot read stdin")?;
            code
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?,
        (None, None) => anyhow::bail!(
            "nothing to run\nhint: `py-code-mode run -c 'tools.list()'` or `py-code-mode run script.py`"
        ),
    };
    let result = session.run(&code).await?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &result)?;
        writeln!(stdout)?;
    } else {
        let text = result.to_text();
        if !text.is_empty() {
            writeln!(stdout, "{text}")?;
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(ExitCode::SUCCESS)
}
