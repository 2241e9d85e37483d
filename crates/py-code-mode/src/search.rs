//! Search over tools and skills.
//!
//! A [`Searcher`] ranks a set of documents for a query. The host builds the
//! documents from the current tools and skills on every search, so a searcher
//! never holds stale entries; one that needs derived data (embeddings) caches it
//! by content, so unchanged documents cost nothing. [`LexicalSearcher`] is the
//! always-available ranker; dense and hybrid searchers implement the same trait.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use async_trait::async_trait;
use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};

/// One searchable thing: a tool or a skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDoc {
    /// The tool or skill name; an exact match of the query wins.
    pub name: String,
    /// Everything worth matching: description, parameters, tags.
    pub text: String,
}

/// A ranked document, by index into the slice given to [`Searcher::search`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub index: usize,
    pub score: f32,
}

/// How a list of results was ranked; reported beside every result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 over words only: no embedding model (yet).
    Lexical,
    /// BM25 and embedding similarity fused.
    Hybrid,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lexical => "lexical",
            Self::Hybrid => "hybrid",
        }
    }
}

impl std::fmt::Display for SearchMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one search: hits, best first, and how they were ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub hits: Vec<SearchHit>,
    pub mode: SearchMode,
}

/// Ranks documents for a query.
#[async_trait]
pub trait Searcher: Send + Sync + std::fmt::Debug {
    /// Best first, at most `limit`, only documents with some relevance, with
    /// the mode that actually ranked them (a model may finish loading while
    /// a search runs; the mode belongs to the search, not to the searcher).
    async fn search(&self, query: &str, docs: &[SearchDoc], limit: usize) -> Ranking;

    /// How a search started now would rank.
    fn mode(&self) -> SearchMode;

    /// Waits until the searcher ranks as well as it can (a model loading in
    /// the background has loaded or failed). One-shot callers use this; a
    /// server does not wait. Default: ready at once.
    async fn wait_ready(&self) {}

    /// Does the query's own work ahead of [`search`](Self::search) (a hybrid
    /// searcher embeds it), so a caller can overlap it with fetching the
    /// documents. Default: nothing.
    async fn prepare(&self, query: &str) {
        let _ = query;
    }
}

/// BM25 over words of names and texts, with exact-name matches first.
#[derive(Debug, Default, Clone)]
pub struct LexicalSearcher;

/// BM25 term-frequency saturation and length normalisation (the usual values).
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Bonus that puts a document whose name is the query above every text match.
const EXACT_NAME_BONUS: f32 = 1000.0;

/// Splits text into lowercase words, breaking `snake_case`, `kebab-case` and
/// `camelCase` apart so `brave_search` matches "search".
pub fn tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = c.is_lowercase() || c.is_numeric();
            current.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// English function words: they match everything and say nothing.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
    "how", "i", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "so", "some",
    "that", "the", "this", "to", "what", "when", "where", "which", "who", "will", "with", "you",
    "your",
];

/// The BM25 terms of `text`: [`tokenize`]d, stop words dropped, each word
/// reduced to its stem (Snowball English), so "ports" matches "port" and
/// "scanning" matches "scan".
pub fn terms(text: &str) -> Vec<String> {
    thread_local! {
        static STEMMER: Stemmer = Stemmer::create(Algorithm::English);
    }
    STEMMER.with(|stemmer| {
        tokenize(text)
            .into_iter()
            .filter(|w| STOP_WORDS.binary_search(&w.as_str()).is_err())
            .map(|w| stemmer.stem(&w).into_owned())
            .collect()
    })
}

/// The BM25 view of one document: its terms with counts (the name's counted
/// twice: it is the most telling text there is), sorted, and its length.
#[derive(Debug)]
struct DocTerms {
    counts: Vec<(Box<str>, u32)>,
    len: f32,
}

impl DocTerms {
    fn new(doc: &SearchDoc) -> Self {
        let name = terms(&doc.name);
        let mut all: Vec<&str> = name.iter().chain(&name).map(String::as_str).collect();
        let text = terms(&doc.text);
        all.extend(text.iter().map(String::as_str));
        all.sort_unstable();
        let len = all.len() as f32;
        let mut counts: Vec<(Box<str>, u32)> = Vec::new();
        for word in all {
            match counts.last_mut() {
                Some((last, n)) if **last == *word => *n += 1,
                _ => counts.push((word.into(), 1)),
            }
        }
        Self { counts, len }
    }

    fn count(&self, term: &str) -> u32 {
        self.counts
            .binary_search_by(|(w, _)| (**w).cmp(term))
            .map_or(0, |i| self.counts[i].1)
    }
}

/// Documents' terms by content hash, shared by every lexical ranking in the
/// process: stemming is the costly part of BM25 and documents rarely change.
static DOC_TERMS: LazyLock<Mutex<HashMap<u64, Arc<DocTerms>>>> = LazyLock::new(Mutex::default);
/// Above this many entries the memo starts over (about 10 MB of terms).
const DOC_TERMS_CAP: usize = 50_000;

