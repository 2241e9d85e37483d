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
    (
        "docker_ps",
        "List running Docker containers with their images and ports",
    ),
    (
        "kubectl_logs",
        "Print the logs of a pod in a Kubernetes cluster",
    ),
    (
        "whois",
        "Registration details of a domain: owner, registrar, expiry date",
    ),
    (
        "ocr_image",
        "Recognise printed text in a photo or screenshot",
    ),
    (
        "calendar_add",
        "Create an event in the calendar at a date and time",
    ),
    (
        "stock_price",
        "Latest share price of a company by ticker symbol",
    ),
    ("hash_file", "Compute the SHA-256 checksum of a file"),
    ("json_format", "Pretty-print and validate a JSON document"),
    ("github_issues", "List open issues of a GitHub repository"),
    ("transcribe", "Turn speech in an audio recording into text"),
    ("timezone", "Current time in a city or time zone"),
    (
        "unit_convert",
        "Convert between units of length, weight and temperature",
    ),
    ("geocode", "Latitude and longitude of a street address"),
    (
        "diff_files",
        "Show line-by-line differences between two text files",
    ),
    (
        "run_tests",
        "Run the project's test suite with pytest and report failures",
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
    ("what containers are up", "docker_ps"),
    ("docker ps", "docker_ps"),
    ("why is my pod crashing", "kubectl_logs"),
    ("who owns this domain", "whois"),
    ("when does example.org expire", "whois"),
    ("read the text in a screenshot", "ocr_image"),
    ("book a meeting for Tuesday at 3pm", "calendar_add"),
    ("how is AAPL trading", "stock_price"),
    ("verify a download's checksum", "hash_file"),
    ("sha256", "hash_file"),
    ("tidy up this JSON", "json_format"),
    ("open bugs on the repo", "github_issues"),
    ("convert a voice memo to text", "transcribe"),
    ("what time is it in Tokyo", "timezone"),
    ("how many kilometres is 10 miles", "unit_convert"),
    ("coordinates of 10 Downing Street", "geocode"),
    ("what changed between these two files", "diff_files"),
    ("run pytest", "run_tests"),
    ("did my change break anything", "run_tests"),
    ("sqlite", "sqlite_query"),
    ("smtp", "send_email"),
    ("DNS records for a domain", "dns_lookup"),
    ("tar.gz", "compress"),
    ("csv_stats", "csv_stats"),
    ("extract text from pdf", "pdf_to_text"),
    ("exchange rate", "currency"),
    ("git history", "git_log"),
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
