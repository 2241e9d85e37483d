//! Search figures: quality (Recall@1, Recall@5, MRR) of lexical, dense-only
//! and hybrid ranking on the labelled set; cold model load; first search
//! after start; query latency at 10 / 100 / 1,000 / 10,000 documents;
//! indexing throughput; warm restart of a 1,000-skill library (folder and
//! Redis); resident memory.
//!
//! ```text
//! PY_CODE_MODE_TEST_MODEL_DIR=<model dir> \
//!   cargo run --release -p py-code-mode --features semantic --example search_bench
//! ```
//!
//! Without the variable it loads `bge-small` (from the Hugging Face cache).
//! Starts its own `redis-server` on a free loopback port.
#![expect(
    clippy::print_stdout,
    clippy::expect_used,
    reason = "a benchmark command"
)]

#[path = "../tests/it/search_set.rs"]
mod search_set;

use std::sync::Arc;
use std::time::{Duration, Instant};

use py_code_mode::{
    Embedder, FileStorage, HybridSearcher, LexicalSearcher, RedisStorage, SearchDoc, SearchMode,
    Searcher, Session, SkillRecord, Storage, top_hits,
};
use py_code_mode_embed::{EmbeddingModel, LoadOptions};
use py_code_mode_test_support::RedisServer;
use search_set::{QUERIES, metrics, rank_of};

/// Skills in the library of the start and restart figures.
const LIBRARY: usize = 1000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let spec = std::env::var("PY_CODE_MODE_TEST_MODEL_DIR").unwrap_or_else(|_| "bge-small".into());
    let started = Instant::now();
    let model: Arc<dyn Embedder> =
        Arc::new(EmbeddingModel::load(&spec, &LoadOptions::default()).expect("load model"));
    println!("model `{}`", model.id());
    println!("cold model load: {}", ms(started.elapsed()));
    println!("resident memory after load: {}", rss());

    quality(&model).await;
    latencies(&model).await;
    library_figures(&spec, &model).await;
    println!(
        "resident memory at the end: {} (peak {})",
        rss(),
        peak_rss()
    );
}

/// Recall@1, Recall@5 and MRR of the three rankers on the labelled set.
async fn quality(model: &Arc<dyn Embedder>) {
    let docs = search_set::docs();
    let hybrid = HybridSearcher::new(Arc::clone(model), None);
    let names = |hits: &[py_code_mode::SearchHit]| -> Vec<String> {
        hits.iter().map(|h| docs[h.index].name.clone()).collect()
    };
    let (mut lex, mut dense, mut fused) = (Vec::new(), Vec::new(), Vec::new());
    for (query, expected) in QUERIES {
        let lexical = LexicalSearcher.search(query, &docs, 10).await;
        lex.push(rank_of(&names(&lexical.hits), expected));
        let scores = hybrid.dense_scores(query, &docs).await.expect("dense");
        dense.push(rank_of(&names(&top_hits(&scores, 10)), expected));
        let ranking = hybrid.search(query, &docs, 10).await;
        assert_eq!(ranking.mode, SearchMode::Hybrid);
        fused.push(rank_of(&names(&ranking.hits), expected));
    }
    println!();
    println!(
        "labelled set: {} queries, {} docs",
        QUERIES.len(),
        docs.len()
    );
    for (label, ranks) in [("lexical", &lex), ("dense", &dense), ("hybrid", &fused)] {
        let (r1, r5, mrr) = metrics(ranks);
        println!("  {label:8} Recall@1 {r1:.2}  Recall@5 {r5:.2}  MRR {mrr:.3}");
    }
}

/// `n` distinct documents, variants of the labelled ones.
fn many_docs(n: usize) -> Vec<SearchDoc> {
    (0..n)
        .map(|i| {
            let (name, text) = search_set::DOCS[i % search_set::DOCS.len()];
            SearchDoc {
                name: format!("{name}_{i}"),
                text: format!("{text} (variant {i})"),
            }
        })
        .collect()
}

/// Indexing throughput, then warm query latency by library size.
async fn latencies(model: &Arc<dyn Embedder>) {
    println!();
    let docs = many_docs(1000);
    let searcher = HybridSearcher::new(Arc::clone(model), None);
    let started = Instant::now();
    let stats = searcher.index(&docs).await.expect("index");
    let took = started.elapsed();
    println!(
        "indexing: {} docs in {} = {:.0} docs/s",
        stats.embedded,
        ms(took),
        stats.embedded as f64 / took.as_secs_f64()
    );

    println!("warm hybrid query (embeds the query, scores every doc), median of 20:");
    for n in [10, 100, 1000, 10_000] {
        // Beyond the 1,000 really embedded documents, vectors come from a
        // stand-in: the figure is about scoring n documents, not their meaning.
        let embedder: Arc<dyn Embedder> = if n <= 1000 {
            Arc::clone(model)
        } else {
            let dim = model.embed_query("dimension").expect("embed").len();
            Arc::new(StandInDocs(Arc::clone(model), dim))
        };
        let docs = many_docs(n);
        let searcher = HybridSearcher::new(embedder, None);
        searcher.index(&docs).await.expect("index");
        let mut times = Vec::new();
        for (query, _) in QUERIES.iter().cycle().take(20) {
            let started = Instant::now();
            searcher.search(query, &docs, 5).await;
            times.push(started.elapsed());
        }
        let started = Instant::now();
        for (query, _) in QUERIES.iter().cycle().take(20) {
            LexicalSearcher.search(query, &docs, 5).await;
        }
        println!(
            "  {n:>6} docs: {} (of which lexical {})",
            ms(median(&mut times)),
            ms(started.elapsed() / 20)
        );
    }
}

