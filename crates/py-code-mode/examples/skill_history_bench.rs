//! What skill history costs: create, update and list at 1,000 skills, saved
//! without history (what every save did before versions) versus as versions
//! with provenance, in folder and Redis storage; and the replay time of one
//! recorded case. Starts its own `redis-server` on a free loopback port.
//!
//! ```text
//! cargo run --release -p py-code-mode --example skill_history_bench [-- SKILLS]
//! ```
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{FileStorage, RedisStorage, Session, Storage, SubprocessConfig};
use py_code_mode_test_support::{RedisServer, python};

/// Listings per burst (the burst's mean is one sample).
const LISTINGS: u32 = 5;
/// Bursts per library, alternating between the two (the median is printed).
const LIST_ROUNDS: usize = 15;
/// Rounds per backend (the median is printed).
const ROUNDS: usize = 3;
/// Replays measured (the mean is printed).
const REPLAYS: u32 = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let skills: usize = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let server = RedisServer::start();
    let dir = tempfile::tempdir()?;
    println!("{skills} skills; mean latency per call (median of the rounds)");
    println!(
        "{:<8} {:<12} {:>12} {:>12} {:>12}",
        "backend", "saves", "create", "update", "list"
    );
    for backend in ["file", "redis"] {
        // Rounds alternate the two ways of saving, each on fresh storage, and
        // the median of each column is printed: the machine is shared, so a
        // single pass would measure its neighbours as much as the code.
        let mut rows: [Vec<[Duration; 2]>; 2] = [Vec::new(), Vec::new()];
        let mut last: [Option<Session>; 2] = [None, None];
        for round in 0..ROUNDS {
            for versioned in [false, true] {
                let label = format!("{backend}-{round}-{versioned}");
                let storage: Arc<dyn Storage> = match backend {
                    "file" => Arc::new(FileStorage::open(dir.path().join(&label))?),
                    _ => Arc::new(RedisStorage::connect(&server.url(), &label).await?),
                };
                let (row, session) = fill(storage, skills, versioned).await?;
                rows[usize::from(versioned)].push(row);
                if let Some(old) = last[usize::from(versioned)].replace(session) {
                    old.close().await;
                }
            }
        }
        // Listings of the two libraries alternate in short bursts, so both
        // sides see the same neighbours; the median burst is printed.
        let mut lists: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..LIST_ROUNDS {
            for (side, session) in last.iter().enumerate() {
                let Some(session) = session else { continue };
                let started = Instant::now();
                for _ in 0..LISTINGS {
                    let listed = session.list_skills().await?;
                    assert_eq!(listed.len(), skills);
                }
                lists[side].push(started.elapsed() / LISTINGS);
            }
        }
        let mut listed = [Duration::ZERO; 2];
        for (versioned, label) in [(0, "no history"), (1, "versioned")] {
            let median = |mut values: Vec<Duration>| {
                values.sort();
                values[values.len() / 2]
            };
            let column = |c: usize| median(rows[versioned].iter().map(|r| r[c]).collect());
            listed[versioned] = median(lists[versioned].clone());
            println!(
                "{backend:<8} {label:<12} {:>12} {:>12} {:>12}",
                fmt(column(0)),
                fmt(column(1)),
                fmt(listed[versioned])
            );
        }
        println!(
            "{backend:<8} listing versioned / no history: {:+.1} %",
            (listed[1].as_secs_f64() / listed[0].as_secs_f64() - 1.0) * 100.0
        );
        for session in last.into_iter().flatten() {
            session.close().await;
        }
    }
    println!();
    let replay = replay_time(&dir.path().join("replay")).await?;
    println!(
        "replay of one recorded case (one tool call), `Session::test_skill`: {}",
        fmt(replay)
    );
    Ok(())
}

/// Mean create and update latency, and the session over the filled library.
async fn fill(
    storage: Arc<dyn Storage>,
    skills: usize,
    versioned: bool,
) -> anyhow::Result<([Duration; 2], Session)> {
    let session = Session::builder(storage).build().await?;
    let source = |i: usize, v: usize| {
        format!(
            "\"\"\"Skill {i}: fetch and summarise item {i}.\"\"\"\n\ndef run(x: int = {v}):\n    return x + {i}\n"
        )
    };
    let mut row = [Duration::ZERO; 2];
    for (column, v) in [(0, 1), (1, 2)] {
        let started = Instant::now();
        for i in 0..skills {
            let name = format!("skill_{i:04}");
            if versioned {
                session.add_skill(&name, &source(i, v), "").await?;
            } else {
                session
                    .host()
                    .skills()
                    .put_unversioned(&name, &source(i, v), "")
                    .await?;
            }
        }
        row[column] = started.elapsed() / u32::try_from(skills)?;
    }
    // The first listing parses every source; later ones hit the cache.
    session.list_skills().await?;
    Ok((row, session))
}

/// Mean time of `Session::test_skill` for a skill with one recorded case.
async fn replay_time(base: &std::path::Path) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(base.join("tools"))?;
    std::fs::write(
        base.join("tools/echo.yaml"),
        "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n",
    )?;
    let session = Session::builder(Arc::new(FileStorage::open(base)?))
        .executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
        .build()
        .await?;
    session
        .add_skill(
            "shout",
            "def run(text: str):\n    return tools.echo(text=text).strip().upper()\n",
            "",
        )
        .await?;
    let recorded = session
        .run("skills.record('shout', 'hi', text='hi')")
        .await?;
    anyhow::ensure!(recorded.is_ok(), "recording failed: {}", recorded.to_text());
    // The first replay warms the worker's skill cache.
    session.test_skill("shout").await?;
    let started = Instant::now();
    for _ in 0..REPLAYS {
        let reports = session.test_skill("shout").await?;
        anyhow::ensure!(reports.iter().all(|r| r.ok), "a replay failed");
    }
    let mean = started.elapsed() / REPLAYS;
    session.close().await;
    Ok(mean)
}

fn fmt(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}
