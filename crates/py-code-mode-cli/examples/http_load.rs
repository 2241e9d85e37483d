//! Load on `serve --http` beside `serve` (stdio), with a lean client (raw
//! JSON-RPC over reqwest / pipes, not an MCP SDK):
//! - `run_code("1+1")` back to back with 1, 10 and 50 sessions: p50, p99, calls/s;
//! - 10 sessions offering 1,000 calls/s in all: p50, p99; with the sessions'
//!   ticks spread evenly (a call every millisecond) and all together (bursts
//!   of ten every 10 ms, the worst case on two cores);
//! - resident memory per idle session (server and workers, from `/proc`);
//! - time from `initialize` to the first `run_code` result of a new session;
//! - the client's floor: the same HTTP load against a do-nothing server.
//!
//! Run: `cargo build --release --bins --example http_load && target/release/examples/http_load`
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark script: one main, figures as floats"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const PHASE: Duration = Duration::from_secs(3);
const IDLE_SESSIONS: usize = 50;
const FIRST_RESULTS: usize = 10;
/// Quiet before a paced phase (see [`settle`]).
const QUIET: Duration = Duration::from_secs(1);

fn run_code(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "run_code", "arguments": {"code": "1+1"}}})
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "http_load", "version": "0"}}})
}

/// One MCP session over HTTP.
struct HttpSession {
    client: reqwest::Client,
    url: String,
    id: String,
    next: AtomicU64,
}

impl HttpSession {
    async fn open(client: &reqwest::Client, url: &str) -> anyhow::Result<Self> {
        let response = post(client, url, None, &initialize()).await?;
        let id = response
            .headers()
            .get("mcp-session-id")
            .context("no session id")?
            .to_str()?
            .to_owned();
        response.bytes().await?;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        post(client, url, Some(&id), &note).await?.bytes().await?;
        Ok(Self {
            client: client.clone(),
            url: url.to_owned(),
            id,
            next: AtomicU64::new(1),
        })
    }

    async fn call(&self) -> anyhow::Result<()> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let body = post(&self.client, &self.url, Some(&self.id), &run_code(id))
            .await?
            .text()
            .await?;
        if !body.contains("\"text\":\"2\"") {
            bail!("unexpected reply: {body}");
        }
        Ok(())
    }

    async fn close(&self) {
        let _ = self
            .client
            .delete(&self.url)
            .header("mcp-session-id", &self.id)
            .send()
            .await;
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    let mut request = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    Ok(request.send().await?.error_for_status()?)
}

/// One stdio server process: one session.
struct StdioSession {
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    stdout: tokio::sync::Mutex<BufReader<ChildStdout>>,
    next: AtomicU64,
}

impl StdioSession {
    async fn open(binary: &Path, base: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args([
                "--base",
                &base.display().to_string(),
                "--no-semantic",
                "serve",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let session = Self {
            stdin: tokio::sync::Mutex::new(child.stdin.take().context("stdin")?),
            stdout: tokio::sync::Mutex::new(BufReader::new(child.stdout.take().context("stdout")?)),
            child,
            next: AtomicU64::new(1),
        };
        session.request(&initialize(), 0).await?;
        session
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(session)
    }

    async fn send(&self, message: &Value) -> anyhow::Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.lock().await.write_all(line.as_bytes()).await?;
        Ok(())
    }

    async fn request(&self, message: &Value, id: u64) -> anyhow::Result<String> {
        self.send(message).await?;
        let mut stdout = self.stdout.lock().await;
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).await? == 0 {
                bail!("the stdio server exited");
            }
            if line.contains(&format!("\"id\":{id}")) {
                return Ok(line);
            }
        }
    }

    async fn call(&self) -> anyhow::Result<()> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let reply = self.request(&run_code(id), id).await?;
        if !reply.contains("\"text\":\"2\"") {
            bail!("unexpected reply: {reply}");
        }
        Ok(())
    }
}

trait Caller: Send + Sync + 'static {
    fn call(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
}
impl Caller for HttpSession {
    async fn call(&self) -> anyhow::Result<()> {
        HttpSession::call(self).await
    }
}
impl Caller for StdioSession {
    async fn call(&self) -> anyhow::Result<()> {
        StdioSession::call(self).await
    }
}

