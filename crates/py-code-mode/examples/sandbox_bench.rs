//! Subprocess vs sandbox, side by side in one run: worker start to `ready`
//! (session `start`) and `run("1+1")`, as medians, interleaved so both see
//! the same machine load. This binary is its own sandbox launcher.
//!
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

    let (mut sub_starts, mut box_starts) = (Vec::new(), Vec::new());
    for _ in 0..STARTS {
        for (starts, sandboxed) in [(&mut sub_starts, false), (&mut box_starts, true)] {
            let session = if sandboxed {
                build(Box::new(sandbox())).await?
            } else {
                build(Box::new(subprocess())).await?
            };
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
    println!("                     subprocess   sandbox");
    println!(
        "start to ready (ms)  {:>10.1} {:>9.1}   (median of {STARTS})",
        median(sub_starts),
        median(box_starts)
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
