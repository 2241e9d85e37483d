//! A labelled search set: tool and skill descriptions, and paraphrased
//! queries with the one document each should find. Shared by the search tests
//! and `examples/search_bench.rs`.

use py_code_mode::SearchDoc;

pub const DOCS: &[(&str, &str)] = &[
    (
        "nmap",
        "Network scanner: discover hosts, open ports and running services",
    ),
    (
        "fetch",
        "Download a URL and return its content as clean markdown",
    ),
    ("brave_search", "Web search through the Brave Search API"),
    ("git_log", "Show the commit history of a git repository"),
    (
        "sqlite_query",
        "Run a SQL statement against a SQLite database file",
    ),
    (
        "send_email",
        "Send a message by SMTP to a recipient address",
    ),
    ("resize_image", "Scale a picture to a new width and height"),
    ("translate", "Translate text from one language into another"),
    ("weather", "Current conditions and forecast for a city"),
    ("pdf_to_text", "Extract the text of a PDF document"),
    ("dns_lookup", "Resolve a domain name to its DNS records"),
    ("compress", "Pack files into a zip or tar.gz archive"),
    ("summarize", "Condense a long text into a few sentences"),
    ("csv_stats", "Compute column statistics of a CSV table"),
    (
        "currency",
        "Convert an amount between currencies at today's exchange rate",
    ),
];

/// (query, expected document name)
pub const QUERIES: &[(&str, &str)] = &[
    ("port scan", "nmap"),
    ("which services is a machine exposing", "nmap"),
    ("grab a web page", "fetch"),
    ("look something up on the internet", "brave_search"),
    ("who changed this code and when", "git_log"),
    ("query a database", "sqlite_query"),
    ("mail someone", "send_email"),
    ("make a photo smaller", "resize_image"),
    ("say this in French", "translate"),
    ("will it rain tomorrow", "weather"),
    ("read the words out of a pdf", "pdf_to_text"),
    ("what IP address does a hostname point to", "dns_lookup"),
    ("zip up a folder", "compress"),
    ("shorten this article", "summarize"),
    ("average of a spreadsheet column", "csv_stats"),
    ("how many euros is 100 dollars", "currency"),
    ("temperature in Paris", "weather"),
    ("fetch", "fetch"),
    ("tl;dr of a report", "summarize"),
    ("send an email", "send_email"),
];

pub fn docs() -> Vec<SearchDoc> {
    DOCS.iter()
        .map(|(name, text)| SearchDoc {
            name: (*name).into(),
            text: (*text).into(),
        })
        .collect()
}

/// Rank (1-based) of `expected` among `ranked` names, if present.
pub fn rank_of(ranked: &[String], expected: &str) -> Option<usize> {
    ranked.iter().position(|n| n == expected).map(|p| p + 1)
}

/// Recall@1, Recall@5 and MRR over the ranks (None: not found).
pub fn metrics(ranks: &[Option<usize>]) -> (f64, f64, f64) {
    let n = ranks.len() as f64;
    let r1 = ranks.iter().filter(|r| **r == Some(1)).count() as f64 / n;
    let r5 = ranks.iter().filter(|r| r.is_some_and(|r| r <= 5)).count() as f64 / n;
    let mrr = ranks
        .iter()
        .map(|r| r.map_or(0.0, |r| 1.0 / r as f64))
        .sum::<f64>()
        / n;
    (r1, r5, mrr)
}
