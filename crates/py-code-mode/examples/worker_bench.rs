//! Prints the subprocess worker's figures:
//! worker start (session `start`), the median `run` of `1+1`, and the median
//! `reset` followed by `1+1` (each reset 300 ms after the last).
//!
//!     PY_CODE_MODE_PYTHON=.venv/bin/python cargo run -p py-code-mode --example worker_bench
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{FileStorage, Session, SubprocessConfig};

const STARTS: usize = 20;
const RUNS: usize = 500;
const RESETS: usize = 20;
/// Time between one reset and the next, as an agent would take.
const THINK: Duration = Duration::from_millis(300);

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let python = std::env::var_os("PY_CODE_MODE_PYTHON").map(Into::into);
    let build = || async {
        Session::builder(Arc::new(FileStorage::open(dir.path())?))
            .executor(SubprocessConfig {
                python: python.clone(),
                ..SubprocessConfig::default()
            })
            .build()
            .await
    };
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let session = build().await?;
        let t = Instant::now();
        session.start().await?;
        starts.push(t.elapsed());
        session.close().await;
    }
    let session = build().await?;
    session.start().await?;
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let result = session.run("1+1").await?;
        runs.push(t.elapsed());
        anyhow::ensure!(result.is_ok(), "{}", result.to_text());
    }
    let mut resets = Vec::new();
    for _ in 0..RESETS {
        // An agent thinks between resets; a spare worker starts meanwhile.
        tokio::time::sleep(THINK).await;
        let t = Instant::now();
        session.reset().await?;
        let result = session.run("1+1").await?;
        resets.push(t.elapsed());
        anyhow::ensure!(result.is_ok(), "{}", result.to_text());
    }
    session.close().await;
    println!("worker start, median of {STARTS}: {:.1} ms", median(starts));
    println!("run of `1+1`, median of {RUNS}: {:.3} ms", median(runs));
    println!(
        "reset + `1+1`, median of {RESETS}: {:.2} ms",
        median(resets)
    );
    Ok(())
}