/// First search after start and warm restart, over a real 1,000-skill library.
async fn library_figures(spec: &str, model: &Arc<dyn Embedder>) {
    println!();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RedisServer::start();
    let file: Arc<dyn Storage> =
        Arc::new(FileStorage::open(dir.path().join("lib")).expect("storage"));
    let redis: Arc<dyn Storage> = Arc::new(
        RedisStorage::connect(&server.url(), "bench")
            .await
            .expect("redis"),
    );
    for (backend, storage) in [("file", file), ("redis", redis)] {
        fill_library(&storage).await;
        // Embed everything once: the cache a restart finds.
        let first = Session::builder(Arc::clone(&storage))
            .searcher(Arc::new(HybridSearcher::new(
                Arc::clone(model),
                Some(Arc::clone(&storage)),
            )))
            .build()
            .await
            .expect("session");
        first.search_skills("port scan", 5).await.expect("search");
        first.close().await;

        // A restart with the model already in memory: list the skills, read
        // every cached vector, rank.
        let mut restarts = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let searcher = Arc::new(HybridSearcher::new(
                Arc::clone(model),
                Some(Arc::clone(&storage)),
            ));
            let session = Session::builder(Arc::clone(&storage))
                .searcher(Arc::clone(&searcher) as Arc<dyn Searcher>)
                .build()
                .await
                .expect("session");
            let hits = session.search_skills("port scan", 5).await.expect("search");
            restarts.push(started.elapsed());
            assert_eq!(searcher.embedded_count(), 0, "a restart embeds nothing");
            assert_eq!(hits[0].mode, SearchMode::Hybrid);
            session.close().await;
        }

        // Start to first hybrid result: load the model, build the session,
        // wait for the model, search (the cache is warm).
        let started = Instant::now();
        let searcher = Arc::new(HybridSearcher::load_model(spec, Some(Arc::clone(&storage))));
        let session = Session::builder(Arc::clone(&storage))
            .searcher(Arc::clone(&searcher) as Arc<dyn Searcher>)
            .build()
            .await
            .expect("session");
        searcher.wait_ready().await.expect("model");
        let hits = session.search_skills("port scan", 5).await.expect("search");
        let first_search = started.elapsed();
        assert_eq!(hits[0].mode, SearchMode::Hybrid);

        let mut warm = Vec::new();
        for (query, _) in QUERIES.iter().take(20) {
            let started = Instant::now();
            session.search_skills(query, 5).await.expect("search");
            warm.push(started.elapsed());
        }
        session.close().await;
        println!(
            "{backend:>5} library of {LIBRARY} skills: restart to first result {} (median of 5, model in memory), \
             start to first hybrid result {} (model load included), session.search_skills {} (median of 20)",
            ms(median(&mut restarts)),
            ms(first_search),
            ms(median(&mut warm)),
        );
    }
}

/// Puts `LIBRARY` skills with distinct descriptions into `storage`.
async fn fill_library(storage: &Arc<dyn Storage>) {
    let now = jiff::Timestamp::now();
    for i in 0..LIBRARY {
        let (name, text) = search_set::DOCS[i % search_set::DOCS.len()];
        storage
            .put_skill(&SkillRecord {
                name: format!("{name}_{i}"),
                source: format!(
                    "\"\"\"{text} (variant {i}).\"\"\"\n\ndef run(target: str, limit: int = 10):\n    return target\n"
                ),
                description: String::new(),
                created_at: now,
                updated_at: now,
                provenance: None,
            })
            .await
            .expect("put skill");
    }
}

/// The real model for queries; cheap deterministic unit vectors for documents.
#[derive(Debug)]
struct StandInDocs(Arc<dyn Embedder>, usize);

impl Embedder for StandInDocs {
    fn id(&self) -> &'static str {
        "stand-in-docs"
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let dim = self.1;
        Ok(texts
            .iter()
            .map(|t| {
                let mut state = t.bytes().fold(0x9e37_79b9_u32, |h, b| {
                    h.rotate_left(5) ^ u32::from(b).wrapping_mul(0x0100_0193)
                });
                (0..dim)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        f32::from(u16::try_from(state >> 16).unwrap_or(0)) / 32768.0 - 1.0
                    })
                    .collect()
            })
            .collect())
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        self.0.embed_query(text)
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A line of `/proc/self/status` (`VmRSS`, `VmHWM`), or `?` elsewhere.
fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "?".into())
}

fn rss() -> String {
    status("VmRSS:")
}

fn peak_rss() -> String {
    status("VmHWM:")
}
