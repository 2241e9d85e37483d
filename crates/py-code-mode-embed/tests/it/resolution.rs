//! Finding model directories, in the file system and in the Hugging Face cache layout, and the
//! errors a person sees when that fails.

use std::path::{Path, PathBuf};

use py_code_mode_embed::{
    BGE_QUERY_INSTRUCTION, EmbedError, EmbeddingModel, LoadOptions, resolve_alias,
};

use crate::support::{TinyModel, write_tiny_model};

const TINY: TinyModel = TinyModel {
    cls_pooling: true,
    normalize: true,
};

fn load_err(spec: &str, opts: &LoadOptions) -> anyhow::Result<EmbedError> {
    match EmbeddingModel::load(spec, opts) {
        Ok(model) => anyhow::bail!("expected `{spec}` to fail, loaded {model:?}"),
        Err(err) => Ok(err),
    }
}

fn spec(dir: &Path) -> anyhow::Result<&str> {
    dir.to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 temp dir"))
}

/// Lays out `models--ORG--NAME/{refs/main,snapshots/<rev>/}` as `huggingface_hub` does.
fn cache_with(id: &str) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let cache = tempfile::tempdir()?;
    let repo = cache
        .path()
        .join(format!("models--{}", id.replace('/', "--")));
    let snapshot = repo.join("snapshots").join("0123abcd");
    write_tiny_model(&snapshot, &TINY)?;
    std::fs::create_dir_all(repo.join("refs"))?;
    std::fs::write(repo.join("refs").join("main"), "0123abcd")?;
    Ok((cache, snapshot))
}

#[test]
fn missing_tokenizer_names_the_directory_and_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(dir.path(), &TINY)?;
    std::fs::remove_file(dir.path().join("tokenizer.json"))?;
    let err = load_err(spec(dir.path())?, &LoadOptions::default())?;
    assert_eq!(
        err.to_string(),
        format!(
            "model directory `{}` is missing `tokenizer.json`",
            dir.path().display()
        )
    );
    Ok(())
}

#[test]
fn missing_directory_is_named() -> anyhow::Result<()> {
    let err = load_err("./no/such/model", &LoadOptions::default())?;
    assert_eq!(
        err.to_string(),
        "model directory `./no/such/model` does not exist"
    );
    Ok(())
}

#[test]
fn corrupt_weights_name_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(dir.path(), &TINY)?;
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors")?;
    let err = load_err(spec(dir.path())?, &LoadOptions::default())?;
    let weights = dir.path().join("model.safetensors");
    assert_eq!(
        err.to_string(),
        format!("could not load weights `{}`", weights.display())
    );
    assert!(std::error::Error::source(&err).is_some(), "cause is kept");
    Ok(())
}

#[test]
fn unknown_architecture_is_refused_naming_config_json() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(dir.path(), &TINY)?;
    let mut config = crate::support::bert_config();
    config["model_type"] = "xlm-roberta".into();
    std::fs::write(dir.path().join("config.json"), config.to_string())?;
    let err = load_err(spec(dir.path())?, &LoadOptions::default())?;
    assert_eq!(
        err.to_string(),
        format!(
            "unsupported architecture `xlm-roberta` in `{}`",
            dir.path().join("config.json").display()
        )
    );
    Ok(())
}

#[test]
fn hub_ids_resolve_through_the_cache_refs() -> anyhow::Result<()> {
    let (cache, snapshot) = cache_with("acme/tiny-embedder")?;
    let opts = LoadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let model = EmbeddingModel::load("acme/tiny-embedder", &opts)?;
    assert!(
        model.id().starts_with("acme/tiny-embedder@"),
        "{}",
        model.id()
    );
    assert_eq!(model.model_dir(), snapshot);

    // The same snapshot given as a directory keeps its hub id, so caches keyed by id agree.
    let by_path = EmbeddingModel::load(spec(&snapshot)?, &LoadOptions::default())?;
    assert_eq!(by_path.id(), model.id());
    Ok(())
}

