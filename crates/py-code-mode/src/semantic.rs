//! Hybrid search: lexical BM25 fused with dense embeddings.
//!
//! [`HybridSearcher`] scores documents twice, by [`LexicalSearcher::scores`]
//! and by cosine similarity of embeddings, and [`fuse`]s them: the cosine
//! leads, shared words add a bounded boost, an exact name ranks first. (On the
//! labelled set, reciprocal rank fusion let weak word matches outvote the
//! model; see docs/search.md.) The embedding model sits behind the small
//! [`Embedder`] trait, so this crate does not depend on candle; with the cargo
//! feature `semantic`, `py_code_mode_embed::EmbeddingModel` implements it.
//!
//! Document vectors are cached by model id and content hash, in memory and in
//! [`Storage::cache_put`], so a warm search embeds only the query and a restart
//! re-embeds nothing. The model may load in the background: until it is ready,
//! or if it failed, searches are lexical and the failure is logged once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::search::{
    FNV_OFFSET, LexicalSearcher, Ranking, SearchDoc, SearchMode, Searcher, content_hash, fnv,
    top_hits,
};
use crate::storage::Storage;

/// Turns texts into vectors. Implementations are blocking and CPU-bound; the
/// searcher calls them on a blocking thread.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// Stable identity of the model; keys the embedding cache.
    fn id(&self) -> &str;
    /// Vectors of documents, one per text, in order.
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
    /// Vector of a search query (models may add a query prompt).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String>;
}

#[cfg(feature = "semantic")]
impl Embedder for py_code_mode_embed::EmbeddingModel {
    fn id(&self) -> &str {
        py_code_mode_embed::EmbeddingModel::id(self)
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        py_code_mode_embed::EmbeddingModel::embed_documents(self, texts).map_err(|e| e.to_string())
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        py_code_mode_embed::EmbeddingModel::embed_query(self, text).map_err(|e| e.to_string())
    }
}

/// The most the lexical ranking adds to a cosine similarity (in [-1, 1]).
const LEXICAL_WEIGHT: f32 = 0.1;
/// The BM25 score at which the lexical boost is half its most.
const LEXICAL_HALF: f32 = 3.0;
/// Added to the fused score of a document whose name is the query: more
/// than any cosine plus boost, so it ranks first.
const EXACT_NAME_BONUS: f32 = 2.0;
/// How long a search waits for a model still loading, by default: a local
/// model loads in a few hundred milliseconds, a download takes longer.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(2);
/// Query vectors remembered (then the memo starts over).
const QUERY_MEMO: usize = 256;
/// Documents embedded per model call.
const EMBED_BATCH: usize = 64;

/// How many documents a call to [`HybridSearcher::index`] embedded and found cached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub embedded: usize,
    pub cached: usize,
}

/// Where a bulk embedding stands: `embedded` of `to_embed` documents done
/// (the cached ones are not counted in either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexProgress {
    pub embedded: usize,
    pub to_embed: usize,
}

type Loaded = Result<Arc<dyn Embedder>, String>;

/// Dense similarity with a bounded lexical boost; exact names first (see [`fuse`]).
pub struct HybridSearcher {
    /// What the model was asked for, for logs.
    model_name: String,
    model: Arc<OnceLock<Loaded>>,
    ready: watch::Receiver<bool>,
    storage: Option<Arc<dyn Storage>>,
    /// Unit vectors by content hash (of the one model this searcher uses).
    memory: Mutex<HashMap<u64, Arc<[f32]>>>,
    /// Unit vectors of recent queries.
    queries: Mutex<HashMap<String, Arc<[f32]>>>,
    patience: Duration,
    gave_up: AtomicBool,
    warned: AtomicBool,
    embedded: AtomicUsize,
}

