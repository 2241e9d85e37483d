//! Hybrid search: lexical BM25 fused with dense embeddings.
//!
//! [`HybridSearcher`] ranks documents twice, by [`LexicalSearcher::scores`] and
//! by cosine similarity of embeddings, and fuses the two rankings by reciprocal
//! rank fusion. The embedding model sits behind the small [`Embedder`] trait,
//! so this crate does not depend on candle; with the cargo feature `semantic`,
//! `py_code_mode_embed::EmbeddingModel` implements it.
//!
//! Document vectors are cached by model id and content hash, in memory and in
//! [`Storage::cache_put`], so a warm search embeds only the query and a restart
//! re-embeds nothing. The model may load in the background: until it is ready,
//! or if it failed, searches are lexical and the failure is logged once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::search::{LexicalSearcher, SearchDoc, SearchHit, Searcher, top_hits};
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

/// The reciprocal rank fusion constant (the usual value).
const RRF_K: f32 = 60.0;
/// Added to the fused score of a document whose name is the query: it ranks first.
const EXACT_NAME_BONUS: f32 = 1000.0;
/// Documents embedded per model call.
const EMBED_BATCH: usize = 64;

/// How many documents a call to [`HybridSearcher::index`] embedded and found cached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub embedded: usize,
    pub cached: usize,
}

type Loaded = Result<Arc<dyn Embedder>, String>;

/// Lexical and dense rankings fused by reciprocal rank fusion (k = 60).
pub struct HybridSearcher {
    /// What the model was asked for, for logs.
    model_name: String,
    model: Arc<OnceLock<Loaded>>,
    ready: watch::Receiver<bool>,
    storage: Option<Arc<dyn Storage>>,
    memory: Mutex<HashMap<String, Arc<[f32]>>>,
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
    /// a Hugging Face id in the local cache, or a directory) in the background.
    #[cfg(feature = "semantic")]
    pub fn load_model(spec: &str, storage: Option<Arc<dyn Storage>>) -> Self {
        let owned = spec.to_owned();
        Self::loading(spec, storage, move || {
            py_code_mode_embed::EmbeddingModel::load(
                &owned,
                &py_code_mode_embed::LoadOptions::default(),
            )
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
        self.wait_ready().await.map_err(|e| self.describe(&e))?;
        let embedder = self.embedder().ok_or("the model is not loaded")?;
        let (_, stats) = self.doc_vectors(&embedder, docs).await?;
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

    /// A vector per document, from memory, storage, or the model.
    async fn doc_vectors(
        &self,
        embedder: &Arc<dyn Embedder>,
        docs: &[SearchDoc],
    ) -> Result<(Vec<Arc<[f32]>>, IndexStats), String> {
        let model_key = fnv_hex(embedder.id().as_bytes());
        let keys: Vec<String> = docs
            .iter()
            .map(|d| format!("emb-{model_key}-{}", fnv_hex(doc_text(d).as_bytes())))
            .collect();
        let mut found: Vec<Option<Arc<[f32]>>> = {
            let memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            keys.iter().map(|k| memory.get(k).cloned()).collect()
        };
        let mut stats = IndexStats::default();
        let mut missing = Vec::new();
        for (i, slot) in found.iter_mut().enumerate() {
            if slot.is_some() {
                stats.cached += 1;
                continue;
            }
            if let Some(storage) = &self.storage
                && let Ok(Some(bytes)) = storage.cache_get(&keys[i]).await
                && let Some(vector) = decode(&bytes)
            {
                self.remember(&keys[i], &vector);
                *slot = Some(vector);
                stats.cached += 1;
                continue;
            }
            missing.push(i);
        }
        for chunk in missing.chunks(EMBED_BATCH) {
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
                let vector: Arc<[f32]> = vector.into();
                if let Some(storage) = &self.storage
                    && let Err(e) = storage.cache_put(&keys[i], &encode(&vector)).await
                {
                    tracing::debug!(%e, "cannot persist an embedding");
                }
                self.remember(&keys[i], &vector);
                found[i] = Some(vector);
            }
        }
        let vectors = found.into_iter().map(Option::unwrap_or_default).collect();
        Ok((vectors, stats))
    }

    fn remember(&self, key: &str, vector: &Arc<[f32]>) {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), Arc::clone(vector));
    }

    /// Cosine similarity of the query with each document, or `None` when the
    /// model is not usable (then the caller ranks lexically).
    pub async fn dense_scores(&self, query: &str, docs: &[SearchDoc]) -> Option<Vec<f32>> {
        let embedder = self.embedder()?;
        let model = Arc::clone(&embedder);
        let owned = query.to_owned();
        let query_vector = tokio::task::spawn_blocking(move || model.embed_query(&owned));
        let result = match self.doc_vectors(&embedder, docs).await {
            Ok((vectors, _)) => match query_vector.await {
                Ok(Ok(q)) => Ok(vectors.iter().map(|v| cosine(&q, v)).collect()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(format!("the embedding task failed: {e}")),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(scores) => Some(scores),
            Err(e) => {
                tracing::warn!(model = %self.model_name, "embedding failed, lexical results: {e}");
                None
            }
        }
    }
}

#[async_trait]
impl Searcher for HybridSearcher {
    async fn search(&self, query: &str, docs: &[SearchDoc], limit: usize) -> Vec<SearchHit> {
        let lexical = LexicalSearcher::scores(query, docs);
        let Some(dense) = self.dense_scores(query, docs).await else {
            return top_hits(&lexical, limit);
        };
        top_hits(&fuse(query, docs, &lexical, &dense), limit)
    }

    async fn wait_ready(&self) {
        let _ = HybridSearcher::wait_ready(self).await;
    }

    fn mode(&self) -> &'static str {
        match self.model.get() {
            Some(Ok(_)) => "hybrid",
            _ => "lexical",
        }
    }
}

/// Reciprocal rank fusion of lexical (positive scores only) and dense
/// rankings, plus a bonus that keeps an exact name match first.
pub fn fuse(query: &str, docs: &[SearchDoc], lexical: &[f32], dense: &[f32]) -> Vec<f32> {
    let mut fused = vec![0.0_f32; docs.len()];
    for (rank, i) in ranking(lexical, true).into_iter().enumerate() {
        fused[i] += 1.0 / (RRF_K + rank as f32 + 1.0);
    }
    for (rank, i) in ranking(dense, false).into_iter().enumerate() {
        fused[i] += 1.0 / (RRF_K + rank as f32 + 1.0);
    }
    let name = query.trim().to_lowercase();
    for (score, doc) in fused.iter_mut().zip(docs) {
        if doc.name.to_lowercase() == name {
            *score += EXACT_NAME_BONUS;
        }
    }
    fused
}

/// Indices by descending score (ties by index); only positive ones if asked.
fn ranking(scores: &[f32], positive_only: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| !positive_only || scores[i] > 0.0)
        .collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// What gets embedded for a document: its name, then its text.
pub fn doc_text(doc: &SearchDoc) -> String {
    format!("{}\n{}", doc.name, doc.text)
}

/// 64-bit FNV-1a as 16 hex digits: stable across runs and releases.
fn fnv_hex(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode(bytes: &[u8]) -> Option<Arc<[f32]>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = [0.5_f32, -1.25, 3.0];
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
