//! [`EmbeddingModel`]: tokenizer + transformer backbone + sentence-transformers pooling, run on
//! candle's CPU backend inside a thread pool of our own.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, modernbert};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::env_vars;
use crate::error::EmbedError;
use crate::resolve::{self, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::st_config::{Pooling, SentenceConfig, read_json};

/// Documents are embedded this many at a time: large enough to keep the matrix kernels busy,
/// small enough that one long text does not pad hundreds of short ones.
const BATCH_SIZE: usize = 32;

/// Longest input when the model states none in `sentence_bert_config.json`; BERT-family
/// position tables are 512 long.
const DEFAULT_MAX_SEQ_LENGTH: usize = 512;

/// How a model is found and run.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// CPU threads for inference. `None`: `PY_CODE_MODE_EMBED_THREADS`, else candle's default
    /// (`RAYON_NUM_THREADS`, else the number of physical cores).
    pub threads: Option<usize>,
    /// Fetch a model missing from the cache from the Hugging Face Hub. Only honoured when the
    /// crate is built with the `hub` feature; otherwise loading fails with a hint.
    pub allow_download: bool,
    /// Hugging Face hub cache (the directory holding `models--ORG--NAME/`). `None`: the cache
    /// `huggingface_hub` would use (`HF_HUB_CACHE`, `HF_HOME`, `~/.cache/huggingface/hub`).
    pub cache_dir: Option<PathBuf>,
    /// Where downloads come from. `None`: `HF_ENDPOINT`, else `https://huggingface.co`.
    pub endpoint: Option<String>,
}

impl LoadOptions {
    /// Options for a program that may go online: downloads allowed (with the
    /// `hub` feature) unless `HF_HUB_OFFLINE` is set to `1`, `true`, `yes` or
    /// `on`, as `huggingface_hub` reads it.
    pub fn online_unless_offline() -> Self {
        Self {
            allow_download: !resolve::hub_offline(),
            ..Self::default()
        }
    }
}

enum Backbone {
    Bert(bert::BertModel),
    ModernBert(modernbert::ModernBert),
}

impl Backbone {
    /// Last hidden states, `(batch, seq, hidden)`.
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Bert(model) => model.forward(ids, &ids.zeros_like()?, Some(mask)),
            Self::ModernBert(model) => model.forward(ids, mask),
        }
    }
}

/// A sentence-embedding model loaded into memory. Cheap to share: `Send + Sync`, and calls from
/// several threads queue on the model's own worker threads.
pub struct EmbeddingModel {
    id: String,
    dir: PathBuf,
    dim: usize,
    tokenizer: Tokenizer,
    backbone: Backbone,
    sentence: SentenceConfig,
    threads: usize,
    pool: rayon::ThreadPool,
}

