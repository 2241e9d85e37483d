//! Per-run overhead and start costs, before and after, side by side in one
//! run (medians; the modes interleaved so they share the machine's noise).
//!
//! "before" is main at 7a9e099 reproduced: the interpreter probed for every
//! new session, the worker started on that commit's runtime (read with
//! `git show`, so run this from the repository), no pool. "cold" is this
//! tree with no pool; "pool" is this tree with a warm pool (the pool
//! refilled, outside the timing, before each new session).
//!
//!     PY_CODE_MODE_PYTHON=$PWD/.venv/bin/python \
//!       cargo run --release -p py-code-mode --example start_bench
//!
//! This binary is also its own sandbox launcher and, with `--child MODE`, the
//! "new process" it times.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use py_code_mode::{
    DirectLauncher, ExecutorError, ExecutorFactory, FileStorage, LaunchedWorker, SandboxConfig,
    Session, SubprocessConfig, SubprocessExecutor, WorkerCommand, WorkerLauncher, WorkerPool,
};

const RUNS: usize = 400;
const RESETS: usize = 40;
const STARTS: usize = 20;
const PROCESSES: usize = 10;
/// The pause before each timed reset (see there).
const SPARE_READY: Duration = Duration::from_millis(300);
const BASE_COMMIT: &str = "7a9e099";
const RUNTIME_PATH: &str = "crates/py-code-mode/python/py_code_mode_runtime.py";

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    py_code_mode::sandbox::launcher_main();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, mode] = args.as_slice()
        && flag == "--child"
    {
        return runtime.block_on(child(mode));
    }
    runtime.block_on(bench())
}

/// Reads and drops `argv[1]` bytes of fd 0, then runs `argv[2]` as `-c` would.
const DRAIN_THEN_RUN: &str = "import os, sys\n\
size, source = int(sys.argv[1]), sys.argv[2]\n\
del sys.argv[1:]\n\
while size > 0:\n    \
size -= len(os.read(0, size)) or size\n\
exec(compile(source, '<string>', 'exec', dont_inherit=True))";

/// Starts workers on the base commit's runtime: what main ran.
struct BaselineLauncher(Arc<str>);

#[async_trait]
impl WorkerLauncher for BaselineLauncher {
    async fn launch(&self, mut command: WorkerCommand) -> Result<LaunchedWorker, ExecutorError> {
        // This tree may send its cached bytecode first (the bootstrap's
        // arguments are its size and version): the base runtime, compiled
        // from source as `-c` does, starts after reading and dropping it.
        let size = match command.args.as_slice() {
            [_, _, _, size, _] => size.clone(),
            _ => OsString::from("0"),
        };
        command.args = vec![
            OsString::from("-I"),
            OsString::from("-c"),
            OsString::from(DRAIN_THEN_RUN),
            size,
            OsString::from(&*self.0),
        ];
        DirectLauncher.launch(command).await
    }
}

/// The executor main built: a fresh probe of the interpreter per executor.
struct Baseline {
    python: Option<PathBuf>,
    runtime: Arc<str>,
}

impl ExecutorFactory for Baseline {
    fn build(
        self: Box<Self>,
        host: Arc<py_code_mode::Host>,
    ) -> Result<Box<dyn py_code_mode::Executor>, ExecutorError> {
        let config = SubprocessConfig {
            python: self.python,
            ..SubprocessConfig::default()
        };
        Ok(Box::new(BaselineExecutor {
            inner: SubprocessExecutor::with_launcher(
                config.clone(),
                host,
                Arc::new(BaselineLauncher(self.runtime)),
            ),
            python: config.python,
        }))
    }
}

struct BaselineExecutor {
    inner: SubprocessExecutor,
    python: Option<PathBuf>,
}

