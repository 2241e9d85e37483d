//! Pooling, prompts and normalisation on a tiny random BERT, checked against candle's
//! `BertModel` run directly on hand-built token ids.

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, modernbert};
use py_code_mode_embed::{EmbeddingModel, LoadOptions};

use crate::support::{
    QUERY_PROMPT, TinyModel, bert_config, max_abs_diff, modernbert_config, norm, token_id,
    write_tiny_model, write_tiny_modernbert,
};

const TOL: f32 = 1e-5;

fn load(dir: &std::path::Path) -> anyhow::Result<EmbeddingModel> {
    let spec = dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 temp dir"))?;
    Ok(EmbeddingModel::load(
        spec,
        &LoadOptions {
            threads: Some(1),
            ..LoadOptions::default()
        },
    )?)
}

/// Last hidden states for `[CLS] hello world [SEP]`, computed without our crate.
fn raw_hidden_states(dir: &std::path::Path) -> anyhow::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(dir.join("model.safetensors"))?;
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)?;
    let config: bert::Config = serde_json::from_value(bert_config())?;
    let model = bert::BertModel::load(vb, &config)?;
    let ids = ["[CLS]", "hello", "world", "[SEP]"]
        .into_iter()
        .map(token_id)
        .collect::<anyhow::Result<Vec<u32>>>()?;
    let ids = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let hidden = model.forward(&ids, &ids.zeros_like()?, None)?;
    Ok(hidden.i(0)?.to_vec2()?)
}

fn scaled(v: &[f32], by: f32) -> Vec<f32> {
    v.iter().map(|x| x / by).collect()
}

#[test]
fn cls_pooling_returns_the_cls_hidden_state() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(
        dir.path(),
        &TinyModel {
            cls_pooling: true,
            normalize: true,
        },
    )?;
    let model = load(dir.path())?;
    assert_eq!(model.dim(), 8);

    let got = model.embed_documents(&["Hello world"])?.remove(0);
    let hidden = raw_hidden_states(dir.path())?;
    let cls = &hidden[0];
    let mean: Vec<f32> = (0..cls.len())
        .map(|j| hidden.iter().map(|row| row[j]).sum::<f32>() / 4.0)
        .collect();

    assert!(
        max_abs_diff(&got, &scaled(cls, norm(cls))) < TOL,
        "CLS pooling: {got:?} vs {cls:?}"
    );
    assert!(
        max_abs_diff(&got, &scaled(&mean, norm(&mean))) > 1e-2,
        "CLS and mean pooling should differ"
    );
    assert!((norm(&got) - 1.0).abs() < TOL);
    Ok(())
}

#[test]
fn mean_pooling_averages_tokens_and_ignores_padding() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(
        dir.path(),
        &TinyModel {
            cls_pooling: false,
            normalize: false,
        },
    )?;
    let model = load(dir.path())?;
    let hidden = raw_hidden_states(dir.path())?;
    let mean: Vec<f32> = (0..8)
        .map(|j| hidden.iter().map(|row| row[j]).sum::<f32>() / 4.0)
        .collect();

    // In a batch with a longer text, "hello world" is padded; the mask must hide the padding.
    let got = model.embed_documents(&["find the files search a port scanning", "hello world"])?;
    assert!(
        max_abs_diff(&got[1], &mean) < TOL,
        "mean pooling: {:?} vs {mean:?}",
        got[1]
    );
    Ok(())
}

#[test]
fn normalisation_follows_modules_json() -> anyhow::Result<()> {
    let with = tempfile::tempdir()?;
    let without = tempfile::tempdir()?;
    // Same weights in both, so only the Normalize module differs.
    write_tiny_model(
        with.path(),
        &TinyModel {
            cls_pooling: true,
            normalize: true,
        },
    )?;
    crate::support::copy_dir(with.path(), without.path())?;
    let modules: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(with.path().join("modules.json"))?)?;
    let kept: Vec<_> = modules
        .into_iter()
        .filter(|m| m["type"] != "sentence_transformers.models.Normalize")
        .collect();
    std::fs::write(
        without.path().join("modules.json"),
        serde_json::to_string(&kept)?,
    )?;

    let normalised = load(with.path())?;
    let raw = load(without.path())?;
    assert!(normalised.normalizes());
    assert!(!raw.normalizes());

    let a = normalised.embed_documents(&["hello world"])?.remove(0);
    let b = raw.embed_documents(&["hello world"])?.remove(0);
    let cls = raw_hidden_states(with.path())?.remove(0);
    assert!((norm(&a) - 1.0).abs() < TOL);
    assert!(max_abs_diff(&b, &cls) < TOL, "raw CLS: {b:?} vs {cls:?}");
    assert!(
        (norm(&b) - 1.0).abs() > 1e-2,
        "unnormalised CLS should not be unit length"
    );
    assert!(max_abs_diff(&a, &scaled(&b, norm(&b))) < TOL);
    Ok(())
}

