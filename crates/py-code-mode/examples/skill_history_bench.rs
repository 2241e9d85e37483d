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
const LIST_ROUNDS: usize = 40;
/// Replays measured (the mean is printed).
const REPLAYS: u32 = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let skills: usize = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let server = RedisServer::start();
    let dir = tempfile::tempdir()?;
    println!(
        "{skills} skills; median latency of a save (the two sides in lockstep), median listing"
    );
    println!(
        "{:<8} {:<12} {:>12} {:>12} {:>12}",
        "backend", "saves", "create", "update", "list"
    );
    for backend in ["file", "redis"] {
        // The two ways of saving go in lockstep, one skill at a time in
        // alternating order, each on its own fresh storage: the machine is
        // shared and a disk's sync latency drifts, so both sides must see
        // the same moments. The median of each column is printed.
        let mut sides = Vec::new();
        for versioned in [false, true] {
            let label = format!("{backend}-{versioned}");
            let storage: Arc<dyn Storage> = match backend {
                "file" => Arc::new(FileStorage::open(dir.path().join(&label))?),
                _ => Arc::new(RedisStorage::connect(&server.url(), &label).await?),
            };
            sides.push(Session::builder(storage).build().await?);
        }
        let rows = fill(&sides, skills).await?;
        // Listings of the two libraries alternate in short bursts, first one
        // side then the other, so both see the same neighbours; the median
        // burst is printed.
        let mut lists: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for round in 0..LIST_ROUNDS {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let session = &sides[side];
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
            let column = |c: usize| median(rows[versioned][c].clone());
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
        for session in sides {
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

/// Each save's latency, `[side][create, update]`, with the sides (without
/// history, versioned) saving the same skills in lockstep.
async fn fill(sides: &[Session], skills: usize) -> anyhow::Result<[[Vec<Duration>; 2]; 2]> {
    let source = |i: usize, v: usize| {
        format!(
            "\"\"\"Skill {i}: fetch and summarise item {i}.\"\"\"\n\ndef run(x: int = {v}):\n    return x + {i}\n"
        )
    };
    let mut rows: [[Vec<Duration>; 2]; 2] = Default::default();
    for (column, v) in [(0, 1), (1, 2)] {
        for i in 0..skills {
            let name = format!("skill_{i:04}");
            let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let session = &sides[side];
                let started = Instant::now();
                if side == 1 {
                    session.add_skill(&name, &source(i, v), "").await?;
                } else {
                    session
                        .host()
                        .skills()
                        .put_unversioned(&name, &source(i, v), "")
                        .await?;
                }
                rows[side][column].push(started.elapsed());
            }
        }
    }
    // The first listing parses every source; later ones hit the cache.
    for session in sides {
        session.list_skills().await?;
    }
    Ok(rows)
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