fn doc_terms(docs: &[SearchDoc]) -> Vec<Arc<DocTerms>> {
    let hashes: Vec<u64> = docs.iter().map(content_hash).collect();
    let mut memo = DOC_TERMS.lock().unwrap_or_else(PoisonError::into_inner);
    if memo.len() + docs.len() > DOC_TERMS_CAP {
        memo.clear();
    }
    docs.iter()
        .zip(hashes)
        .map(|(doc, hash)| {
            Arc::clone(
                memo.entry(hash)
                    .or_insert_with(|| Arc::new(DocTerms::new(doc))),
            )
        })
        .collect()
}

impl LexicalSearcher {
    /// Scores every document (0 for no match); used by hybrid rankers too.
    pub fn scores(query: &str, docs: &[SearchDoc]) -> Vec<f32> {
        let mut query_terms = terms(query);
        query_terms.sort_unstable();
        query_terms.dedup();
        let query_name = query.trim().to_lowercase();
        let docs_terms = doc_terms(docs);
        let n = docs.len().max(1) as f32;
        let avg_len = (docs_terms.iter().map(|d| d.len).sum::<f32>() / n).max(1.0);
        // Per query term: its count in each document, and its idf.
        let counts: Vec<Vec<u32>> = query_terms
            .iter()
            .map(|t| docs_terms.iter().map(|d| d.count(t)).collect())
            .collect();
        let idf: Vec<f32> = counts
            .iter()
            .map(|c| {
                let df = c.iter().filter(|&&tf| tf > 0).count() as f32;
                ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
            })
            .collect();
        docs.iter()
            .zip(&docs_terms)
            .enumerate()
            .map(|(i, (doc, terms))| {
                let mut score: f32 = counts
                    .iter()
                    .zip(&idf)
                    .filter(|(c, _)| c[i] > 0)
                    .map(|(c, idf)| {
                        let tf = c[i] as f32;
                        idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * terms.len / avg_len))
                    })
                    .sum();
                if doc.name.to_lowercase() == query_name {
                    score += EXACT_NAME_BONUS;
                }
                score
            })
            .collect()
    }
}

/// 64-bit FNV-1a of a document's name, a newline and its text: the same
/// content hashes the same in every process and release.
pub(crate) fn content_hash(doc: &SearchDoc) -> u64 {
    let hash = fnv(FNV_OFFSET, doc.name.as_bytes());
    fnv(fnv(hash, b"\n"), doc.text.as_bytes())
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

pub(crate) fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Indices of the `limit` best positive scores, best first (ties by index).
pub fn top_hits(scores: &[f32], limit: usize) -> Vec<SearchHit> {
    let mut hits: Vec<SearchHit> = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > 0.0)
        .map(|(index, &score)| SearchHit { index, score })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    hits.truncate(limit);
    hits
}

#[async_trait]
impl Searcher for LexicalSearcher {
    async fn search(&self, query: &str, docs: &[SearchDoc], limit: usize) -> Ranking {
        Ranking {
            hits: top_hits(&Self::scores(query, docs), limit),
            mode: SearchMode::Lexical,
        }
    }

    fn mode(&self) -> SearchMode {
        SearchMode::Lexical
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn doc(name: &str, text: &str) -> SearchDoc {
        SearchDoc {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn tokenizer_splits_identifiers() {
        assert_eq!(
            tokenize("brave_search fetchURL my-tool HTTPServer v2"),
            [
                "brave",
                "search",
                "fetch",
                "url",
                "my",
                "tool",
                "httpserver",
                "v2"
            ]
        );
    }

    #[test]
    fn terms_drop_stop_words_and_stem() {
        assert_eq!(
            terms("Scanning the open ports of a host"),
            ["scan", "open", "port", "host"]
        );
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOP_WORDS, "binary search needs a sorted list");
    }

    #[test]
    fn ranks_by_words_and_exact_name_first() {
        let docs = [
            doc(
                "nmap",
                "Network scanner for port scanning and service detection",
            ),
            doc("fetch", "Fetch URL content as clean markdown"),
            doc("brave_search", "Web search via Brave Search API"),
            doc("scan", "unrelated"),
        ];
        let names = |q: &str| -> Vec<&str> {
            top_hits(&LexicalSearcher::scores(q, &docs), 10)
                .iter()
                .map(|h| docs[h.index].name.as_str())
                .collect()
        };
        assert_eq!(names("web search"), ["brave_search"]);
        assert_eq!(names("port scanning"), ["nmap", "scan"]);
        assert_eq!(names("the ports"), ["nmap"], "stop words match nothing");
        assert_eq!(
            names("scan"),
            ["scan", "nmap"],
            "the name first, then its stem"
        );
        assert_eq!(names("fetch"), ["fetch"]);
        assert!(names("cooking recipes").is_empty());
    }
}