impl fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingModel")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .field("pooling", &self.sentence.pooling)
            .field("normalize", &self.sentence.normalize)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl EmbeddingModel {
    /// Loads the model named by `spec`: a local model directory, an alias (`bge-small`,
    /// `bge-base`, `granite`) or a Hugging Face model id found in the local Hugging Face cache.
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Self, EmbedError> {
        let started = Instant::now();
        let resolved = resolve::resolve(spec, opts)?;
        let dir = resolved.dir;
        let sentence = SentenceConfig::load(&dir, &resolved.id)?;

        let config_path = dir.join(CONFIG_FILE);
        let config: serde_json::Value = read_json(&config_path)?;
        let architecture = Architecture::detect(&config, &config_path)?;
        let (backbone, dims) = load_backbone(architecture, config, &dir)?;

        let max_length = sentence
            .max_seq_length
            .unwrap_or(DEFAULT_MAX_SEQ_LENGTH)
            .min(dims.max_positions);
        let tokenizer = load_tokenizer(&dir.join(TOKENIZER_FILE), max_length, dims.pad_id)?;

        let threads = thread_count(
            opts,
            std::env::var(env_vars::PY_CODE_MODE_EMBED_THREADS).ok(),
        )?;
        // candle's CPU matmuls (gemm) and candle-nn's softmax / layer norm run as rayon tasks on
        // the *current* pool, so installing our own pool bounds them: that is most of the work.
        // gemm splits into `candle_core::utils::get_num_threads()` tasks (`RAYON_NUM_THREADS`,
        // else physical cores), which then only sets the task granularity. Element-wise ops on
        // 64 Ki elements or more use candle's process-wide barrier pool instead, sized once
        // from `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS`; only the process environment can
        // bound that (setting it from here would need `unsafe` `set_var` in a threaded host).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("pcm-embed-{i}"))
            .build()
            .map_err(|source| EmbedError::ThreadPool { threads, source })?;
        note_candle_pool(threads);

        let id = format!("{}@{:016x}", resolved.id, files_fingerprint(&dir));
        let model = Self {
            id,
            dim: dims.hidden_size * sentence.pooling.len(),
            dir,
            tokenizer,
            backbone,
            sentence,
            threads,
            pool,
        };
        tracing::debug!(
            model = %model.id,
            dir = %model.dir.display(),
            threads,
            max_length,
            elapsed_ms = started.elapsed().as_millis(),
            "loaded embedding model"
        );
        Ok(model)
    }

    /// Stable identity for caches: the resolved model id and a fingerprint of its files' sizes.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Length of every embedding this model returns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The directory the model was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The prefix [`Self::embed_query`] puts before a query, if the model uses one.
    pub fn query_prompt(&self) -> Option<&str> {
        self.sentence.query_prompt.as_deref()
    }

    /// Whether embeddings are scaled to unit length (the model has a `Normalize` module).
    pub fn normalizes(&self) -> bool {
        self.sentence.normalize
    }

    /// Worker threads used for inference.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Embeds texts to be searched (tools, skills), without any prompt; one vector per text,
    /// in input order.
    pub fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Sorting by length keeps similar lengths in one batch, so little padding is computed.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        self.pool.install(|| {
            for chunk in order.chunks(BATCH_SIZE) {
                let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
                for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                    out[i] = vector;
                }
            }
            Ok::<_, EmbedError>(())
        })?;
        Ok(out)
    }

    /// Embeds a search query, with the model's query prompt in front when it has one.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let prompted;
        let input = match &self.sentence.query_prompt {
            Some(prompt) => {
                prompted = format!("{prompt}{text}");
                prompted.as_str()
            }
            None => text,
        };
        let mut vectors = self.pool.install(|| self.embed_batch(&[input]))?;
        Ok(vectors.pop().unwrap_or_default())
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|source| EmbedError::Tokenize {
                model: self.id.clone(),
                source,
            })?;
        let seq_len = encodings.first().map_or(0, tokenizers::Encoding::len);
        let mut ids = Vec::with_capacity(texts.len() * seq_len);
        let mut mask = Vec::with_capacity(texts.len() * seq_len);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        self.run(ids, mask, (texts.len(), seq_len))
            .map_err(|source| EmbedError::Inference {
                model: self.id.clone(),
                source,
            })
    }

    fn run(
        &self,
        ids: Vec<u32>,
        mask: Vec<u32>,
        shape: (usize, usize),
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let ids = Tensor::from_vec(ids, shape, &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
        let hidden = self.backbone.forward(&ids, &mask)?;
        let pooled = pool(&hidden, &mask, &self.sentence.pooling)?;
        let pooled = if self.sentence.normalize {
            l2_normalize(&pooled)?
        } else {
            pooled
        };
        pooled.to_vec2()
    }
}

#[derive(Debug, Clone, Copy)]
enum Architecture {
    Bert,
    ModernBert,
}

impl Architecture {
    fn detect(config: &serde_json::Value, path: &Path) -> Result<Self, EmbedError> {
        let model_type = config.get("model_type").and_then(serde_json::Value::as_str);
        match model_type {
            Some("bert") => Ok(Self::Bert),
            Some("modernbert") => Ok(Self::ModernBert),
            other => {
                let architecture = other
                    .or_else(|| {
                        config
                            .pointer("/architectures/0")
                            .and_then(serde_json::Value::as_str)
                    })
                    .unwrap_or("<no model_type>")
                    .to_owned();
                Err(EmbedError::UnsupportedArchitecture {
                    architecture,
                    config: path.to_path_buf(),
                })
            }
        }
    }
}

/// What loading needs from the backbone's configuration besides the model itself.
struct Dims {
    hidden_size: usize,
    max_positions: usize,
    pad_id: u32,
}