impl std::fmt::Debug for HybridSearcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridSearcher")
            .field("model", &self.model_name)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl HybridSearcher {
    /// A searcher over a model that is already loaded. `storage` persists
    /// document vectors across restarts (`None`: in memory only).
    pub fn new(embedder: Arc<dyn Embedder>, storage: Option<Arc<dyn Storage>>) -> Self {
        let cell = OnceLock::new();
        let name = embedder.id().to_owned();
        let _ = cell.set(Ok(embedder));
        let (_, ready) = watch::channel(true);
        Self::with_state(name, Arc::new(cell), ready, storage)
    }

    /// A searcher whose model `load` builds on a background thread, started
    /// now. Searches are lexical until it is ready; if it fails, they stay
    /// lexical and the first search logs the error naming `model_name`.
    pub fn loading(
        model_name: impl Into<String>,
        storage: Option<Arc<dyn Storage>>,
        load: impl FnOnce() -> Loaded + Send + 'static,
    ) -> Self {
        let model_name = model_name.into();
        let cell: Arc<OnceLock<Loaded>> = Arc::new(OnceLock::new());
        let (tx, ready) = watch::channel(false);
        let target = Arc::clone(&cell);
        let name = model_name.clone();
        let spawned = std::thread::Builder::new()
            .name("embedding-model".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let loaded = load();
                if loaded.is_ok() {
                    tracing::info!(model = %name, elapsed = ?started.elapsed(), "embedding model ready");
                }
                let _ = target.set(loaded);
                let _ = tx.send(true);
            });
        if let Err(e) = spawned {
            let _ = cell.set(Err(format!("cannot start the loading thread: {e}")));
        }
        Self::with_state(model_name, cell, ready, storage)
    }

    /// Loads a model with `py_code_mode_embed` (an alias such as `bge-small`,
    /// a Hugging Face id, or a directory) in the background. A model missing
    /// from the Hugging Face cache is downloaded when this crate is built with
    /// the feature `download` and `HF_HUB_OFFLINE` is not set.
    #[cfg(feature = "semantic")]
    pub fn load_model(spec: &str, storage: Option<Arc<dyn Storage>>) -> Self {
        let owned = spec.to_owned();
        let mut options = py_code_mode_embed::LoadOptions::online_unless_offline();
        options.allow_download &= cfg!(feature = "download");
        Self::loading(spec, storage, move || {
            py_code_mode_embed::EmbeddingModel::load(&owned, &options)
                .map(|m| Arc::new(m) as Arc<dyn Embedder>)
                .map_err(|e| e.to_string())
        })
    }

    fn with_state(
        model_name: String,
        model: Arc<OnceLock<Loaded>>,
        ready: watch::Receiver<bool>,
        storage: Option<Arc<dyn Storage>>,
    ) -> Self {
        Self {
            model_name,
            model,
            ready,
            storage,
            memory: Mutex::new(HashMap::new()),
            queries: Mutex::new(HashMap::new()),
            patience: DEFAULT_PATIENCE,
            gave_up: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            embedded: AtomicUsize::new(0),
        }
    }

    /// Waits until the model has loaded or failed; `Err` carries the reason.
    pub async fn wait_ready(&self) -> Result<(), String> {
        if self.model.get().is_none() {
            let mut ready = self.ready.clone();
            // The sender is dropped only after it has set the model.
            let _ = ready.wait_for(|r| *r).await;
        }
        match self.model.get() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the loading thread ended without a model".into()),
        }
    }

    /// Documents embedded by this searcher so far (cache misses).
    pub fn embedded_count(&self) -> usize {
        self.embedded.load(Ordering::Relaxed)
    }

    /// Makes sure every document has a cached vector; waits for the model.
    pub async fn index(&self, docs: &[SearchDoc]) -> Result<IndexStats, String> {
        self.index_with_progress(docs, &|_| {}).await
    }

    /// [`index`](Self::index), reporting progress after each batch the model
    /// embeds (for a progress bar).
    pub async fn index_with_progress(
        &self,
        docs: &[SearchDoc],
        progress: &(dyn Fn(IndexProgress) + Sync),
    ) -> Result<IndexStats, String> {
        self.wait_ready().await.map_err(|e| self.describe(&e))?;
        let embedder = self.embedder().ok_or("the model is not loaded")?;
        let (_, stats) = self.doc_vectors(&embedder, docs, progress).await?;
        Ok(stats)
    }

    fn embedder(&self) -> Option<Arc<dyn Embedder>> {
        match self.model.get() {
            Some(Ok(e)) => Some(Arc::clone(e)),
            Some(Err(e)) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!("{}; search stays lexical", self.describe(e));
                }
                None
            }
            None => None,
        }
    }

    fn describe(&self, reason: &str) -> String {
        format!(
            "embedding model `{}` is unavailable: {reason}",
            self.model_name
        )
    }

    /// A unit vector per document, from memory, storage, or the model.
    async fn doc_vectors(
        &self,
        embedder: &Arc<dyn Embedder>,
        docs: &[SearchDoc],
        progress: &(dyn Fn(IndexProgress) + Sync),
    ) -> Result<(Vec<Arc<[f32]>>, IndexStats), String> {
        let model_key = fnv_hex(embedder.id().as_bytes());
        // Memory is keyed by the content hash alone: it lives with one model.
        let hashes: Vec<u64> = docs.iter().map(content_hash).collect();
        let mut found: Vec<Option<Arc<[f32]>>> = {
            let memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            hashes.iter().map(|h| memory.get(h).cloned()).collect()
        };
        let mut pending: Vec<usize> = (0..docs.len()).filter(|&i| found[i].is_none()).collect();
        let mut stats = IndexStats {
            cached: docs.len() - pending.len(),
            ..IndexStats::default()
        };
        let key = |i: usize| cache_key(&model_key, hashes[i]);
        if let Some(storage) = &self.storage
            && !pending.is_empty()
        {
            let keys: Vec<String> = pending.iter().map(|&i| key(i)).collect();
            match storage.cache_get_many(&keys).await {
                Ok(blobs) => {
                    let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
                    let mut missing = Vec::new();
                    for (&i, blob) in pending.iter().zip(blobs) {
                        match blob.as_deref().and_then(decode) {
                            Some(vector) => {
                                memory.insert(hashes[i], Arc::clone(&vector));
                                found[i] = Some(vector);
                                stats.cached += 1;
                            }
                            None => missing.push(i),
                        }
                    }
                    pending = missing;
                }
                Err(e) => tracing::debug!(%e, "cannot read cached embeddings"),
            }
        }
        if !pending.is_empty() {
            progress(IndexProgress {
                embedded: 0,
                to_embed: pending.len(),
            });
        }
        for chunk in pending.chunks(EMBED_BATCH) {
            let texts: Vec<String> = chunk.iter().map(|&i| doc_text(&docs[i])).collect();
            let model = Arc::clone(embedder);
            let vectors = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                model.embed_documents(&refs)
            })
            .await
            .map_err(|e| format!("the embedding task failed: {e}"))??;
            self.embedded.fetch_add(chunk.len(), Ordering::Relaxed);
            stats.embedded += chunk.len();
            for (&i, vector) in chunk.iter().zip(vectors) {
                let vector = unit(vector);
                if let Some(storage) = &self.storage
                    && let Err(e) = storage.cache_put(&key(i), &encode(&vector)).await
                {
                    tracing::debug!(%e, "cannot persist an embedding");
                }
                self.memory
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(hashes[i], Arc::clone(&vector));
                found[i] = Some(vector);
            }
            progress(IndexProgress {
                embedded: stats.embedded,
                to_embed: pending.len(),
            });
        }
        let vectors = found.into_iter().map(Option::unwrap_or_default).collect();
        Ok((vectors, stats))
    }

    /// Deletes this model's cached vectors of documents that are not in
    /// `docs` (tools and skills since edited or removed); returns how many.
    /// Vectors of other models stay: switching back costs nothing.
    pub async fn prune(&self, docs: &[SearchDoc]) -> Result<usize, String> {
        let Some(storage) = &self.storage else {
            return Ok(0);
        };
        self.wait_ready().await.map_err(|e| self.describe(&e))?;
        let embedder = self.embedder().ok_or("the model is not loaded")?;
        let model_key = fnv_hex(embedder.id().as_bytes());
        let live: std::collections::HashSet<String> = docs
            .iter()
            .map(|d| cache_key(&model_key, content_hash(d)))
            .collect();
        let stored = storage
            .cache_keys(&cache_key_prefix(&model_key))
            .await
            .map_err(|e| e.to_string())?;
        let mut removed = 0;
        for key in stored.iter().filter(|k| !live.contains(*k)) {
            if storage.cache_delete(key).await.map_err(|e| e.to_string())? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Cosine similarity of the query with each document, or `None` when the
    /// model is not usable (then the caller ranks lexically).
    pub async fn dense_scores(&self, query: &str, docs: &[SearchDoc]) -> Option<Vec<f32>> {
        let embedder = self.embedder()?;
        let (query_vector, doc_vectors) = tokio::join!(
            self.query_vector(&embedder, query),
            self.doc_vectors(&embedder, docs, &|_| {})
        );
        match query_vector.and_then(|q| doc_vectors.map(|(vectors, _)| (q, vectors))) {
            Ok((q, vectors)) => Some(vectors.iter().map(|v| dot(&q, v)).collect()),
            Err(e) => {
                tracing::warn!(model = %self.model_name, "embedding failed, lexical results: {e}");
                None
            }
        }
    }

    /// The unit vector of a query, remembered: agents repeat searches, and
    /// [`Searcher::prepare`] computes it ahead of the search.
    async fn query_vector(
        &self,
        embedder: &Arc<dyn Embedder>,
        query: &str,
    ) -> Result<Arc<[f32]>, String> {
        if let Some(hit) = self
            .queries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(query)
        {
            return Ok(Arc::clone(hit));
        }
        let model = Arc::clone(embedder);
        let owned = query.to_owned();
        let vector = tokio::task::spawn_blocking(move || model.embed_query(&owned))
            .await
            .map_err(|e| format!("the embedding task failed: {e}"))??;
        let vector = unit(vector);
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        if queries.len() >= QUERY_MEMO {
            queries.clear();
        }
        queries.insert(query.to_owned(), Arc::clone(&vector));
        Ok(vector)
    }

    /// How long a search waits for a model that is still loading before it
    /// ranks lexically (default [`DEFAULT_PATIENCE`]). A search that gives up
    /// makes later ones not wait at all until the model is ready.
    #[must_use]
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Waits, once, up to the patience for a loading model.
    async fn await_model(&self) {
        if self.model.get().is_some() || self.gave_up.load(Ordering::Relaxed) {
            return;
        }
        if tokio::time::timeout(self.patience, self.wait_ready())
            .await
            .is_err()
            && !self.gave_up.swap(true, Ordering::Relaxed)
        {
            tracing::info!(
                model = %self.model_name,
                "the embedding model is still loading; lexical results until it is ready"
            );
        }
    }
}

#[async_trait]
impl Searcher for HybridSearcher {
    async fn search(&self, query: &str, docs: &[SearchDoc], limit: usize) -> Ranking {
        self.await_model().await;
        let lexical = LexicalSearcher::scores(query, docs);
        match self.dense_scores(query, docs).await {
            Some(dense) => Ranking {
                hits: top_hits(&fuse(query, docs, &lexical, &dense), limit),
                mode: SearchMode::Hybrid,
            },
            None => Ranking {
                hits: top_hits(&lexical, limit),
                mode: SearchMode::Lexical,
            },
        }
    }

    async fn wait_ready(&self) {
        let _ = HybridSearcher::wait_ready(self).await;
    }

    async fn prepare(&self, query: &str) {
        self.await_model().await;
        if let Some(embedder) = self.embedder() {
            let _ = self.query_vector(&embedder, query).await;
        }
    }

    fn mode(&self) -> SearchMode {
        match self.model.get() {
            Some(Ok(_)) => SearchMode::Hybrid,
            _ => SearchMode::Lexical,
        }
    }
}

/// Fuses the rankings: the cosine similarity of each document, plus a
/// bounded lexical boost `LEXICAL_WEIGHT * bm25 / (bm25 + LEXICAL_HALF)`
/// (a document sharing words with the query moves ahead of one the model
/// finds just as close), plus [`EXACT_NAME_BONUS`] for a document whose name
/// is the query, which therefore ranks first.
pub fn fuse(query: &str, docs: &[SearchDoc], lexical: &[f32], dense: &[f32]) -> Vec<f32> {
    let name = query.trim().to_lowercase();
    docs.iter()
        .zip(lexical.iter().zip(dense))
        .map(|(doc, (&bm25, &cosine))| {
            // BM25 carries its own exact-name bonus; only the words count here.
            let exact = doc.name.to_lowercase() == name;
            let words = if exact { 0.0 } else { bm25.max(0.0) };
            let mut score = cosine + LEXICAL_WEIGHT * words / (words + LEXICAL_HALF);
            if exact {
                score += EXACT_NAME_BONUS;
            }
            score
        })
        .collect()
}

/// Dot product: the cosine similarity of unit vectors.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `vector` scaled to length 1 (a zero vector stays zero).
fn unit(mut vector: Vec<f32>) -> Arc<[f32]> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut vector {
            *x /= norm;
        }
    }
    vector.into()
}

