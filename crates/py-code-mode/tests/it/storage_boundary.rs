//! FileStorage as a boundary: one item is one atomic rename, nothing below the
//! library's folders is trusted, one bad file never breaks the library, and
//! several processes (killed or not) never leave a mixed or half-written item.

use std::hash::{BuildHasher as _, RandomState};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode::{
    ArtifactKind, ArtifactMeta, FileStorage, ItemKind, SkillRecord, Storage, StorageError,
    StorageProblem,
};
use py_code_mode_test_support::TempLibrary;
use serde_json::json;

use crate::{ok, session};

/// How long a storage call may take before the test calls it blocked.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

fn artifact(name: &str, description: &str, metadata: &serde_json::Value) -> ArtifactMeta {
    ArtifactMeta {
        name: name.to_owned(),
        kind: ArtifactKind::Text,
        description: description.to_owned(),
        metadata: metadata.as_object().cloned().unwrap_or_default(),
        size: 0,
        created_at: jiff::Timestamp::UNIX_EPOCH,
        updated_at: jiff::Timestamp::now(),
    }
}

fn skill(name: &str, source: &str, description: &str) -> SkillRecord {
    SkillRecord {
        name: name.to_owned(),
        source: source.to_owned(),
        description: description.to_owned(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
        updated_at: jiff::Timestamp::now(),
        provenance: None,
    }
}

/// Files (not folders) below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one story: an old library, read then rewritten"
)]
async fn an_item_is_one_file_and_libraries_of_the_old_layout_still_load() -> anyhow::Result<()> {
    let library = TempLibrary::new();
    // A library as earlier versions wrote it: data and metadata apart.
    library.write("skills/old.py", "def run():\n    return 'old'\n");
    library.write(
        "skills/.meta/old.json",
        r#"{"description": "An old skill", "created_at": "2025-01-02T03:04:05Z", "updated_at": "2025-01-03T03:04:05Z"}"#,
    );
    library.write(
        "skills/by_hand.py",
        "\"\"\"Dropped in by hand.\"\"\"\n\ndef run():\n    return 1\n",
    );
    library.write("artifacts/data.json", r#"{"hosts": [1, 2]}"#);
    library.write(
        "artifacts/.meta/data.json.json",
        r#"{"name": "data.json", "type": "json", "description": "scan", "metadata": {"k": 1}, "size": 17, "created_at": "2025-01-02T03:04:05Z", "updated_at": "2025-01-02T03:04:05Z"}"#,
    );
    library.write("artifacts/scans/host.txt", "open ports");
    library.write(
        "artifacts/.meta/scans/host.txt.json",
        r#"{"name": "scans/host.txt", "type": "text", "description": "nested", "size": 10, "created_at": "2025-01-02T03:04:05Z", "updated_at": "2025-01-02T03:04:05Z"}"#,
    );
    library.write("artifacts/hand.bin", "\u{0}raw");
    let storage = FileStorage::open(library.path())?;

    let old = storage.get_skill("old").await?.expect("old skill");
    assert_eq!(
        (
            old.source.as_str(),
            old.description.as_str(),
            old.created_at.to_string()
        ),
        (
            "def run():\n    return 'old'\n",
            "An old skill",
            "2025-01-02T03:04:05Z".to_owned()
        )
    );
    let by_hand = storage
        .get_skill("by_hand")
        .await?
        .expect("hand-written skill");
    assert_eq!(
        by_hand.description, "",
        "the docstring is used above the backend"
    );
    let (meta, data) = storage
        .get_artifact("data.json")
        .await?
        .expect("old artifact");
    assert_eq!(
        (
            meta.kind,
            meta.description.as_str(),
            meta.metadata.get("k"),
            data.as_slice()
        ),
        (
            ArtifactKind::Json,
            "scan",
            Some(&json!(1)),
            br#"{"hosts": [1, 2]}"#.as_slice()
        )
    );
    let listed: Vec<(String, ArtifactKind, String, u64)> = storage
        .list_artifacts()
        .await?
        .into_iter()
        .map(|m| (m.name, m.kind, m.description, m.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("data.json".into(), ArtifactKind::Json, "scan".into(), 17),
            ("hand.bin".into(), ArtifactKind::Text, String::new(), 4),
            (
                "scans/host.txt".into(),
                ArtifactKind::Text,
                "nested".into(),
                10
            ),
        ]
    );

    // Saving an item writes one file (metadata inside) and drops the old
    // metadata file: one rename commits the whole item.
    storage
        .put_skill(&skill(
            "old",
            "def run():\n    return 'new'\n",
            "A coding: latin-1 skill",
        ))
        .await?;
    storage
        .put_artifact(
            &artifact("scans/host.txt", "rescanned", &json!({"v": 2})),
            b"closed",
        )
        .await?;
    assert_eq!(
        files_below(library.path()),
        vec![
            "artifacts/.meta/data.json.json",
            "artifacts/data.json",
            "artifacts/hand.bin",
            "artifacts/scans/host.txt",
            "skills/by_hand.py",
            "skills/old.py",
        ]
    );
    let file = std::fs::read_to_string(library.path().join("skills/old.py"))?;
    assert!(file.starts_with("# py-code-mode-skill/1 {"), "{file}");
    assert!(file.ends_with("\ndef run():\n    return 'new'\n"), "{file}");
    assert!(
        !file.lines().next().unwrap_or_default().contains("coding:"),
        "a description cannot declare the file's encoding (PEP 263): {file}"
    );
    let old = storage.get_skill("old").await?.expect("old skill");
    assert_eq!(
        (old.source.as_str(), old.description.as_str()),
        ("def run():\n    return 'new'\n", "A coding: latin-1 skill")
    );
    let (meta, data) = storage
        .get_artifact("scans/host.txt")
        .await?
        .expect("saved");
    assert_eq!(
        (
            meta.description.as_str(),
            meta.metadata.get("v"),
            meta.size,
            data.as_slice()
        ),
        ("rescanned", Some(&json!(2)), 6, b"closed".as_slice())
    );
    assert!(storage.problems().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_backend_itself_refuses_names_that_escape_its_folders() -> anyhow::Result<()> {
    let library = TempLibrary::new();
    let storage = FileStorage::open(library.path().join("lib"))?;
    let escapes = [
        "../escape.txt",
        "a/../../escape.txt",
        "/tmp/abs",
        ".meta/x",
        "a//b",
    ];
    for name in escapes {
        let put = storage
            .put_artifact(&artifact(name, "", &json!({})), b"x")
            .await;
        assert!(
            matches!(put, Err(StorageError::Name(_))),
            "put {name}: {put:?}"
        );
        let get = storage.get_artifact(name).await;
        assert!(
            matches!(get, Err(StorageError::Name(_))),
            "get {name}: {get:?}"
        );
        let delete = storage.delete_artifact(name).await;
        assert!(
            matches!(delete, Err(StorageError::Name(_))),
            "delete {name}: {delete:?}"
        );
    }
    for name in ["../evil", "a/b", "x.y", ""] {
        let put = storage
            .put_skill(&skill(name, "def run(): pass\n", ""))
            .await;
        assert!(
            matches!(put, Err(StorageError::Name(_))),
            "put skill {name}: {put:?}"
        );
        let get = storage.get_skill(name).await;
        assert!(
            matches!(get, Err(StorageError::Name(_))),
            "get skill {name}: {get:?}"
        );
    }
    assert!(storage.put_tool("../x.yaml", "name: x").await.is_err());
    assert!(storage.cache_put("../x", b"x").await.is_err());
    assert_eq!(
        files_below(library.path()),
        Vec::<String>::new(),
        "nothing written anywhere"
    );
    Ok(())
}

#[tokio::test]
async fn a_planted_symlink_is_never_followed_on_load_or_save() -> anyhow::Result<()> {
    let library = TempLibrary::new();
    let outside = tempfile::tempdir()?;
    std::fs::write(outside.path().join("secret.txt"), "TOP-SECRET")?;
    let storage = FileStorage::open(library.path())?;
    storage
        .put_artifact(&artifact("kept.txt", "", &json!({})), b"kept")
        .await?;
    // An artifact that is a link out of the library, with and without the
    // metadata file an earlier version kept apart.
    let artifacts = library.path().join("artifacts");
    symlink(outside.path().join("secret.txt"), artifacts.join("leak"))?;
    symlink(outside.path().join("secret.txt"), artifacts.join("leak2"))?;
    library.write(
        "artifacts/.meta/leak2.json",
        r#"{"name": "leak2", "type": "text", "size": 10, "created_at": "2025-01-02T03:04:05Z", "updated_at": "2025-01-02T03:04:05Z"}"#,
    );
    // A subfolder that is a link out of the library.
    symlink(outside.path(), artifacts.join("sub"))?;

    for name in ["leak", "leak2", "sub/secret.txt"] {
        match storage.get_artifact(name).await {
            Err(StorageError::Refused { reason, .. }) => {
                assert!(reason.contains("symbolic link"), "{name}: {reason}");
            }
            other => panic!("{name} was not refused: {other:?}"),
        }
    }
    let saved = storage
        .put_artifact(
            &artifact("sub/planted.txt", "", &json!({})),
            b"written outside",
        )
        .await;
    assert!(
        matches!(saved, Err(StorageError::Refused { .. })),
        "{saved:?}"
    );
    assert_eq!(
        files_below(outside.path()),
        vec!["secret.txt"],
        "nothing written outside"
    );

    let names: Vec<String> = storage
        .list_artifacts()
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, vec!["kept.txt"]);
    let problems: Vec<(ItemKind, String)> = storage
        .problems()
        .await?
        .into_iter()
        .map(|p| {
            (
                p.kind,
                p.location.rsplit('/').next().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            (ItemKind::Artifact, "leak".into()),
            (ItemKind::Artifact, "leak2".into()),
            (ItemKind::Artifact, "sub".into()),
        ]
    );

    // Agent code gets a clear error and never the file's content.
    let session = session(&library).await;
    let result = session.run("artifacts.load('leak')").await?;
    assert!(!result.to_text().contains("TOP-SECRET"));
    let error = result.error.expect("refused");
    assert_eq!(error.kind, "StorageError");
    assert!(error.message.contains("symbolic link"), "{}", error.message);
    session.close().await;
    Ok(())
}

/// Runs `work` on a runtime of its own in another thread and fails the test if
/// it has not finished by `deadline`: a call blocked in the kernel (a FIFO
/// read on the runtime) would otherwise hang the test instead of failing it.
fn within<T: Send + 'static>(
    deadline: Duration,
    work: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let _ = tx.send(runtime.block_on(work));
        // Not dropped: a thread stuck in a FIFO read would make the drop wait.
        std::mem::forget(runtime);
    });
    rx.recv_timeout(deadline)
        .unwrap_or_else(|_| panic!("storage calls still blocked after {deadline:?}"))
}