fn load_backbone(
    architecture: Architecture,
    config: serde_json::Value,
    dir: &Path,
) -> Result<(Backbone, Dims), EmbedError> {
    let config_path = dir.join(CONFIG_FILE);
    let parse_err = |source| EmbedError::Json {
        path: config_path.clone(),
        source,
    };
    let weights_path = dir.join(WEIGHTS_FILE);
    let weights_err = |source| EmbedError::Weights {
        path: weights_path.clone(),
        source,
    };
    // Read rather than mmap: mapping a file is `unsafe` (another process may truncate it), and
    // candle copies every tensor out of the mapping anyway.
    let bytes = std::fs::read(&weights_path).map_err(|source| EmbedError::Read {
        path: weights_path.clone(),
        source,
    })?;
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
        .map_err(weights_err)?;

    match architecture {
        Architecture::Bert => {
            let cfg: bert::Config = serde_json::from_value(config).map_err(parse_err)?;
            let model = bert::BertModel::load(vb, &cfg).map_err(weights_err)?;
            let dims = Dims {
                hidden_size: cfg.hidden_size,
                max_positions: cfg.max_position_embeddings,
                pad_id: u32::try_from(cfg.pad_token_id).unwrap_or(0),
            };
            Ok((Backbone::Bert(model), dims))
        }
        Architecture::ModernBert => {
            let cfg: modernbert::Config = serde_json::from_value(config).map_err(parse_err)?;
            // sentence-transformers saves the bare `ModernBertModel` (`layers.0…`); candle names
            // tensors as in `ModernBertForMaskedLM` (`model.layers.0…`).
            let vb = if vb.contains_tensor("model.embeddings.tok_embeddings.weight") {
                vb
            } else {
                vb.rename_f(|name| name.strip_prefix("model.").unwrap_or(name).to_owned())
            };
            let model = modernbert::ModernBert::load(vb, &cfg).map_err(weights_err)?;
            let dims = Dims {
                hidden_size: cfg.hidden_size,
                max_positions: cfg.max_position_embeddings,
                pad_id: cfg.pad_token_id,
            };
            Ok((Backbone::ModernBert(model), dims))
        }
    }
}

/// The model's tokenizer with padding to the longest text of each batch (many `tokenizer.json`
/// files pad to a fixed length, which wastes work) and truncation at `max_length`.
fn load_tokenizer(path: &Path, max_length: usize, pad_id: u32) -> Result<Tokenizer, EmbedError> {
    let err = |source| EmbedError::Tokenizer {
        path: path.to_path_buf(),
        source,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(err)?;
    let padding = match tokenizer.get_padding() {
        Some(existing) => PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_to_multiple_of: None,
            ..existing.clone()
        },
        None => PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token: tokenizer
                .id_to_token(pad_id)
                .unwrap_or_else(|| "[PAD]".to_owned()),
            ..PaddingParams::default()
        },
    };
    tokenizer.with_padding(Some(padding));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..TruncationParams::default()
        }))
        .map_err(err)?;
    Ok(tokenizer)
}

/// `LoadOptions::threads`, else `env` (the value of `PY_CODE_MODE_EMBED_THREADS`), else
/// candle's default.
fn thread_count(opts: &LoadOptions, env: Option<String>) -> Result<usize, EmbedError> {
    if let Some(threads) = opts.threads {
        return if threads == 0 {
            Err(EmbedError::InvalidThreads {
                value: "0".to_owned(),
                origin: "`LoadOptions::threads`",
            })
        } else {
            Ok(threads)
        };
    }
    match env {
        Some(value) if !value.trim().is_empty() => {
            value.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or(
                EmbedError::InvalidThreads {
                    value,
                    origin: "`PY_CODE_MODE_EMBED_THREADS`",
                },
            )
        }
        _ => Ok(candle_core::utils::get_num_threads()),
    }
}

/// Says once per load when candle's own element-wise pool may use more threads than asked for.
fn note_candle_pool(threads: usize) {
    if threads < candle_core::utils::get_num_threads()
        && std::env::var_os(env_vars::CANDLE_NUM_THREADS).is_none()
    {
        tracing::debug!(
            threads,
            "`CANDLE_NUM_THREADS` is unset: candle's element-wise pool may use more threads; \
             export it to bound all model work"
        );
    }
}

