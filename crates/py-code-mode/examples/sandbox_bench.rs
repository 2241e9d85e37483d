//! Subprocess vs sandbox, side by side in one run: worker start to `ready`
//! (session `start`) and `run("1+1")`, as medians, interleaved so all see
//! the same machine load. The "sandbox" column launches through this
//! (large) binary, as the CLI did before it shipped `py-code-mode-sandbox`;
//! the "small" column through that launcher, when built
//! (`cargo build -p py-code-mode-cli --bin py-code-mode-sandbox`, the same
//! profile) and named in `SMALL_LAUNCHER` (default: next to `examples/`).
//!
//!     cargo build --release -p py-code-mode-cli --bin py-code-mode-sandbox
//!     PY_CODE_MODE_PYTHON=.venv/bin/python cargo run --release -p py-code-mode --example sandbox_bench
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{ExecutorFactory, FileStorage, SandboxConfig, Session, SubprocessConfig};

const STARTS: usize = 30;
const RUNS: usize = 500;

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    // First, with one thread: as the launcher this never returns.
    py_code_mode::sandbox::launcher_main();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

#[expect(clippy::too_many_lines, reason = "one benchmark, read top to bottom")]
async fn bench() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let python = std::env::var_os("PY_CODE_MODE_PYTHON").map(Into::into);
    let subprocess = || SubprocessConfig {
        python: python.clone(),
        ..SubprocessConfig::default()
    };
    let sandbox = || SandboxConfig {
        python: python.clone(),
        ..SandboxConfig::default()
    };
    let small_program = std::env::var_os("SMALL_LAUNCHER")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("py-code-mode-sandbox"))
        })
        .filter(|p| p.is_file());
    let small = || {
        small_program.clone().map(|program| SandboxConfig {
            launcher: Some(py_code_mode::sandbox::Launcher {
                program,
                args: Vec::new(),
            }),
            ..sandbox()
        })
    };
    let build = |executor: Box<dyn ExecutorFactory>| {
        let path = dir.path().to_owned();
        async move {
            Session::builder(Arc::new(FileStorage::open(&path)?))
                .executor(Boxed(executor))
                .build()
                .await
        }
    };
    // The one-time costs (probe, the interpreter's folders) before timing.
    let probe = Instant::now();
    let warm = build(Box::new(sandbox())).await?;
    warm.start().await?;
    let first = probe.elapsed();
    warm.close().await;
    if let Some(config) = small() {
        let warm = build(Box::new(config)).await?;
        warm.start().await?;
        warm.close().await;
    }

    let (mut sub_starts, mut box_starts, mut small_starts) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..STARTS {
        for (starts, kind) in [
            (&mut sub_starts, 0),
            (&mut box_starts, 1),
            (&mut small_starts, 2),
        ] {
            let config: Box<dyn ExecutorFactory> = match kind {
                0 => Box::new(subprocess()),
                1 => Box::new(sandbox()),
                _ => match small() {
                    Some(config) => Box::new(config),
                    None => continue,
                },
            };
            let session = build(config).await?;
            let t = Instant::now();
            session.start().await?;
            starts.push(t.elapsed());
            session.close().await;
        }
    }
    let sub = build(Box::new(subprocess())).await?;
    let boxed = build(Box::new(sandbox())).await?;
    sub.start().await?;
    boxed.start().await?;
    let (mut sub_runs, mut box_runs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (session, runs) in [(&sub, &mut sub_runs), (&boxed, &mut box_runs)] {
            let t = Instant::now();
            let result = session.run("1+1").await?;
            runs.push(t.elapsed());
            anyhow::ensure!(result.is_ok(), "{}", result.to_text());
        }
    }
    sub.close().await;
    boxed.close().await;
    println!(
        "first sandbox start (probe + interpreter folders + start): {:.1} ms",
        first.as_secs_f64() * 1000.0
    );
    println!("                     subprocess   sandbox   sandbox, small launcher");
    println!(
        "start to ready (ms)  {:>10.1} {:>9.1} {:>9.1}   (median of {STARTS})",
        median(sub_starts),
        median(box_starts),
        if small_starts.is_empty() {
            f64::NAN
        } else {
            median(small_starts)
        }
    );
    println!(
        "run `1+1` (ms)       {:>10.3} {:>9.3}   (median of {RUNS})",
        median(sub_runs),
        median(box_runs)
    );
    Ok(())
}

/// A boxed factory as a factory.
struct Boxed(Box<dyn ExecutorFactory>);

impl ExecutorFactory for Boxed {
    fn build(
        self: Box<Self>,
        host: Arc<py_code_mode::Host>,
    ) -> Result<Box<dyn py_code_mode::Executor>, py_code_mode::ExecutorError> {
        self.0.build(host)
    }
}
