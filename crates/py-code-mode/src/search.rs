//! Search over tools and skills.
//!
//! A [`Searcher`] ranks a set of documents for a query. The host builds the
//! documents from the current tools and skills on every search, so a searcher
//! never holds stale entries; one that needs derived data (embeddings) caches it
//! by content, so unchanged documents cost nothing. [`LexicalSearcher`] is the
//! always-available ranker; dense and hybrid searchers implement the same trait.

use std::collections::HashMap;

use async_trait::async_trait;
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

/// Ranks documents for a query.
#[async_trait]
pub trait Searcher: Send + Sync + std::fmt::Debug {
    /// Best first, at most `limit`, only documents with some relevance.
    async fn search(&self, query: &str, docs: &[SearchDoc], limit: usize) -> Vec<SearchHit>;

    /// `lexical`, `semantic` or `hybrid`, reported with results.
    fn mode(&self) -> &'static str;

    /// Waits until the searcher ranks as well as it can (a model loading in
    /// the background has loaded or failed). One-shot callers use this; a
    /// server does not wait. Default: ready at once.
    async fn wait_ready(&self) {}
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

impl LexicalSearcher {
    /// Scores every document (0 for no match); used by hybrid rankers too.
    pub fn scores(query: &str, docs: &[SearchDoc]) -> Vec<f32> {
        let query_terms = tokenize(query);
        let query_name = query.trim().to_lowercase();
        let tokenized: Vec<Vec<String>> = docs
            .iter()
            .map(|d| {
                let mut words = tokenize(&d.name);
                // The name counts twice: it is the most telling text there is.
                words.extend(tokenize(&d.name));
                words.extend(tokenize(&d.text));
                words
            })
            .collect();
        let n = docs.len().max(1) as f32;
        let avg_len = tokenized.iter().map(Vec::len).sum::<usize>() as f32 / n;
        let mut doc_freq: HashMap<&str, usize> = HashMap::new();
        for words in &tokenized {
            let mut seen: Vec<&str> = words.iter().map(String::as_str).collect();
            seen.sort_unstable();
            seen.dedup();
            for w in seen {
                *doc_freq.entry(w).or_default() += 1;
            }
        }
        docs.iter()
            .zip(&tokenized)
            .map(|(doc, words)| {
                let len = words.len() as f32;
                let mut score = 0.0;
                for term in &query_terms {
                    let tf = words.iter().filter(|w| *w == term).count() as f32;
                    if tf == 0.0 {
                        continue;
                    }
                    let df = doc_freq.get(term.as_str()).copied().unwrap_or(0) as f32;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    score +=
                        idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len.max(1.0)));
                }
                if doc.name.to_lowercase() == query_name {
                    score += EXACT_NAME_BONUS;
                }
                score
            })
            .collect()
    }
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
    async fn search(&self, query: &str, docs: &[SearchDoc], limit: usize) -> Vec<SearchHit> {
        top_hits(&Self::scores(query, docs), limit)
    }

    fn mode(&self) -> &'static str {
        "lexical"
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
        assert_eq!(names("port scanning"), ["nmap"]);
        assert_eq!(names("scan"), ["scan"]);
        assert_eq!(names("fetch"), ["fetch"]);
        assert!(names("cooking recipes").is_empty());
    }
}
