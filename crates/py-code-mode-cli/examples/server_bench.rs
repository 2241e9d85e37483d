//! Prints the skeleton's headline figures:
//! - server start to the first `tools/list` reply (spawn + initialize + list),
//! - `run_code` of `1+1` over MCP stdio and through `Session::run` (median of 100),
//! - a CLI tool call from agent code versus running the command directly (median of 100),
//! - with `PY_CODE_MODE_TEST_MODEL_DIR` set (an embedding model directory): start to
//!   `tools/list` while that model loads, and start to the first hybrid `search_tools` reply.
//!
//! Run: `cargo run --release -p py-code-mode-cli --example server_bench [-- --python PATH]`
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{FileStorage, Session, SubprocessConfig};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt as _, TokioChildProcess};

const RUNS: usize = 100;
const STARTS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let python = std::env::args()
        .skip_while(|a| a != "--python")
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("PY_CODE_MODE_PYTHON").map(PathBuf::from));
    let binary = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("py-code-mode"))
        .ok_or_else(|| anyhow::anyhow!("cannot locate the py-code-mode binary"))?;
    anyhow::ensure!(
        binary.is_file(),
        "build it first: `cargo build --release` ({})",
        binary.display()
    );
    let base = tempfile::tempdir()?;
    std::fs::create_dir_all(base.path().join("tools"))?;
    std::fs::write(
        base.path().join("tools/echo.yaml"),
        "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text\n",
    )?;

    println!(
        "py-code-mode benchmark ({} cores)",
        std::thread::available_parallelism()?
    );

    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let started = Instant::now();
        let client = spawn_server(&binary, base.path(), python.as_deref(), None).await?;
        let tools = client.list_tools(None).await?;
        starts.push(started.elapsed());
        anyhow::ensure!(!tools.tools.is_empty());
        client.cancel().await?;
    }
    report("server start to first tools/list reply", &mut starts);

    let client = spawn_server(&binary, base.path(), python.as_deref(), None).await?;
    client.call_tool(run_code("0")).await?; // the worker is warm from here on
    let mut mcp_runs = time_async(|| async {
        let result = client.call_tool(run_code("1+1")).await?;
        anyhow::ensure!(result.is_error != Some(true));
        Ok(())
    })
    .await?;
    report("run_code `1+1` over MCP stdio", &mut mcp_runs);
    let mut mcp_tool = time_async(|| async {
        client.call_tool(run_code("tools.echo(text='x')")).await?;
        Ok(())
    })
    .await?;
    client.cancel().await?;

    let session = Session::builder(Arc::new(FileStorage::open(base.path())?))
        .executor(SubprocessConfig {
            python: python.clone(),
            ..SubprocessConfig::default()
        })
        .build()
        .await?;
    session.start().await?;
    let mut api_runs = time_async(|| async {
        session.run("1+1").await?;
        Ok(())
    })
    .await?;
    report("Session::run `1+1` (Rust API, subprocess)", &mut api_runs);
    let mut api_tool = time_async(|| async {
        session.run("tools.echo(text='x')").await?;
        Ok(())
    })
    .await?;
    session.close().await;

    let mut direct = time_async(|| async {
        tokio::process::Command::new("echo")
            .arg("x")
            .output()
            .await?;
        Ok(())
    })
    .await?;
    let direct = report("`echo x` spawned directly (baseline)", &mut direct);
    let api_tool = report("CLI tool call from code, Session::run", &mut api_tool);
    let mcp_tool = report("CLI tool call from code, run_code over MCP", &mut mcp_tool);
    println!(
        "tool call overhead beyond the command: {:.3} ms (Session::run), {:.3} ms (MCP run_code)",
        ms(api_tool.saturating_sub(direct)),
        ms(mcp_tool.saturating_sub(direct)),
    );

    if let Ok(model) = std::env::var("PY_CODE_MODE_TEST_MODEL_DIR") {
        model_figures(&binary, base.path(), python.as_deref(), &model).await?;
    }
    Ok(())
}

/// Start-up with an embedding model loading: `tools/list` must not wait for
/// it; the first search does (up to the searcher's patience) and is hybrid.
async fn model_figures(
    binary: &Path,
    base: &Path,
    python: Option<&Path>,
    model: &str,
) -> anyhow::Result<()> {
    let (mut lists, mut searches) = (Vec::new(), Vec::new());
    for _ in 0..STARTS {
        let started = Instant::now();
        let client = spawn_server(binary, base, python, Some(model)).await?;
        client.list_tools(None).await?;
        lists.push(started.elapsed());
        let mut args = serde_json::Map::new();
        args.insert("query".into(), "write some text out".into());
        let reply = client
            .call_tool(CallToolRequestParams::new("search_tools").with_arguments(args))
            .await?;
        searches.push(started.elapsed());
        let text = reply
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        let hits: serde_json::Value = serde_json::from_str(&text)?;
        anyhow::ensure!(hits[0]["mode"] == "hybrid", "not hybrid: {text}");
        client.cancel().await?;
    }
    report(
        "with the model loading: start to first tools/list reply",
        &mut lists,
    );
    report(
        "start to first search_tools reply (hybrid, model load included)",
        &mut searches,
    );
    Ok(())
}

type Client = rmcp::service::RunningService<rmcp::RoleClient, ()>;

async fn spawn_server(
    binary: &Path,
    base: &Path,
    python: Option<&Path>,
    model: Option<&str>,
) -> anyhow::Result<Client> {
    let command = tokio::process::Command::new(binary).configure(|c| {
        c.arg("--base").arg(base);
        if let Some(p) = python {
            c.arg("--python").arg(p);
        }
        if let Some(m) = model {
            c.arg("--embedding-model").arg(m);
        }
    });
    Ok(().serve(TokioChildProcess::new(command)?).await?)
}

fn run_code(code: &str) -> CallToolRequestParams {
    let mut args = serde_json::Map::new();
    args.insert("code".into(), code.into());
    CallToolRequestParams::new("run_code").with_arguments(args)
}

/// Times `RUNS` sequential calls of `f`.
async fn time_async<F, Fut>(f: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        f().await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, samples: &mut [Duration]) -> Duration {
    let n = samples.len();
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    println!(
        "{what:<48} median {:>8.3} ms   p90 {:>8.3} ms   (n={n})",
        ms(median),
        ms(p90)
    );
    median
}