/// Sentence vectors from token vectors, one block per pooling mode, concatenated.
pub(crate) fn pool(
    hidden: &Tensor,
    mask: &Tensor,
    modes: &[Pooling],
) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?; // (batch, seq, 1)
    // Guards the division for an all-padding row, as sentence-transformers does.
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (batch, 1)
    let mut parts = Vec::with_capacity(modes.len());
    for mode in modes {
        parts.push(match mode {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Max => {
                // Padding positions get -1e9 so they never win, as in sentence-transformers.
                let masked = hidden.broadcast_mul(&mask)?;
                let penalty = ((&mask - 1.0)? * 1e9)?;
                masked.broadcast_add(&penalty)?.max(1)?
            }
            Pooling::Mean => hidden
                .broadcast_mul(&mask)?
                .sum(1)?
                .broadcast_div(&counts)?,
            Pooling::MeanSqrtLen => hidden
                .broadcast_mul(&mask)?
                .sum(1)?
                .broadcast_div(&counts.sqrt()?)?,
        });
    }
    Tensor::cat(&parts, 1)
}

/// Scales each row to unit length; the floor keeps an all-zero row at zero.
fn l2_normalize(xs: &Tensor) -> candle_core::Result<Tensor> {
    let norms = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    xs.broadcast_div(&norms)
}

/// 64-bit FNV-1a over the names and sizes of the files that define the model. Hand-rolled
/// because the result keys persistent caches, and std's hasher may change between releases.
fn files_fingerprint(dir: &Path) -> u64 {
    const FILES: [&str; 7] = [
        CONFIG_FILE,
        TOKENIZER_FILE,
        WEIGHTS_FILE,
        "modules.json",
        "1_Pooling/config.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
    ];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for file in FILES {
        let size = std::fs::metadata(dir.join(file)).map_or(u64::MAX, |m| m.len());
        feed(file.as_bytes());
        feed(&size.to_le_bytes());
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddingModel>();
    }

    #[test]
    fn thread_count_prefers_options_then_env() -> Result<(), EmbedError> {
        let explicit = LoadOptions {
            threads: Some(3),
            ..LoadOptions::default()
        };
        let unset = LoadOptions::default();
        assert_eq!(thread_count(&explicit, Some("1".to_owned()))?, 3);
        assert_eq!(thread_count(&unset, Some(" 2 ".to_owned()))?, 2);
        assert_eq!(
            thread_count(&unset, None)?,
            candle_core::utils::get_num_threads()
        );
        assert_eq!(
            thread_count(&unset, Some(String::new()))?,
            candle_core::utils::get_num_threads()
        );
        for bad in ["0", "two", "-1"] {
            let err = thread_count(&unset, Some(bad.to_owned())).err();
            assert_eq!(
                err.map(|e| e.to_string()),
                Some(format!(
                    "invalid thread count `{bad}` from `PY_CODE_MODE_EMBED_THREADS`: \
                     expected a positive integer"
                ))
            );
        }
        Ok(())
    }

    #[test]
    fn pooling_modes_match_hand_computation() -> candle_core::Result<()> {
        // One sequence of three tokens, the last one padding.
        let hidden = Tensor::new(&[[[1f32, 2.], [3., 6.], [100., 100.]]], &Device::Cpu)?;
        let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu)?;
        let all = [
            Pooling::Cls,
            Pooling::Max,
            Pooling::Mean,
            Pooling::MeanSqrtLen,
        ];
        let got = pool(&hidden, &mask, &all)?.to_vec2::<f32>()?;
        let s = 2f32.sqrt();
        let want = [1., 2., 3., 6., 2., 4., 4. / s, 8. / s];
        for (g, w) in got[0].iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{:?} vs {want:?}", got[0]);
        }
        Ok(())
    }

    #[test]
    fn normalised_rows_have_unit_length() -> candle_core::Result<()> {
        let xs = Tensor::new(&[[3f32, 4.], [0., 0.]], &Device::Cpu)?;
        assert_eq!(l2_normalize(&xs)?.to_vec2::<f32>()?, [[0.6, 0.8], [0., 0.]]);
        Ok(())
    }
}