#[test]
fn bge_alias_gets_the_bge_query_instruction() -> anyhow::Result<()> {
    let (cache, snapshot) = cache_with(resolve_alias("bge-small"))?;
    // Like the published BGE files: no query prompt in the sentence-transformers config.
    std::fs::write(
        snapshot.join("config_sentence_transformers.json"),
        r#"{"prompts": {}}"#,
    )?;
    let opts = LoadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let model = EmbeddingModel::load("bge-small", &opts)?;
    assert!(model.id().starts_with("BAAI/bge-small-en-v1.5@"));
    assert_eq!(model.query_prompt(), Some(BGE_QUERY_INSTRUCTION));
    Ok(())
}

#[test]
fn uncached_model_says_where_it_looked() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let opts = LoadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let message = load_err("granite", &opts)?.to_string();
    assert!(
        message.starts_with(&format!(
            "model `ibm-granite/granite-embedding-small-english-r2` is not in the Hugging Face \
             cache at `{}`\nhint: ",
            cache.path().display()
        )),
        "{message}"
    );
    Ok(())
}

#[cfg(not(feature = "hub"))]
#[test]
fn downloads_need_the_hub_feature() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let opts = LoadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        allow_download: true,
        ..LoadOptions::default()
    };
    let message = load_err("bge-small", &opts)?.to_string();
    assert!(message.contains("no `hub` feature"), "{message}");
    Ok(())
}

#[test]
fn zero_threads_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_model(dir.path(), &TINY)?;
    let opts = LoadOptions {
        threads: Some(0),
        ..LoadOptions::default()
    };
    let err = load_err(spec(dir.path())?, &opts)?;
    assert_eq!(
        err.to_string(),
        "invalid thread count `0` from `LoadOptions::threads`: expected a positive integer"
    );
    Ok(())
}

/// Downloads from a stand-in hub (no route to the real one here): the model
/// lands in the cache in `huggingface_hub`'s layout and loads from there,
/// the hub gone, the next time.
#[cfg(feature = "hub")]
#[test]
fn a_missing_model_is_downloaded_into_the_cache() -> anyhow::Result<()> {
    use py_code_mode_test_support::{FAKE_COMMIT, FakeHub};

    let files = tempfile::tempdir()?;
    write_tiny_model(files.path(), &TINY)?;
    let hub = FakeHub::serve("test-org/tiny", files.path());
    let cache = tempfile::tempdir()?;
    let online = LoadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        allow_download: true,
        endpoint: Some(hub.endpoint()),
        ..LoadOptions::default()
    };
    let model = EmbeddingModel::load("test-org/tiny", &online)?;
    assert!(model.id().starts_with("test-org/tiny"), "{}", model.id());
    assert!(hub.requests() > 0);
    let snapshot = cache
        .path()
        .join("models--test-org--tiny/snapshots")
        .join(FAKE_COMMIT);
    assert!(
        snapshot.join("config.json").is_file(),
        "cached like huggingface_hub"
    );
    let vector = model.embed_query("hello world")?;
    drop(hub);

    let offline = LoadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let again = EmbeddingModel::load("test-org/tiny", &offline)?;
    assert_eq!(again.embed_query("hello world")?, vector);
    Ok(())
}

#[cfg(feature = "hub")]
#[test]
fn a_download_missing_a_required_file_names_it() -> anyhow::Result<()> {
    use py_code_mode_test_support::FakeHub;

    let files = tempfile::tempdir()?;
    write_tiny_model(files.path(), &TINY)?;
    std::fs::remove_file(files.path().join("tokenizer.json"))?;
    let hub = FakeHub::serve("test-org/broken", files.path());
    let cache = tempfile::tempdir()?;
    let opts = LoadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        allow_download: true,
        endpoint: Some(hub.endpoint()),
        ..LoadOptions::default()
    };
    let message = load_err("test-org/broken", &opts)?.to_string();
    assert!(
        message.contains("test-org/broken") && message.contains("tokenizer.json"),
        "{message}"
    );
    Ok(())
}
