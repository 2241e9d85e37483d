//! The `py-code-mode` command (also installed as `py-code-mode-mcp`).
//!
//! - `config`: options and environment, turned into a session.
//! - `server`: the MCP server over a [`py_code_mode::Session`].
//! - [`run`]: dispatches the subcommands; the binaries call only this.

mod config;
mod env_vars;
mod progress;
mod server;
mod store;

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use py_code_mode::Session;
use rmcp::ServiceExt as _;

pub use config::{Backend, Cli, Command, LibraryArgs, Listing, RunArgs, StoreArgs, StoreCommand};
pub use server::CodeModeServer;

/// The whole program: runs the command line of this process and reports a
/// failure on stderr. Both binaries are this one call.
pub fn main() -> ExitCode {
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

/// Parses `args` (the program name first) and runs the command.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> anyhow::Result<ExitCode> {
    let cli = Cli::parse_from(args);
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli))
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
    if let Some(Command::Store(store)) = &cli.command {
        return store::run(&cli.library, store).await;
    }
    if let Some(Command::Index) = &cli.command {
        return index(&cli.library).await;
    }
    let session = Arc::new(cli.library.session().await?);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(Arc::clone(&session)).await,
        Command::Run(args) => run_once(&session, &args).await,
        Command::Tools(Listing::List) => print_json(&session.list_tools().await?),
        Command::Tools(Listing::Search { query, limit }) => {
            wait_for_model(&session, &cli.library).await;
            print_json(&session.search_tools(&query, limit).await?)
        }
        Command::Skills(Listing::List) => print_json(&session.list_skills().await?),
        Command::Skills(Listing::Search { query, limit }) => {
            wait_for_model(&session, &cli.library).await;
            print_json(&session.search_skills(&query, limit).await?)
        }
        Command::Store(store) => store::run(&cli.library, &store).await,
        Command::Index => index(&cli.library).await,
    };
    session.close().await;
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

async fn serve(session: Arc<Session>) -> anyhow::Result<ExitCode> {
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
    let service = CodeModeServer::new(session)
        .serve(rmcp::transport::stdio())
        .await
        .context("MCP initialisation failed")?;
    service.waiting().await.context("MCP server failed")?;
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
