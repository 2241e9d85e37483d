//! Prints search quality (Recall@1, Recall@5, MRR) of lexical, dense-only and
//! hybrid ranking on the labelled set, and latencies of hybrid search.
//!
//! `PY_CODE_MODE_TEST_MODEL_DIR=<model dir> cargo run --release -p py-code-mode --example search_bench`
#![expect(
    clippy::print_stdout,
    clippy::expect_used,
    reason = "a benchmark command"
)]

#[path = "../tests/it/search_set.rs"]
mod search_set;

use std::sync::Arc;
use std::time::Instant;

use py_code_mode::{
    Embedder, FileStorage, HybridSearcher, LexicalSearcher, SearchDoc, Searcher, Storage, top_hits,
};
use py_code_mode_embed::{EmbeddingModel, LoadOptions};
use search_set::{QUERIES, metrics, rank_of};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let spec = std::env::var("PY_CODE_MODE_TEST_MODEL_DIR").unwrap_or_else(|_| "bge-small".into());
    let started = Instant::now();
    let model: Arc<dyn Embedder> =
        Arc::new(EmbeddingModel::load(&spec, &LoadOptions::default()).expect("load model"));
    println!("model `{}` loaded in {:?}", model.id(), started.elapsed());

    let docs = search_set::docs();
    let hybrid = HybridSearcher::new(Arc::clone(&model), None);
    let started = Instant::now();
    hybrid.search("port scan", &docs, 5).await;
    println!(
        "first search (embeds {} docs): {:?}",
        docs.len(),
        started.elapsed()
    );

    let (mut lex, mut dense, mut fused) = (Vec::new(), Vec::new(), Vec::new());
    for (query, expected) in QUERIES {
        let names = |hits: Vec<py_code_mode::SearchHit>| -> Vec<String> {
            hits.iter().map(|h| docs[h.index].name.clone()).collect()
        };
        lex.push(rank_of(
            &names(LexicalSearcher.search(query, &docs, 10).await),
            expected,
        ));
        let scores = hybrid.dense_scores(query, &docs).await.expect("dense");
        dense.push(rank_of(&names(top_hits(&scores, 10)), expected));
        fused.push(rank_of(
            &names(hybrid.search(query, &docs, 10).await),
            expected,
        ));
    }
    println!("{} queries, {} docs", QUERIES.len(), docs.len());
    for (label, ranks) in [("lexical", &lex), ("dense", &dense), ("hybrid", &fused)] {
        let (r1, r5, mrr) = metrics(ranks);
        println!("{label:8} Recall@1 {r1:.2}  Recall@5 {r5:.2}  MRR {mrr:.3}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    for n in [10, 100, 1000] {
        let many: Vec<SearchDoc> = (0..n)
            .map(|i| {
                let (name, text) = search_set::DOCS[i % search_set::DOCS.len()];
                SearchDoc {
                    name: format!("{name}_{i}"),
                    text: format!("{text} (variant {i})"),
                }
            })
            .collect();
        let storage: Arc<dyn Storage> =
            Arc::new(FileStorage::open(dir.path().join(n.to_string())).expect("storage"));
        let searcher = HybridSearcher::new(Arc::clone(&model), Some(Arc::clone(&storage)));
        let started = Instant::now();
        searcher.index(&many).await.expect("index");
        let cold = started.elapsed();
        let started = Instant::now();
        let rounds = 10;
        for (query, _) in QUERIES.iter().take(rounds) {
            searcher.search(query, &many, 5).await;
        }
        let warm = started.elapsed() / u32::try_from(rounds).expect("small");
        let restarted = HybridSearcher::new(Arc::clone(&model), Some(storage));
        let started = Instant::now();
        let stats = restarted.index(&many).await.expect("index");
        let restart = started.elapsed();
        println!(
            "{n:5} docs: embed all {cold:?}, warm query {warm:?}, restart from cache {restart:?} ({} embedded)",
            stats.embedded
        );
    }
}
