//! Hybrid search against the real all-MiniLM-L6-v2 model
//! (`PY_CODE_MODE_TEST_MODEL_DIR`, set by `scripts/test`). These tests fail,
//! rather than skip, when the model is not provided.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use py_code_mode::{
    Embedder, FileStorage, HybridSearcher, LexicalSearcher, SearchDoc, SearchMode, Searcher,
    Storage,
};
use py_code_mode_embed::{EmbeddingModel, LoadOptions};

use crate::search_set::{self, QUERIES, metrics, rank_of};

const MODEL_DIR_VAR: &str = "PY_CODE_MODE_TEST_MODEL_DIR";

fn model() -> Arc<EmbeddingModel> {
    static MODEL: OnceLock<Arc<EmbeddingModel>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| {
        let dir = std::env::var(MODEL_DIR_VAR).unwrap_or_else(|_| {
            panic!(
                "`{MODEL_DIR_VAR}` is not set; run `scripts/test`, or\n\
                 hint: export {MODEL_DIR_VAR}=$(scripts/find-test-model.sh .venv/bin/python)"
            )
        });
        Arc::new(EmbeddingModel::load(&dir, &LoadOptions::default()).expect("load test model"))
    }))
}

/// Counts the documents it embeds.
#[derive(Debug)]
struct Counting {
    inner: Arc<EmbeddingModel>,
    docs: AtomicUsize,
}

impl Embedder for Counting {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.docs.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed_documents(texts).map_err(|e| e.to_string())
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        self.inner.embed_query(text).map_err(|e| e.to_string())
    }
}

fn counting() -> Arc<Counting> {
    Arc::new(Counting {
        inner: model(),
        docs: AtomicUsize::new(0),
    })
}

async fn names(searcher: &dyn Searcher, query: &str, docs: &[SearchDoc]) -> Vec<String> {
    searcher
        .search(query, docs, 10)
        .await
        .hits
        .iter()
        .map(|h| docs[h.index].name.clone())
        .collect()
}

async fn recall_at_1(searcher: &dyn Searcher) -> f64 {
    let docs = search_set::docs();
    let mut ranks = Vec::new();
    for (query, expected) in QUERIES {
        ranks.push(rank_of(&names(searcher, query, &docs).await, expected));
    }
    metrics(&ranks).0
}

#[tokio::test]
async fn hybrid_finds_paraphrases_lexical_misses() {
    let hybrid = HybridSearcher::new(counting(), None);
    assert_eq!(hybrid.mode(), SearchMode::Hybrid);
    let lexical = recall_at_1(&LexicalSearcher).await;
    let fused = recall_at_1(&hybrid).await;
    assert!(
        fused >= lexical && fused >= 0.8,
        "hybrid Recall@1 {fused} vs lexical {lexical}"
    );
    let docs = search_set::docs();
    assert_eq!(names(&hybrid, "port scan", &docs).await[0], "nmap");
    assert_eq!(
        names(&hybrid, "zip up a folder", &docs).await[0],
        "compress"
    );
    // Paraphrases that share no word with their document: hybrid ranks the
    // document first, lexical ranking does not.
    for (paraphrase, expected) in [
        ("mail someone", "send_email"),
        ("will it rain tomorrow", "weather"),
        ("make a photo smaller", "resize_image"),
    ] {
        assert_eq!(
            names(&hybrid, paraphrase, &docs)
                .await
                .first()
                .map(String::as_str),
            Some(expected),
            "{paraphrase}"
        );
        let lexical_hits = names(&LexicalSearcher, paraphrase, &docs).await;
        assert_ne!(
            lexical_hits.first().map(String::as_str),
            Some(expected),
            "lexical ranking alone finds `{paraphrase}`: {lexical_hits:?}"
        );
    }
    assert!(
        fused > lexical,
        "hybrid Recall@1 {fused} must beat lexical {lexical}"
    );
}

#[tokio::test]
async fn exact_name_ranks_first() {
    let hybrid = HybridSearcher::new(counting(), None);
    let docs = search_set::docs();
    for (name, _) in search_set::DOCS {
        assert_eq!(&names(&hybrid, name, &docs).await[0], name);
    }
}