#[test]
fn query_prompt_is_applied_to_queries_only() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(
        dir.path(),
        &TinyModel {
            cls_pooling: true,
            normalize: true,
        },
    )?;
    let model = load(dir.path())?;
    assert_eq!(model.query_prompt(), Some(QUERY_PROMPT));

    let query = model.embed_query("port scan")?;
    let docs = model.embed_documents(&[&format!("{QUERY_PROMPT}port scan"), "port scan"])?;
    assert!(
        max_abs_diff(&query, &docs[0]) < TOL,
        "query = prompt + text"
    );
    assert!(
        max_abs_diff(&query, &docs[1]) > 1e-3,
        "documents get no prompt"
    );
    Ok(())
}

#[test]
fn batches_keep_input_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(
        dir.path(),
        &TinyModel {
            cls_pooling: false,
            normalize: true,
        },
    )?;
    let model = load(dir.path())?;
    let words = [
        "hello", "world", "find", "files", "search", "port", "scan", "the",
    ];
    // 70 texts of varied lengths: several internal batches, sorted by length inside.
    let texts: Vec<String> = (0..70)
        .map(|i| {
            (0..=(i * 7) % 11)
                .map(|j| words[(i + j) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batched = model.embed_documents(&refs)?;
    assert_eq!(batched.len(), texts.len());
    for (text, got) in refs.iter().zip(&batched) {
        let alone = model.embed_documents(&[text])?.remove(0);
        assert!(
            max_abs_diff(got, &alone) < TOL,
            "`{text}` changed in a batch"
        );
    }
    assert!(model.embed_documents(&[])?.is_empty());
    Ok(())
}

#[test]
fn modernbert_in_sentence_transformers_layout_loads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_modernbert(dir.path())?;
    let model = load(dir.path())?;
    assert_eq!(model.dim(), 8);
    let got = model.embed_documents(&["hello world", "find the files search a port"])?;

    let bytes = std::fs::read(dir.path().join("reference.safetensors"))?;
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)?;
    let config: modernbert::Config = serde_json::from_value(modernbert_config())?;
    let reference = modernbert::ModernBert::load(vb, &config)?;
    let ids = ["[CLS]", "hello", "world", "[SEP]"]
        .into_iter()
        .map(token_id)
        .collect::<anyhow::Result<Vec<u32>>>()?;
    let ids = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let hidden = reference.forward(&ids, &ids.ones_like()?)?;
    let cls: Vec<f32> = hidden.i((0, 0))?.to_vec1()?;
    assert!(max_abs_diff(&got[0], &cls) < TOL, "{:?} vs {cls:?}", got[0]);
    Ok(())
}

#[test]
fn one_model_serves_several_threads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(
        dir.path(),
        &TinyModel {
            cls_pooling: false,
            normalize: true,
        },
    )?;
    let model = std::sync::Arc::new(load(dir.path())?);
    let texts = ["hello world", "find files", "port scan", "search the query"];
    let expected = model.embed_documents(&texts)?;
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let model = std::sync::Arc::clone(&model);
            std::thread::spawn(move || -> anyhow::Result<Vec<Vec<f32>>> {
                let mut last = Vec::new();
                for _ in 0..20 {
                    last = model.embed_documents(&texts)?;
                }
                Ok(last)
            })
        })
        .collect();
    for handle in handles {
        let got = handle
            .join()
            .map_err(|_| anyhow::anyhow!("embedding thread panicked"))??;
        for (g, e) in got.iter().zip(&expected) {
            assert!(max_abs_diff(g, e) < TOL);
        }
    }
    Ok(())
}
