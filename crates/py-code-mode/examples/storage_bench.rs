//! Storage figures: skill create/get/list/search latency at 1,000 skills in
//! Redis versus FileStorage, and the throughput of concurrent artifact saves
//! from 4 processes. Starts its own `redis-server` on a free loopback port.
//!
//! ```text
//! cargo run --release -p py-code-mode --example storage_bench [-- SKILLS [PROCESSES SAVES_EACH]]
//! ```
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{ArtifactData, FileStorage, RedisStorage, Session, Storage};
use py_code_mode_test_support::RedisServer;

/// Bytes of each artifact in the concurrent-save figure.
const ARTIFACT_BYTES: usize = 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker(&args[1..]).await;
    }
    let skills: usize = args.first().map_or(Ok(1000), |a| a.parse())?;
    let processes: usize = args.get(1).map_or(Ok(4), |a| a.parse())?;
    let saves: usize = args.get(2).map_or(Ok(500), |a| a.parse())?;

    let server = RedisServer::start();
    let dir = tempfile::tempdir()?;
    println!("{skills} skills stored; mean latency per call");
    println!(
        "{:<8} {:>12} {:>12} {:>12} {:>12}",
        "backend", "create", "get", "list", "search"
    );
    let file: Arc<dyn Storage> = Arc::new(FileStorage::open(dir.path().join("lib"))?);
    let redis: Arc<dyn Storage> = Arc::new(RedisStorage::connect(&server.url(), "bench").await?);
    for (name, storage) in [("file", file), ("redis", redis)] {
        let row = skill_latencies(storage, skills).await?;
        println!(
            "{name:<8} {:>12} {:>12} {:>12} {:>12}",
            fmt(row[0]),
            fmt(row[1]),
            fmt(row[2]),
            fmt(row[3])
        );
    }

    println!();
    println!(
        "concurrent artifact saves: {processes} processes x {saves} saves of {ARTIFACT_BYTES} B"
    );
    let file_target = dir.path().join("shared").display().to_string();
    for (name, target) in [("file", file_target), ("redis", server.url())] {
        let exe = std::env::current_exe()?;
        let started = Instant::now();
        let children = (0..processes)
            .map(|i| {
                std::process::Command::new(&exe)
                    .args([
                        "--worker",
                        name,
                        &target,
                        &i.to_string(),
                        &saves.to_string(),
                    ])
                    .spawn()
            })
            .collect::<Result<Vec<_>, _>>()?;
        for mut child in children {
            anyhow::ensure!(child.wait()?.success(), "a worker failed");
        }
        let elapsed = started.elapsed();
        let total = processes * saves;
        let storage: Arc<dyn Storage> = if name == "file" {
            Arc::new(FileStorage::open(&target)?)
        } else {
            Arc::new(RedisStorage::connect(&target, "bench-artifacts").await?)
        };
        let stored = storage.list_artifacts().await?.len();
        anyhow::ensure!(
            stored == total,
            "{name}: {stored} of {total} artifacts stored"
        );
        println!(
            "{name:<8} {total} saves in {:.2} s = {:.0} saves/s (all {stored} present; includes process start)",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Mean latency of create, get, list and search with `n` skills stored.
async fn skill_latencies(storage: Arc<dyn Storage>, n: usize) -> anyhow::Result<[Duration; 4]> {
    let session = Session::builder(storage).build().await?;
    let words = [
        "scan",
        "fetch",
        "parse",
        "summarize",
        "port",
        "report",
        "url",
        "host",
    ];
    let started = Instant::now();
    for i in 0..n {
        let source = format!(
            "\"\"\"{} the {} of item {i}.\"\"\"\n\ndef run(target: str, limit: int = {i}) -> dict:\n    return {{'target': target, 'n': {i}}}\n",
            words[i % words.len()],
            words[(i / 3) % words.len()]
        );
        session
            .add_skill(
                &format!("skill_{i:04}"),
                &source,
                &format!("{} things {i}", words[(i * 7) % words.len()]),
            )
            .await?;
    }
    let create = started.elapsed() / u32::try_from(n.max(1))?;
    let reps: u32 = 200;
    let started = Instant::now();
    for i in 0..reps {
        session
            .get_skill(&format!("skill_{:04}", (i as usize * 37) % n))
            .await?;
    }
    let get = started.elapsed() / reps;
    let reps: u32 = 20;
    let started = Instant::now();
    for _ in 0..reps {
        anyhow::ensure!(session.list_skills().await?.len() == n);
    }
    let list = started.elapsed() / reps;
    let started = Instant::now();
    for i in 0..reps {
        session
            .search_skills(words[i as usize % words.len()], 5)
            .await?;
    }
    let search = started.elapsed() / reps;
    session.close().await;
    Ok([create, get, list, search])
}

/// One saving process: `--worker file|redis TARGET ID SAVES`.
async fn worker(args: &[String]) -> anyhow::Result<()> {
    let [kind, target, id, saves] = args else {
        anyhow::bail!("usage: --worker file|redis TARGET ID SAVES");
    };
    let storage: Arc<dyn Storage> = if kind == "file" {
        Arc::new(FileStorage::open(PathBuf::from(target))?)
    } else {
        Arc::new(RedisStorage::connect(target, "bench-artifacts").await?)
    };
    let session = Session::builder(storage).build().await?;
    let data = ArtifactData::Text {
        value: "x".repeat(ARTIFACT_BYTES),
    };
    for i in 0..saves.parse::<usize>()? {
        session
            .save_artifact(
                &format!("w{id}/a{i}.txt"),
                &data,
                "bench",
                serde_json::Map::new(),
            )
            .await?;
    }
    Ok(())
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}