#[tokio::test]
async fn cache_survives_a_restart_and_embeds_only_new_docs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(dir.path()).expect("storage"));
    let mut docs = search_set::docs();

    let first = counting();
    let searcher = HybridSearcher::new(
        Arc::clone(&first) as Arc<dyn Embedder>,
        Some(Arc::clone(&storage)),
    );
    searcher.search("port scan", &docs, 5).await;
    assert_eq!(first.docs.load(Ordering::SeqCst), docs.len());
    searcher.search("send mail", &docs, 5).await;
    assert_eq!(
        first.docs.load(Ordering::SeqCst),
        docs.len(),
        "a warm search embeds no document"
    );

    // A restart: a new searcher over the same storage.
    let second = counting();
    let restarted = HybridSearcher::new(
        Arc::clone(&second) as Arc<dyn Embedder>,
        Some(Arc::clone(&storage)),
    );
    restarted.search("port scan", &docs, 5).await;
    assert_eq!(
        second.docs.load(Ordering::SeqCst),
        0,
        "a restart re-embeds nothing"
    );

    docs.push(SearchDoc {
        name: "ping".into(),
        text: "Check that a host answers ICMP echo".into(),
    });
    let stats = restarted.index(&docs).await.expect("index");
    assert_eq!((stats.embedded, stats.cached), (1, docs.len() - 1));
    assert_eq!(second.docs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_a_model_search_is_lexical() {
    let searcher = HybridSearcher::loading("no-such-model", None, || {
        Err("model directory `/nowhere` does not exist".into())
    });
    assert_eq!(
        searcher.wait_ready().await,
        Err("model directory `/nowhere` does not exist".into())
    );
    assert_eq!(searcher.mode(), SearchMode::Lexical);
    let docs = search_set::docs();
    assert_eq!(
        searcher.search("port scan", &docs, 5).await.mode,
        SearchMode::Lexical
    );
    assert_eq!(
        names(&searcher, "port scan", &docs).await,
        names(&LexicalSearcher, "port scan", &docs).await
    );
}

#[tokio::test]
async fn each_result_list_reports_the_mode_that_ranked_it() {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let searcher = HybridSearcher::loading("test-model", None, move || {
        let _ = wait.recv();
        Ok(counting() as Arc<dyn Embedder>)
    })
    .with_patience(Duration::ZERO);
    let docs = search_set::docs();
    let before = searcher.search("discover hosts", &docs, 5).await;
    assert_eq!(
        before.mode,
        SearchMode::Lexical,
        "the model is still loading"
    );
    assert_eq!(
        docs[before.hits[0].index].name, "nmap",
        "lexical results while loading"
    );

    release.send(()).expect("loader waits");
    searcher.wait_ready().await.expect("model loads");
    let after = searcher
        .search("which services is a machine exposing", &docs, 5)
        .await;
    assert_eq!(after.mode, SearchMode::Hybrid);
    assert_eq!(docs[after.hits[0].index].name, "nmap");
}

#[tokio::test]
async fn a_search_waits_a_little_for_a_loading_model() {
    let searcher = HybridSearcher::loading("test-model", None, || {
        std::thread::sleep(Duration::from_millis(300));
        Ok(counting() as Arc<dyn Embedder>)
    });
    let docs = search_set::docs();
    let ranking = searcher
        .search("which services is a machine exposing", &docs, 5)
        .await;
    assert_eq!(ranking.mode, SearchMode::Hybrid, "waited for the model");
    assert_eq!(docs[ranking.hits[0].index].name, "nmap");
}

#[cfg(feature = "semantic")]
#[tokio::test]
async fn the_session_builder_takes_a_model_by_name() {
    let library = py_code_mode_test_support::TempLibrary::new().with_skill(
        "port_scan",
        "\"\"\"Discover hosts, open ports and running services.\"\"\"\n\ndef run(target: str):\n    return target\n",
    );
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(library.path()).expect("storage"));
    let model = std::env::var(MODEL_DIR_VAR).expect("test model");
    let session = py_code_mode::Session::builder(storage)
        .embedding_model(&model)
        .build()
        .await
        .expect("session");
    let hits = session
        .search_skills("which services is a machine exposing", 1)
        .await
        .expect("search");
    assert_eq!(hits[0].item.name, "port_scan");
    assert_eq!(
        hits[0].mode,
        SearchMode::Hybrid,
        "the first search waits for the model"
    );
    assert!(
        std::fs::read_dir(library.path().join(".cache"))
            .expect("cache folder")
            .count()
            > 0,
        "vectors cached in the session's storage"
    );
    session.close().await;
}