/// What gets embedded for a document: its name, then its text.
pub fn doc_text(doc: &SearchDoc) -> String {
    format!("{}\n{}", doc.name, doc.text)
}

/// The cache key of a document's vector: `emb-<model hash>-<content hash>`.
fn cache_key(model_key: &str, content: u64) -> String {
    format!("{}{content:016x}", cache_key_prefix(model_key))
}

fn cache_key_prefix(model_key: &str) -> String {
    format!("emb-{model_key}-")
}

/// 64-bit FNV-1a as 16 hex digits: stable across runs and releases.
fn fnv_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv(FNV_OFFSET, bytes))
}

fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode(bytes: &[u8]) -> Option<Arc<[f32]>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let vector = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(unit(vector))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn content_hash_is_the_hash_of_the_embedded_text() {
        let doc = SearchDoc {
            name: "nmap".into(),
            text: "Network scanner".into(),
        };
        assert_eq!(
            format!("{:016x}", content_hash(&doc)),
            fnv_hex(doc_text(&doc).as_bytes())
        );
        assert_eq!(fnv_hex(b""), "cbf29ce484222325");
        assert_eq!(fnv_hex(b"a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = [0.6_f32, 0.0, -0.8];
        assert_eq!(decode(&encode(&v)).as_deref(), Some(&v[..]));
        assert_eq!(decode(&[1, 2, 3]), None);
    }

    #[test]
    fn exact_name_wins_the_fusion() {
        let docs = [
            SearchDoc {
                name: "fetch".into(),
                text: "download".into(),
            },
            SearchDoc {
                name: "curl".into(),
                text: "fetch fetch fetch".into(),
            },
        ];
        let fused = fuse("fetch", &docs, &[1.0, 5.0], &[0.1, 0.9]);
        assert!(fused[0] > fused[1]);
    }
}