#[async_trait]
impl py_code_mode::Executor for BaselineExecutor {
    async fn start(&self) -> Result<(), ExecutorError> {
        probe(self.python.as_deref()).await?;
        self.inner.start().await
    }
    async fn run(
        &self,
        code: &str,
        timeout: Duration,
    ) -> Result<py_code_mode::ExecutionResult, ExecutorError> {
        self.inner.run(code, timeout).await
    }
    async fn reset(&self) -> Result<(), ExecutorError> {
        self.inner.reset().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

/// main's `resolve_python`: one interpreter start asking for `sys.executable`.
async fn probe(python: Option<&std::path::Path>) -> Result<(), ExecutorError> {
    let program = python.map_or_else(|| PathBuf::from("python3"), std::path::Path::to_path_buf);
    tokio::process::Command::new(&program)
        .args(["-I", "-c", "import sys; print(sys.executable)"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| ExecutorError::Spawn {
            python: program,
            source,
        })?;
    Ok(())
}

struct Setup {
    dir: tempfile::TempDir,
    python: Option<PathBuf>,
    baseline: Arc<str>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Before,
    Cold,
    Pool,
}

impl Mode {
    const ALL: [Self; 3] = [Self::Before, Self::Cold, Self::Pool];
    fn name(self) -> &'static str {
        match self {
            Self::Before => "before",
            Self::Cold => "cold",
            Self::Pool => "pool",
        }
    }
}

impl Setup {
    async fn session(&self, mode: Mode, pool: &WorkerPool) -> anyhow::Result<Session> {
        let storage = Arc::new(FileStorage::open(self.dir.path())?);
        let builder = Session::builder(storage);
        let builder = match mode {
            Mode::Before => builder.executor(Baseline {
                python: self.python.clone(),
                runtime: Arc::clone(&self.baseline),
            }),
            Mode::Cold | Mode::Pool => builder.executor(SubprocessConfig {
                python: self.python.clone(),
                pool: (mode == Mode::Pool).then(|| pool.clone()),
                ..SubprocessConfig::default()
            }),
        };
        Ok(builder.build().await?)
    }

    async fn sandbox(&self, pool: Option<&WorkerPool>) -> anyhow::Result<Session> {
        let storage = Arc::new(FileStorage::open(self.dir.path())?);
        Ok(Session::builder(storage)
            .executor(SandboxConfig {
                python: self.python.clone(),
                pool: pool.cloned(),
                ..SandboxConfig::default()
            })
            .build()
            .await?)
    }
}

async fn first_result(session: &Session) -> anyhow::Result<()> {
    let result = session.run("1+1").await?;
    anyhow::ensure!(result.is_ok(), "{}", result.to_text());
    Ok(())
}

/// Waits (untimed) until the pool holds its size.
async fn refilled(pool: &WorkerPool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while pool.idle_pids().len() < pool.size() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn row(what: &str, figures: &[(&str, f64)]) {
    let cells: Vec<String> = figures
        .iter()
        .map(|(name, ms)| format!("{name} {ms:>8.3} ms"))
        .collect();
    println!("{what:<38} {}", cells.join("   "));
}

#[expect(
    clippy::too_many_lines,
    reason = "one sequence of measurements, read top to bottom"
)]
async fn bench() -> anyhow::Result<()> {
    let python: Option<PathBuf> = std::env::var_os("PY_CODE_MODE_PYTHON").map(Into::into);
    let baseline = std::process::Command::new("git")
        .args(["show", &format!("{BASE_COMMIT}:{RUNTIME_PATH}")])
        .output()?;
    anyhow::ensure!(
        baseline.status.success(),
        "cannot read the base runtime with `git show` (run from the repository)"
    );
    let setup = Setup {
        dir: tempfile::tempdir()?,
        python,
        baseline: String::from_utf8(baseline.stdout)?.into(),
    };
    let pool = WorkerPool::new(1)?;

    // Warm runs: one session per mode, runs interleaved.
    let sessions = [
        setup.session(Mode::Before, &pool).await?,
        setup.session(Mode::Cold, &pool).await?,
    ];
    for s in &sessions {
        s.start().await?;
    }
    let mut ones = [Vec::new(), Vec::new()];
    let mut calls = [Vec::new(), Vec::new()];
    for _ in 0..RUNS {
        for (i, s) in sessions.iter().enumerate() {
            let t = Instant::now();
            first_result(s).await?;
            ones[i].push(t.elapsed());
            let t = Instant::now();
            let r = s.run("artifacts.exists('nothing')").await?;
            calls[i].push(t.elapsed());
            anyhow::ensure!(r.is_ok(), "{}", r.to_text());
        }
    }
    let mut resets = [Vec::new(), Vec::new()];
    for _ in 0..RESETS {
        for (i, s) in sessions.iter().enumerate() {
            // Untimed: the spare worker made by the last reset gets ready, as
            // it does while an agent works between resets.
            tokio::time::sleep(SPARE_READY).await;
            let t = Instant::now();
            s.reset().await?;
            first_result(s).await?;
            resets[i].push(t.elapsed());
        }
    }
    for s in &sessions {
        s.close().await;
    }
    let pair = |v: &[Vec<Duration>; 2]| {
        [
            ("before", median(v[0].clone())),
            ("now", median(v[1].clone())),
        ]
    };
    println!("subprocess executor, medians (before = {BASE_COMMIT} reproduced):");
    row("`1+1` on a warm session", &pair(&ones));
    row("one host call (`artifacts.exists`)", &pair(&calls));
    row("`reset()` then a first result", &pair(&resets));

    // New session → first result, three ways.
    let mut starts = [Vec::new(), Vec::new(), Vec::new()];
    let mut builds = Vec::new();
    for _ in 0..STARTS {
        for (i, mode) in Mode::ALL.into_iter().enumerate() {
            if mode == Mode::Pool {
                refilled(&pool).await;
            }
            let t = Instant::now();
            let session = setup.session(mode, &pool).await?;
            if mode == Mode::Pool {
                builds.push(t.elapsed());
            }
            first_result(&session).await?;
            starts[i].push(t.elapsed());
            session.close().await;
        }
    }
    let figures: Vec<(&str, f64)> = Mode::ALL
        .iter()
        .zip(&starts)
        .map(|(m, v)| (m.name(), median(v.clone())))
        .collect();
    row("new session → first result", &figures);
    row(
        "  of which `Session::build` (pool)",
        &[("pool", median(builds))],
    );
    refilled(&pool).await;
    let memory = pool_memory(&pool);
    println!(
        "pool memory: {:.1} MiB RSS ({:.1} MiB PSS) per idle subprocess worker",
        memory.0, memory.1
    );
    pool.close();

    // New process → first result: this binary started again as a child.
    let exe = std::env::current_exe()?;
    let mut processes = [Vec::new(), Vec::new()];
    for _ in 0..PROCESSES {
        for (i, mode) in ["before", "cold"].into_iter().enumerate() {
            let t = Instant::now();
            let out = tokio::process::Command::new(&exe)
                .args(["--child", mode])
                .output()
                .await?;
            anyhow::ensure!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            processes[i].push(t.elapsed());
        }
    }
    row(
        "new process → first result (exit incl.)",
        &[
            ("before", median(processes[0].clone())),
            ("now", median(processes[1].clone())),
        ],
    );

    // The sandbox: new session → first result, cold and with a warm pool.
    let sandbox_pool = WorkerPool::new(1)?;
    let warm = setup.sandbox(None).await?; // the one-time probe, untimed
    first_result(&warm).await?;
    warm.close().await;
    let mut boxed = [Vec::new(), Vec::new()];
    for _ in 0..STARTS {
        for (i, pooled) in [false, true].into_iter().enumerate() {
            if pooled {
                refilled(&sandbox_pool).await;
            }
            let t = Instant::now();
            let session = setup.sandbox(pooled.then_some(&sandbox_pool)).await?;
            first_result(&session).await?;
            boxed[i].push(t.elapsed());
            session.close().await;
        }
    }
    row(
        "sandbox: new session → first result",
        &[
            ("cold", median(boxed[0].clone())),
            ("pool", median(boxed[1].clone())),
        ],
    );
    refilled(&sandbox_pool).await;
    let memory = pool_memory(&sandbox_pool);
    println!(
        "sandbox pool memory: {:.1} MiB RSS ({:.1} MiB PSS) per idle worker (its whole tree)",
        memory.0, memory.1
    );
    sandbox_pool.close();
    Ok(())
}

/// A new process's first result, in the child.
async fn child(mode: &str) -> anyhow::Result<()> {
    let python: Option<PathBuf> = std::env::var_os("PY_CODE_MODE_PYTHON").map(Into::into);
    let dir = tempfile::tempdir()?;
    let storage = Arc::new(FileStorage::open(dir.path())?);
    let builder = Session::builder(storage);
    let builder = if mode == "before" {
        let baseline = std::process::Command::new("git")
            .args(["show", &format!("{BASE_COMMIT}:{RUNTIME_PATH}")])
            .output()?;
        // Read before the clock of a real start would run: only the worker's
        // cost differs, not `git show`'s.
        builder.executor(Baseline {
            python,
            runtime: String::from_utf8(baseline.stdout)?.into(),
        })
    } else {
        builder.executor(SubprocessConfig {
            python,
            ..SubprocessConfig::default()
        })
    };
    let session = builder.build().await?;
    first_result(&session).await?;
    session.close().await;
    Ok(())
}

/// Mean RSS and PSS of an idle worker with its descendants, in MiB.
fn pool_memory(pool: &WorkerPool) -> (f64, f64) {
    let pids = pool.idle_pids();
    let (mut rss, mut pss) = (0u64, 0u64);
    for pid in &pids {
        for p in tree(*pid) {
            let rollup =
                std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default();
            let field = |name: &str| {
                rollup
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            rss += field("Rss:");
            pss += field("Pss:");
        }
    }
    let n = pids.len().max(1) as f64;
    (rss as f64 / 1024.0 / n, pss as f64 / 1024.0 / n)
}

/// `pid` and its descendants, from the parent links in /proc.
fn tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let parent = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((child, parent));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while let Some(&parent) = found.get(i) {
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found
}