#[test]
fn a_fifo_planted_as_an_item_gives_a_clear_error_and_blocks_nothing() -> anyhow::Result<()> {
    let library = TempLibrary::new().with_tool(
        "echo.yaml",
        "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n",
    );
    let storage = Arc::new(FileStorage::open(library.path())?);
    let base = library.path().to_path_buf();
    // As agent code can: save an artifact, then swap its file for a FIFO. With
    // the metadata file an earlier version kept apart, too.
    library.write(
        "artifacts/.meta/pipe2.json",
        r#"{"name": "pipe2", "type": "text", "size": 1, "created_at": "2025-01-02T03:04:05Z", "updated_at": "2025-01-02T03:04:05Z"}"#,
    );
    for path in [
        "artifacts/pipe",
        "artifacts/pipe2",
        "skills/piped.py",
        "tools/piped.yaml",
    ] {
        // Opening a library makes no folders (issue 12): the attacker would.
        if let Some(parent) = base.join(path).parent() {
            std::fs::create_dir_all(parent)?;
        }
        nix::unistd::mkfifo(
            &base.join(path),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )?;
    }
    let errors = within(CALL_DEADLINE, {
        let storage = Arc::clone(&storage);
        async move {
            storage
                .put_artifact(&artifact("other.txt", "", &json!({})), b"other")
                .await?;
            // More blocked reads than the runtime has threads, and other calls
            // in between: every one must be answered.
            let mut loads = Vec::new();
            for i in 0..8 {
                let storage = Arc::clone(&storage);
                let name = if i % 2 == 0 { "pipe" } else { "pipe2" };
                loads.push(tokio::spawn(
                    async move { storage.get_artifact(name).await },
                ));
            }
            let other = storage.get_artifact("other.txt").await?.map(|(_, d)| d);
            assert_eq!(other.as_deref(), Some(b"other".as_slice()));
            let listed = storage.list_artifacts().await?;
            assert_eq!(listed.len(), 1, "{listed:?}");
            assert_eq!(storage.list_skills().await?, Vec::new());
            assert_eq!(storage.tool_sources().await?.len(), 1);
            let mut errors = Vec::new();
            for load in loads {
                errors.push(load.await?.expect_err("a FIFO is no artifact").to_string());
            }
            anyhow::Ok(errors)
        }
    })?;
    for error in errors {
        assert!(error.contains("a FIFO, not a regular file"), "{error}");
    }
    let problems = within(CALL_DEADLINE, {
        let storage = Arc::clone(&storage);
        async move { storage.problems().await }
    })?;
    let kinds: Vec<ItemKind> = problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ItemKind::Tool,
            ItemKind::Skill,
            ItemKind::Artifact,
            ItemKind::Artifact
        ],
        "{problems:?}"
    );

    // Through a session: agent code plants the FIFO itself and keeps working.
    within(CALL_DEADLINE * 2, async move {
        let session = session(&library).await;
        let planted = base.join("artifacts/mine");
        ok(
            &session,
            &format!(
                "import os\nartifacts.save('mine', 'x')\nos.remove({p:?})\nos.mkfifo({p:?})",
                p = planted.display().to_string()
            ),
        )
        .await;
        let result = session.run("artifacts.load('mine')").await.expect("run");
        let error = result.error.expect("refused");
        assert!(error.message.contains("FIFO"), "{}", error.message);
        let result = ok(&session, "sorted(a.name for a in artifacts.list())").await;
        assert_eq!(result.value, Some(json!(["other.txt"])));
        assert_eq!(
            ok(&session, "tools.echo(text='still here').strip()")
                .await
                .value,
            Some(json!("still here"))
        );
        session.close().await;
    });
    Ok(())
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one library with every kind of bad file"
)]
async fn one_bad_file_is_skipped_and_reported_while_the_rest_works() -> anyhow::Result<()> {
    let library = TempLibrary::new()
        .with_tool(
            "echo.yaml",
            "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n",
        )
        .with_skill(
            "good",
            "\"\"\"Say hello.\"\"\"\n\ndef run():\n    return 'hello'\n",
        )
        .with_skill("broken_meta", "def run():\n    return 1\n");
    let write_bytes = |relative: &str, bytes: &[u8]| {
        let path = library.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    write_bytes("tools/latin1.yaml", b"name: caf\xe9\ntype: cli\n");
    write_bytes("skills/latin1.py", b"def run():\n    return 'caf\xe9'\n");
    write_bytes("skills/.meta/broken_meta.json", b"{\"description\": ");
    write_bytes("skills/huge.py", &vec![b'#'; 3 * 1024 * 1024]);
    write_bytes("artifacts/ok.txt", b"fine");
    write_bytes("artifacts/broken.json", b"{}");
    write_bytes("artifacts/.meta/broken.json.json", b"not json");
    write_bytes(
        "artifacts/header.txt",
        b"py-code-mode-artifact/1 {\"type\": 7}\nx",
    );

    let storage = FileStorage::open(library.path())?;
    let tools: Vec<String> = storage
        .tool_sources()
        .await?
        .iter()
        .map(|t| t.file_name().to_owned())
        .collect();
    assert_eq!(tools, vec!["echo.yaml"]);
    let skills: Vec<String> = storage
        .list_skills()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(skills, vec!["good"]);
    let artifacts: Vec<String> = storage
        .list_artifacts()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(artifacts, vec!["ok.txt"]);
    let base = library.path().display().to_string();
    let problems: Vec<(ItemKind, String, String)> = storage
        .problems()
        .await?
        .into_iter()
        .map(
            |StorageProblem {
                 kind,
                 location,
                 reason,
             }| {
                let reason = reason.split(':').next().unwrap_or_default().to_owned();
                (kind, location.replace(&base, "<base>"), reason)
            },
        )
        .collect();
    assert_eq!(
        problems,
        vec![
            (
                ItemKind::Tool,
                "<base>/tools/latin1.yaml".into(),
                "not UTF-8".into()
            ),
            (
                ItemKind::Skill,
                "<base>/skills/broken_meta.py".into(),
                "its metadata is not valid".into()
            ),
            (
                ItemKind::Skill,
                "<base>/skills/huge.py".into(),
                "it holds 3145728 bytes, more than the 2097152 bytes the library reads".into()
            ),
            (
                ItemKind::Skill,
                "<base>/skills/latin1.py".into(),
                "not UTF-8".into()
            ),
            (
                ItemKind::Artifact,
                "<base>/artifacts/broken.json".into(),
                "its metadata is not valid".into()
            ),
            (
                ItemKind::Artifact,
                "<base>/artifacts/header.txt".into(),
                "its metadata is not valid".into()
            ),
        ]
    );
    // Reading a bad item by name says what is wrong with it.
    let error = storage.get_skill("latin1").await.expect_err("not UTF-8");
    assert!(
        error
            .to_string()
            .contains("latin1.py` is corrupt: not UTF-8"),
        "{error}"
    );

    // A session over the library starts, and agent code lists, searches and
    // calls everything else.
    let session = session(&library).await;
    let result = ok(
        &session,
        "([t.name for t in tools.list()], [s.name for s in skills.list()], [s.name for s in skills.search('hello')], skills.good(), [a.name for a in artifacts.list()], artifacts.load('ok.txt'))",
    )
    .await;
    assert_eq!(
        result.value,
        Some(json!([
            ["echo"],
            ["good"],
            ["good"],
            "hello",
            ["ok.txt"],
            "fine"
        ]))
    );
    session.close().await;
    Ok(())
}

// ----- several processes ------------------------------------------------

/// What a save-loop child does, from `PCM_SAVE_LOOP`: `<base>\t<writer>\t<saves>`
/// (`0` saves: until killed).
const SAVE_LOOP_ENV: &str = "PCM_SAVE_LOOP";

/// The data a writer saves at step `i`: the version in data and metadata alike,
/// with enough bytes that a write is not a single page.
fn version_data(version: &str) -> Vec<u8> {
    format!("{version}\n").repeat(500).into_bytes()
}

/// The helper process of the save-loop tests (run by them, not on its own):
/// saves the artifact `same.txt` and the skill `same` over and over, each save
/// carrying its version in the data and in the metadata.
#[tokio::test]
#[ignore = "a helper process the save-loop tests start"]
async fn save_loop_child() -> anyhow::Result<()> {
    let spec = std::env::var(SAVE_LOOP_ENV)?;
    let [base, writer, saves] = spec.split('\t').collect::<Vec<_>>()[..] else {
        anyhow::bail!("bad {SAVE_LOOP_ENV}: {spec}");
    };
    let saves: u64 = saves.parse()?;
    let storage = FileStorage::open(base)?;
    let mut i = 0_u64;
    while saves == 0 || i < saves {
        let version = format!("{writer}:{i}");
        storage
            .put_artifact(
                &artifact("same.txt", &version, &json!({"version": version})),
                &version_data(&version),
            )
            .await?;
        storage
            .put_skill(&skill(
                "same",
                &format!("def run():\n    return {version:?}\n"),
                &version,
            ))
            .await?;
        i += 1;
    }
    Ok(())
}

/// A save-loop child, killed (`SIGKILL`) and reaped on drop, so a failing
/// test leaves no endless writer behind.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_save_loop(base: &Path, writer: &str, saves: u64) -> Writer {
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "storage_boundary::save_loop_child",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(
            SAVE_LOOP_ENV,
            format!("{}\t{writer}\t{saves}", base.display()),
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the save loop");
    Writer(child)
}

/// Reads both items and checks each is whole: data and metadata of one write.
/// Returns the artifact's version, if it exists yet.
async fn read_whole(storage: &FileStorage) -> Option<String> {
    let artifact = storage
        .get_artifact("same.txt")
        .await
        .expect("read artifact");
    let version = artifact.map(|(meta, data)| {
        let version = meta.description.clone();
        assert_eq!(
            meta.metadata.get("version"),
            Some(&json!(version)),
            "mixed metadata"
        );
        assert_eq!(meta.size, data.len() as u64);
        assert!(
            data == version_data(&version),
            "data of another write than {version}"
        );
        version
    });
    if let Some(skill) = storage.get_skill("same").await.expect("read skill") {
        assert_eq!(
            skill.source,
            format!("def run():\n    return {:?}\n", skill.description),
            "source and description of different writes"
        );
    }
    version
}

/// Everything below the library except the two items and the (empty)
/// temporary folders: leftovers of writes.
fn stray_files(base: &Path) -> Vec<String> {
    files_below(base)
        .into_iter()
        .filter(|f| f != "artifacts/same.txt" && f != "skills/same.py")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_saving_one_name_never_mix_versions() -> anyhow::Result<()> {
    const SAVES: u64 = 1000;
    let library = TempLibrary::new();
    let storage = FileStorage::open(library.path())?;
    let mut writers = [
        spawn_save_loop(library.path(), "a", SAVES),
        spawn_save_loop(library.path(), "b", SAVES),
    ];
    let mut reads = 0_u64;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        if let Some(version) = read_whole(&storage).await {
            seen.insert(version.split(':').next().unwrap_or_default().to_owned());
            reads += 1;
        }
        let mut running = 0;
        for writer in &mut writers {
            match writer.0.try_wait()? {
                Some(status) => assert!(status.success(), "a writer failed: {status}"),
                None => running += 1,
            }
        }
        if running == 0 {
            break;
        }
    }
    assert!(reads > 10, "only {reads} reads overlapped the writers");
    let last = read_whole(&storage).await.expect("the artifact exists");
    assert!(
        last == format!("a:{}", SAVES - 1) || last == format!("b:{}", SAVES - 1),
        "{last}"
    );
    assert_eq!(stray_files(library.path()), Vec::<String>::new());
    eprintln!("{reads} whole reads while two processes saved {SAVES} times each ({seen:?})");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_save_loop_leaves_whole_items_and_no_temporary_files() -> anyhow::Result<()>
{
    const ROUNDS: usize = 8;
    let library = TempLibrary::new();
    let random = RandomState::new();
    let mut leftovers_swept = 0;
    for round in 0..ROUNDS {
        let writer = format!("k{round}");
        let storage = FileStorage::open(library.path())?;
        let mut child = spawn_save_loop(library.path(), &writer, 0);
        // Wait until this writer's saves land, then kill it at a random moment.
        let started = Instant::now();
        while !read_whole(&storage)
            .await
            .is_some_and(|v| v.starts_with(&format!("{writer}:")))
        {
            assert!(
                started.elapsed() < CALL_DEADLINE,
                "round {round}: no save landed"
            );
            assert!(
                child.0.try_wait()?.is_none(),
                "round {round}: the writer exited"
            );
        }
        let pause = random.hash_one(round) % 20_000;
        std::thread::sleep(Duration::from_micros(pause));
        drop(child); // SIGKILL, then reaped

        // A crash leaves the old item or the new one, whole; the next open
        // sweeps the temporary file of the write it interrupted.
        leftovers_swept += stray_files(library.path()).len();
        let storage = FileStorage::open(library.path())?;
        let version = read_whole(&storage).await.expect("the artifact survives");
        assert!(version.starts_with(&format!("{writer}:")), "{version}");
        assert_eq!(
            stray_files(library.path()),
            Vec::<String>::new(),
            "round {round}"
        );
    }
    eprintln!("{ROUNDS} kills; {leftovers_swept} interrupted temporary files swept at open");
    Ok(())
}
