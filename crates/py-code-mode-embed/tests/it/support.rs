//! Builders for model directories on disk and small vector helpers.

use std::path::Path;

use anyhow::Context as _;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::{bert, modernbert};
use serde_json::json;

/// The tiny model's WordPiece vocabulary; a token's id is its index.
pub const VOCAB: [&str; 18] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "find", "files", "search",
    "query", ":", "the", "a", "port", "scan", "##s", "##ing",
];

pub fn token_id(token: &str) -> anyhow::Result<u32> {
    let index = VOCAB
        .iter()
        .position(|t| *t == token)
        .with_context(|| format!("`{token}` is not in the tiny vocabulary"))?;
    Ok(u32::try_from(index)?)
}

pub const QUERY_PROMPT: &str = "query: ";

/// What to write besides config.json, tokenizer.json and model.safetensors.
pub struct TinyModel {
    pub cls_pooling: bool,
    pub normalize: bool,
}

pub fn bert_config() -> serde_json::Value {
    json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": VOCAB.len(),
        "hidden_size": 8,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 32,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute"
    })
}

pub fn modernbert_config() -> serde_json::Value {
    json!({
        "architectures": ["ModernBertModel"],
        "model_type": "modernbert",
        "vocab_size": VOCAB.len(),
        "hidden_size": 8,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "max_position_embeddings": 32,
        "layer_norm_eps": 1e-5,
        "pad_token_id": 0,
        "global_attn_every_n_layers": 2,
        "global_rope_theta": 160_000.0,
        "local_attention": 8,
        "local_rope_theta": 10_000.0
    })
}

/// A BERT-style `tokenizer.json` that, like many published ones, pads to a fixed length.
pub fn tokenizer_json() -> anyhow::Result<serde_json::Value> {
    let vocab: serde_json::Map<String, serde_json::Value> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| ((*t).to_owned(), json!(i)))
        .collect();
    let special = |t: &str| -> anyhow::Result<serde_json::Value> {
        Ok(json!({"id": t, "ids": [token_id(t)?], "tokens": [t]}))
    };
    let added: Vec<serde_json::Value> = VOCAB[..5]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 16, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": special("[CLS]")?, "[SEP]": special("[SEP]")?}
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    }))
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing `{}`", path.display()))
}

/// Writes a complete sentence-transformers directory for a BERT with random weights.
pub fn write_tiny_model(dir: &Path, spec: &TinyModel) -> anyhow::Result<()> {
    write_json(&dir.join("config.json"), &bert_config())?;
    write_json(&dir.join("tokenizer.json"), &tokenizer_json()?)?;

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    // Loading through a VarMap creates every tensor BertModel needs, randomly initialised.
    let config: bert::Config = serde_json::from_value(bert_config())?;
    bert::BertModel::load(vb, &config)?;
    varmap.save(dir.join("model.safetensors"))?;

    let mut modules = vec![
        json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    if spec.normalize {
        modules.push(json!({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"}));
    }
    write_json(&dir.join("modules.json"), &json!(modules))?;
    write_json(
        &dir.join("1_Pooling/config.json"),
        &json!({
            "word_embedding_dimension": 8,
            "pooling_mode_cls_token": spec.cls_pooling,
            "pooling_mode_mean_tokens": !spec.cls_pooling,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false
        }),
    )?;
    write_json(
        &dir.join("config_sentence_transformers.json"),
        &json!({"prompts": {"query": QUERY_PROMPT, "document": ""}, "default_prompt_name": null}),
    )?;
    Ok(())
}

/// Writes a ModernBERT directory the way sentence-transformers saves one: tensors named as in
/// `ModernBertModel` (`layers.0…`), without the `model.` prefix candle's loader expects. The
/// prefixed original goes to `reference.safetensors` for running the model directly.
pub fn write_tiny_modernbert(dir: &Path) -> anyhow::Result<()> {
    write_tiny_model(
        dir,
        &TinyModel {
            cls_pooling: true,
            normalize: false,
        },
    )?;
    write_json(&dir.join("config.json"), &modernbert_config())?;

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config: modernbert::Config = serde_json::from_value(modernbert_config())?;
    modernbert::ModernBert::load(vb, &config)?;
    let reference = dir.join("reference.safetensors");
    varmap.save(&reference)?;
    let tensors = candle_core::safetensors::load(&reference, &Device::Cpu)?;
    let renamed: std::collections::HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(name, t)| (name.strip_prefix("model.").unwrap_or(&name).to_owned(), t))
        .collect();
    anyhow::ensure!(
        renamed.contains_key("layers.0.attn.Wqkv.weight"),
        "{:?}",
        renamed.keys()
    );
    candle_core::safetensors::save(&renamed, dir.join("model.safetensors"))?;
    Ok(())
}

/// Copies a model directory, file by file, one level of subdirectories deep.
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

pub fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (norm(a) * norm(b))
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