struct Figures {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        // Nearest rank: `q` in 0..=1, so the index is within the vector.
        let i = (latencies.len().saturating_sub(1) * (q * 100.0) as usize) / 100;
        latencies.get(i).copied().unwrap_or_default()
    };
    Figures {
        p50: at(0.50),
        p99: at(0.99),
        per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// How the sessions of a load call.
#[derive(Clone, Copy)]
enum Pace {
    /// Each calls again as soon as its last call returned.
    BackToBack,
    /// Each calls every period, the sessions' ticks together.
    Together(Duration),
    /// Each calls every period, the sessions' ticks spread evenly over it.
    Spread(Duration),
}

/// Every session calls at `pace` for [`PHASE`].
async fn load<C: Caller>(sessions: &[Arc<C>], pace: Pace) -> anyhow::Result<Figures> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    let n = u32::try_from(sessions.len())?;
    for (i, session) in (0..n).zip(sessions) {
        let session = Arc::clone(session);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ticks = match pace {
                Pace::BackToBack => None,
                Pace::Together(period) => Some(tokio::time::interval(period)),
                Pace::Spread(period) => Some(tokio::time::interval_at(
                    tokio::time::Instant::now() + period * i / n,
                    period,
                )),
            };
            while started.elapsed() < PHASE {
                if let Some(ticks) = &mut ticks {
                    ticks.tick().await;
                }
                let call = Instant::now();
                session.call().await?;
                latencies.push(call.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(figures(all, started.elapsed()))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Resident memory of `pid` and every descendant, in bytes.
fn tree_rss(pid: u32) -> u64 {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((child, ppid));
        }
    }
    let rss = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024
    };
    let mut total = 0;
    let mut stack = vec![pid];
    while let Some(pid) = stack.pop() {
        total += rss(pid);
        stack.extend(parent_of.iter().filter(|(_, p)| *p == pid).map(|(c, _)| *c));
    }
    total
}

/// A do-nothing MCP server: answers every POST at once with a canned reply.
async fn floor_server() -> anyhow::Result<String> {
    use axum::routing::post;
    async fn answer(body: String) -> axum::response::Response {
        let id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("id").cloned())
            .unwrap_or(Value::Null);
        let reply = json!({"jsonrpc": "2.0", "id": id,
            "result": {"content": [{"type": "text", "text": "2"}], "isError": false}});
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .header("mcp-session-id", "floor")
            .body(axum::body::Body::from(format!("data: {reply}\n\n")))
            .unwrap_or_default()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let app = axum::Router::new().route("/mcp", post(answer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// One call on each session, then [`QUIET`]: the workers are up and what
/// opening the sessions started in the background is over.
async fn settle<C: Caller>(sessions: &[Arc<C>]) -> anyhow::Result<()> {
    for session in sessions {
        session.call().await?;
    }
    tokio::time::sleep(QUIET).await;
    Ok(())
}

async fn start_http(binary: &Path, base: &Path) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary)
        .args([
            "--base",
            &base.display().to_string(),
            "--no-semantic",
            "serve",
        ])
        .args(["--http", "127.0.0.1:0", "--max-sessions", "1000"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(url) = line.split("serving MCP on ").nth(1) {
            let url = url.trim().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((child, url));
        }
    }
    bail!("the HTTP server did not start")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary: PathBuf = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("py-code-mode"))
        .context("cannot locate the py-code-mode binary")?;
    anyhow::ensure!(
        binary.is_file(),
        "build it first: `cargo build --release --bins`"
    );
    let base = tempfile::tempdir()?;
    std::fs::create_dir_all(base.path().join("tools"))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    println!(
        "py-code-mode HTTP load ({} cores, {}s a phase)",
        std::thread::available_parallelism()?,
        PHASE.as_secs()
    );

    let floor_url = floor_server().await?;
    let (mut server, url) = start_http(&binary, base.path()).await?;
    println!("\nrun_code(\"1+1\") back to back: p50 / p99 / calls per second");
    println!(
        "{:>9} | {:>36} | {:>36} | {:>36}",
        "sessions", "HTTP", "stdio", "client floor (do-nothing HTTP)"
    );
    for n in [1usize, 10, 50] {
        let mut http = Vec::new();
        for _ in 0..n {
            http.push(Arc::new(HttpSession::open(&client, &url).await?));
        }
        let h = load(&http, Pace::BackToBack).await?;
        let mut stdio = Vec::new();
        for _ in 0..n {
            stdio.push(Arc::new(StdioSession::open(&binary, base.path()).await?));
        }
        let s = load(&stdio, Pace::BackToBack).await?;
        drop(stdio);
        let mut floor = Vec::new();
        for _ in 0..n {
            floor.push(Arc::new(HttpSession::open(&client, &floor_url).await?));
        }
        let f = load(&floor, Pace::BackToBack).await?;
        let row = |f: &Figures| format!("{} / {} / {:.0}", ms(f.p50), ms(f.p99), f.per_sec);
        println!(
            "{n:>9} | {:>36} | {:>36} | {:>36}",
            row(&h),
            row(&s),
            row(&f)
        );
        for session in &http {
            session.close().await;
        }
    }

    // Each side alone, once its sessions have answered a call and a second
    // of quiet has passed: opening sessions starts workers (the server's spare
    // is refilled, each stdio server starts its own), which must not land in
    // the other side's measurement nor in the first ticks of its own.
    println!(
        "\n10 sessions offering 1,000 calls/s in all (100/s each), after a call on each and {}s of quiet: p50 / p99 / achieved",
        QUIET.as_secs()
    );
    let period = Duration::from_millis(10);
    let paces = [
        ("ticks spread evenly", Pace::Spread(period)),
        ("ticks together     ", Pace::Together(period)),
    ];
    let mut http = Vec::new();
    for _ in 0..10 {
        http.push(Arc::new(HttpSession::open(&client, &url).await?));
    }
    settle(&http).await?;
    let mut http_rows = Vec::new();
    for (_, pace) in paces {
        http_rows.push(load(&http, pace).await?);
    }
    for session in &http {
        session.close().await;
    }
    let mut stdio = Vec::new();
    for _ in 0..10 {
        stdio.push(Arc::new(StdioSession::open(&binary, base.path()).await?));
    }
    settle(&stdio).await?;
    let mut stdio_rows = Vec::new();
    for (_, pace) in paces {
        stdio_rows.push(load(&stdio, pace).await?);
    }
    drop(stdio);
    for ((what, _), (paced, paced_stdio)) in paces.iter().zip(http_rows.iter().zip(&stdio_rows)) {
        println!(
            "{what}: HTTP  {} / {} / {:.0}/s   stdio {} / {} / {:.0}/s",
            ms(paced.p50),
            ms(paced.p99),
            paced.per_sec,
            ms(paced_stdio.p50),
            ms(paced_stdio.p99),
            paced_stdio.per_sec
        );
    }

    // Memory: the server's tree before and after IDLE_SESSIONS sessions that ran once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.id().context("server pid")?;
    let before = tree_rss(pid);
    let mut idle = Vec::new();
    for _ in 0..IDLE_SESSIONS {
        let session = HttpSession::open(&client, &url).await?;
        session.call().await?;
        idle.push(session);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = tree_rss(pid);
    let per_http = after.saturating_sub(before) / IDLE_SESSIONS as u64;
    for session in &idle {
        session.close().await;
    }
    let mut stdio_idle = Vec::new();
    for _ in 0..10 {
        let session = StdioSession::open(&binary, base.path()).await?;
        session.call().await?;
        stdio_idle.push(session);
    }
    let per_stdio = stdio_idle
        .iter()
        .filter_map(|s| s.child.id())
        .map(tree_rss)
        .sum::<u64>()
        / 10;
    drop(stdio_idle);
    println!(
        "\nresident memory per idle session: HTTP {:.1} MiB (server and workers, {IDLE_SESSIONS} sessions) | stdio {:.1} MiB (a server process and its worker)",
        per_http as f64 / 1_048_576.0,
        per_stdio as f64 / 1_048_576.0
    );

    // A new session's first result: initialize, initialized, run_code.
    let mut http_first = Vec::new();
    let mut stdio_first = Vec::new();
    for _ in 0..FIRST_RESULTS {
        let started = Instant::now();
        let session = HttpSession::open(&client, &url).await?;
        session.call().await?;
        http_first.push(started.elapsed());
        session.close().await;
        let started = Instant::now();
        let session = StdioSession::open(&binary, base.path()).await?;
        session.call().await?;
        stdio_first.push(started.elapsed());
    }
    let (h, s) = (
        figures(http_first, Duration::from_secs(1)),
        figures(stdio_first, Duration::from_secs(1)),
    );
    println!(
        "initialize to first result (median of {FIRST_RESULTS}): HTTP {} | stdio {} (including the process start)",
        ms(h.p50),
        ms(s.p50)
    );
    server.kill().await?;
    Ok(())
}
