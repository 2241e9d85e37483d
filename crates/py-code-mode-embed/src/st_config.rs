//! The sentence-transformers side of a model directory: which pooling, whether to normalise,
//! the query prompt and the maximum sequence length.
//!
//! Files are deserialised into raw all-optional types here and turned into [`SentenceConfig`],
//! which holds the effective values and their defaults.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::EmbedError;

const MODULES_FILE: &str = "modules.json";
const DEFAULT_POOLING_DIR: &str = "1_Pooling";
const ST_CONFIG_FILE: &str = "config_sentence_transformers.json";
const SBERT_CONFIG_FILE: &str = "sentence_bert_config.json";

/// BGE English models expect this prefix on queries (not on passages); their
/// sentence-transformers configs do not always carry it.
pub const BGE_QUERY_INSTRUCTION: &str = "Represent this sentence for searching relevant passages: ";
const BGE_MODELS: &[&str] = &[
    "BAAI/bge-small-en-v1.5",
    "BAAI/bge-base-en-v1.5",
    "BAAI/bge-large-en-v1.5",
    "BAAI/bge-small-en",
    "BAAI/bge-base-en",
    "BAAI/bge-large-en",
];

/// One pooling strategy; several are concatenated in this order, as sentence-transformers does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pooling {
    Cls,
    Max,
    Mean,
    MeanSqrtLen,
}

/// What the model's sentence-transformers configuration asks for, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentenceConfig {
    pub(crate) pooling: Vec<Pooling>,
    pub(crate) normalize: bool,
    pub(crate) query_prompt: Option<String>,
    pub(crate) max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct RawModule {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "mirrors the sentence-transformers file"
)]
struct RawPooling {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

#[derive(Deserialize, Default)]
struct RawStConfig {
    #[serde(default)]
    prompts: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct RawSbertConfig {
    max_seq_length: Option<usize>,
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|source| EmbedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| EmbedError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional_json<T: DeserializeOwned + Default>(path: &Path) -> Result<T, EmbedError> {
    if path.is_file() {
        read_json(path)
    } else {
        Ok(T::default())
    }
}

impl SentenceConfig {
    /// Reads `modules.json`, the pooling config it points at, `config_sentence_transformers.json`
    /// and `sentence_bert_config.json` from `dir`.
    ///
    /// Without `modules.json` the directory is treated as a plain Transformer: pooling from
    /// `1_Pooling/config.json` if present (else mean), normalised, because every consumer here
    /// ranks by cosine similarity.
    pub(crate) fn load(dir: &Path, model_id: &str) -> Result<Self, EmbedError> {
        let modules_path = dir.join(MODULES_FILE);
        let (pooling_dir, normalize) = if modules_path.is_file() {
            modules(&modules_path)?
        } else {
            (Some(PathBuf::from(DEFAULT_POOLING_DIR)), true)
        };
        let pooling = match pooling_dir {
            Some(sub) => {
                let path = dir.join(sub).join("config.json");
                if path.is_file() {
                    pooling_modes(&path, &read_json(&path)?)?
                } else {
                    vec![Pooling::Mean]
                }
            }
            // No Pooling module: sentence-transformers would return token embeddings, which is
            // no sentence embedding; CLS is what such (BGE-style) models are trained for.
            None => vec![Pooling::Cls],
        };

        let st: RawStConfig = read_optional_json(&dir.join(ST_CONFIG_FILE))?;
        let query_prompt = st
            .prompts
            .get("query")
            .filter(|p| !p.is_empty())
            .cloned()
            .or_else(|| {
                BGE_MODELS
                    .contains(&model_id)
                    .then(|| BGE_QUERY_INSTRUCTION.to_owned())
            });
        let sbert: RawSbertConfig = read_optional_json(&dir.join(SBERT_CONFIG_FILE))?;
        Ok(Self {
            pooling,
            normalize,
            query_prompt,
            max_seq_length: sbert.max_seq_length,
        })
    }
}

/// The pooling module's directory (if any) and whether a Normalize module follows.
fn modules(path: &Path) -> Result<(Option<PathBuf>, bool), EmbedError> {
    let modules: Vec<RawModule> = read_json(path)?;
    let mut pooling = None;
    let mut normalize = false;
    for module in modules {
        match module.kind.rsplit('.').next().unwrap_or_default() {
            "Transformer" => {}
            "Pooling" => pooling = Some(PathBuf::from(module.path)),
            "Normalize" => normalize = true,
            _ => {
                return Err(EmbedError::UnsupportedModule {
                    module: module.kind,
                    path: path.to_path_buf(),
                });
            }
        }
    }
    Ok((pooling, normalize))
}

fn pooling_modes(path: &Path, raw: &RawPooling) -> Result<Vec<Pooling>, EmbedError> {
    let unsupported = |mode: &str| EmbedError::UnsupportedPooling {
        path: path.to_path_buf(),
        reason: format!("`{mode}` is not implemented"),
    };
    if raw.pooling_mode_weightedmean_tokens {
        return Err(unsupported("pooling_mode_weightedmean_tokens"));
    }
    if raw.pooling_mode_lasttoken {
        return Err(unsupported("pooling_mode_lasttoken"));
    }
    let modes: Vec<Pooling> = [
        (raw.pooling_mode_cls_token, Pooling::Cls),
        (raw.pooling_mode_max_tokens, Pooling::Max),
        (raw.pooling_mode_mean_tokens, Pooling::Mean),
        (raw.pooling_mode_mean_sqrt_len_tokens, Pooling::MeanSqrtLen),
    ]
    .into_iter()
    .filter_map(|(on, mode)| on.then_some(mode))
    .collect();
    if modes.is_empty() {
        return Err(EmbedError::UnsupportedPooling {
            path: path.to_path_buf(),
            reason: "no pooling mode is enabled".to_owned(),
        });
    }
    Ok(modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) -> std::io::Result<()> {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)
    }

    #[test]
    fn bge_layout_gives_cls_normalised_and_known_prompt() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        write(
            dir.path(),
            "modules.json",
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )?;
        write(
            dir.path(),
            "1_Pooling/config.json",
            r#"{"word_embedding_dimension":384,"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":false}"#,
        )?;
        write(
            dir.path(),
            "config_sentence_transformers.json",
            r#"{"prompts":{}}"#,
        )?;
        write(
            dir.path(),
            "sentence_bert_config.json",
            r#"{"max_seq_length":512}"#,
        )?;
        let config = SentenceConfig::load(dir.path(), "BAAI/bge-small-en-v1.5")?;
        assert_eq!(
            config,
            SentenceConfig {
                pooling: vec![Pooling::Cls],
                normalize: true,
                query_prompt: Some(BGE_QUERY_INSTRUCTION.to_owned()),
                max_seq_length: Some(512),
            }
        );
        // The same files under another id get no BGE instruction.
        assert_eq!(
            SentenceConfig::load(dir.path(), "org/other")?.query_prompt,
            None
        );
        Ok(())
    }

    #[test]
    fn dense_module_is_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write(
            dir.path(),
            "modules.json",
            r#"[{"path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        )?;
        let err = SentenceConfig::load(dir.path(), "x")
            .err()
            .ok_or("expected an error")?;
        assert!(
            err.to_string()
                .contains("sentence_transformers.models.Dense"),
            "{err}"
        );
        Ok(())
    }
}
