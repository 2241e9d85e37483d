//! Container executor figures, side by side with the subprocess executor:
//! a cold container start and a pooled one (session start to the first
//! `1+1` result), and the median `run_code("1+1")` on each executor.
//!
//! ```text
//! eval "$(scripts/dockerd)"; scripts/build-test-image
//! cargo run --release -p py-code-mode --example container_bench [-- STARTS RUNS]
//! ```
//!
//! `PY_CODE_MODE_TEST_IMAGE` picks the image (default `py-code-mode:latest`),
//! `PY_CODE_MODE_PYTHON` the subprocess executor's interpreter.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{ContainerConfig, ExecutorFactory, FileStorage, Session, SubprocessConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let starts: usize = args.first().map_or(Ok(10), |a| a.parse())?;
    let runs: usize = args.get(1).map_or(Ok(500), |a| a.parse())?;
    let image =
        std::env::var("PY_CODE_MODE_TEST_IMAGE").unwrap_or_else(|_| "py-code-mode:latest".into());
    let dir = tempfile::tempdir()?;
    let storage = Arc::new(FileStorage::open(dir.path())?);
    let container = |pool_size| ContainerConfig {
        pool_size,
        ..ContainerConfig::new(&image)
    };
    let subprocess = || SubprocessConfig {
        python: std::env::var_os("PY_CODE_MODE_PYTHON").map(PathBuf::from),
        ..SubprocessConfig::default()
    };

    // Reference: what one `docker run` of the image costs, with no limits.
    let mut bare = Vec::new();
    for _ in 0..starts {
        let started = Instant::now();
        let status = Command::new("docker")
            .args(["run", "--rm", "--network", "none", &image, "true"])
            .status()?;
        anyhow::ensure!(status.success(), "docker run failed");
        bare.push(started.elapsed());
    }

    let mut cold = Vec::new();
    let mut subprocess_start = Vec::new();
    for _ in 0..starts {
        cold.push(first_result(&storage, container(0)).await?);
        subprocess_start.push(first_result(&storage, subprocess()).await?);
    }

    // Pooled: a first session creates the pool; each later one takes a warm
    // container. Between sessions the pool refills (a benchmark may wait).
    first_result(&storage, container(2)).await?;
    let mut pooled = Vec::new();
    for _ in 0..starts {
        tokio::time::sleep(Duration::from_secs(2)).await;
        pooled.push(first_result(&storage, container(2)).await?);
    }

    let container_runs = run_medians(&storage, container(2), runs).await?;
    let subprocess_runs = run_medians(&storage, subprocess(), runs).await?;

    println!("session start to the first `1+1` result, median of {starts}");
    println!(
        "  docker run --rm IMAGE true (reference)   {}",
        ms(median(&mut bare))
    );
    println!(
        "  container, cold (pool_size=0)            {}",
        ms(median(&mut cold))
    );
    println!(
        "  container, pooled (pool_size=2)          {}",
        ms(median(&mut pooled))
    );
    println!(
        "  subprocess                               {}",
        ms(median(&mut subprocess_start))
    );
    println!("run_code(\"1+1\") in a started session, {runs} runs: median / p90");
    println!(
        "  container   {} / {}",
        ms(container_runs.0),
        ms(container_runs.1)
    );
    println!(
        "  subprocess  {} / {}",
        ms(subprocess_runs.0),
        ms(subprocess_runs.1)
    );
    Ok(())
}

/// Builds a session, runs `1+1`, closes it: the time to the result.
async fn first_result(
    storage: &Arc<FileStorage>,
    executor: impl ExecutorFactory + 'static,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let session = Session::builder(Arc::clone(storage) as Arc<dyn py_code_mode::Storage>)
        .executor(executor)
        .build()
        .await?;
    let result = session.run("1+1").await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(result.is_ok(), "{}", result.to_text());
    session.close().await;
    Ok(elapsed)
}

/// Median and p90 of `runs` runs of `1+1` in one session.
async fn run_medians(
    storage: &Arc<FileStorage>,
    executor: impl ExecutorFactory + 'static,
    runs: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let session = Session::builder(Arc::clone(storage) as Arc<dyn py_code_mode::Storage>)
        .executor(executor)
        .build()
        .await?;
    session.run("1+1").await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let result = session.run("1+1").await?;
        times.push(started.elapsed());
        anyhow::ensure!(result.is_ok(), "{}", result.to_text());
    }
    session.close().await;
    times.sort();
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    Ok((median(&mut times), p90))
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:>9.3} ms", d.as_secs_f64() * 1000.0)
}
