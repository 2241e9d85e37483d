//! Measures an embedding model: cold load, single-query latency, batch throughput and resident
//! memory.
//!
//! ```text
//! cargo run --release -p py-code-mode-embed --example bench -- <model-dir-or-id> [--threads N] [--docs N]
//! ```
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use py_code_mode_embed::{EmbeddingModel, LoadOptions};

const QUERY_RUNS: usize = 50;
const DEFAULT_DOCS: usize = 1000;

const VERBS: [&str; 10] = [
    "Scan", "Fetch", "Convert", "List", "Search", "Resize", "Send", "Query", "Compress", "Parse",
];
const OBJECTS: [&str; 10] = [
    "a host for open TCP ports",
    "a web page over HTTP",
    "a CSV file to JSON",
    "files in a directory tree",
    "log lines matching a regular expression",
    "an image to thumbnail size",
    "an email to a list of recipients",
    "a PostgreSQL database with read-only SQL",
    "a folder into a tar.gz archive",
    "a YAML configuration document",
];
const DETAILS: [&str; 6] = [
    "and return the result as text.",
    "Arguments: target (str), timeout in seconds (int, optional).",
    "Reports progress and fails with a clear error when the input is missing.",
    "Useful during reconnaissance and inventory of a network before deeper analysis.",
    "Output is capped at one megabyte; pass a filter to narrow large results.",
    "",
];

/// Deterministic tool-like descriptions of varied length (about 8 to 40 words).
fn descriptions(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let detail = DETAILS[i % DETAILS.len()];
            let extra = DETAILS[(i / 7) % DETAILS.len()];
            format!(
                "{} {} {detail} {extra} (tool #{i})",
                VERBS[i % VERBS.len()],
                OBJECTS[(i / 3) % OBJECTS.len()]
            )
        })
        .collect()
}

/// A field of `/proc/self/status` such as `VmRSS`, in kB.
fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Tokens the model sees for `texts`, special tokens included, as an input-size yardstick.
fn token_count(model: &EmbeddingModel, texts: &[&str]) -> anyhow::Result<usize> {
    let tokenizer = tokenizers::Tokenizer::from_file(model.model_dir().join("tokenizer.json"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    texts.iter().try_fold(0, |sum, text| {
        let encoding = tokenizer
            .encode(*text, true)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(sum
            + encoding
                .get_attention_mask()
                .iter()
                .filter(|&&m| m == 1)
                .count())
    })
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut spec = None;
    let mut threads = None;
    let mut docs = DEFAULT_DOCS;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = Some(args.next().context("--threads needs a value")?.parse()?),
            "--docs" => docs = args.next().context("--docs needs a value")?.parse()?,
            _ if spec.is_none() => spec = Some(arg),
            other => anyhow::bail!("unexpected argument `{other}`"),
        }
    }
    let spec = spec.context("usage: bench <model-dir-or-id> [--threads N] [--docs N]")?;

    let rss_before = proc_status_kb("VmRSS:");
    let started = Instant::now();
    let model = EmbeddingModel::load(
        &spec,
        &LoadOptions {
            threads,
            ..LoadOptions::default()
        },
    )?;
    let load = started.elapsed();
    let rss_loaded = proc_status_kb("VmRSS:");

    println!("model            {}", model.id());
    println!("dim / threads    {} / {}", model.dim(), model.threads());
    println!("load             {:.1} ms", millis(load));

    // Warm-up: first calls allocate buffers and spin up the worker threads.
    for _ in 0..3 {
        model.embed_query("warm up the model")?;
    }
    let mut latencies: Vec<Duration> = (0..QUERY_RUNS)
        .map(|i| {
            let t = Instant::now();
            model
                .embed_query(&format!("find a tool that scans ports on host {i}"))
                .map(|_| t.elapsed())
        })
        .collect::<Result<_, _>>()?;
    latencies.sort();
    println!(
        "query            median {:.2} ms, p90 {:.2} ms ({QUERY_RUNS} runs)",
        millis(latencies[QUERY_RUNS / 2]),
        millis(latencies[QUERY_RUNS * 9 / 10])
    );

    let texts = descriptions(docs);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    let vectors = model.embed_documents(&refs)?;
    let batch = t.elapsed();
    anyhow::ensure!(vectors.len() == docs, "got {} vectors", vectors.len());
    let tokens = token_count(&model, &refs)?;
    #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
    let (rate, token_rate, mean_tokens) = (
        docs as f64 / batch.as_secs_f64(),
        tokens as f64 / batch.as_secs_f64(),
        tokens as f64 / docs as f64,
    );
    println!(
        "documents        {docs} in {:.2} s = {rate:.0} sentences/s, {token_rate:.0} tokens/s \
         (mean {mean_tokens:.1} tokens)",
        batch.as_secs_f64()
    );

    let kb = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |kb| format!("{} MB", kb / 1024));
    println!(
        "resident memory  {} before load, {} after load, {} after batch (peak {})",
        kb(rss_before),
        kb(rss_loaded),
        kb(proc_status_kb("VmRSS:")),
        kb(proc_status_kb("VmHWM:"))
    );
    Ok(())
}
