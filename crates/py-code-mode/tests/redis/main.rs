//! `RedisStorage` against a real `redis-server` started on a free loopback port.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use py_code_mode::{
    ArtifactData, ArtifactKind, Error, ItemKind, RedisStorage, Session, SkillRecord, Storage,
    StorageError, SubprocessConfig,
};
use py_code_mode_test_support::{RedisServer, python};
use serde_json::{Map, Value, json};

type TestResult = anyhow::Result<()>;

const DOUBLE: &str = "\"\"\"Double a number.\"\"\"\n\ndef run(n: int) -> int:\n    return n * 2\n";

async fn session(storage: RedisStorage) -> anyhow::Result<Session> {
    Ok(Session::builder(Arc::new(storage))
        .executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
        .build()
        .await?)
}

fn meta(pairs: &Value) -> Map<String, Value> {
    pairs.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one story: every item type in and out"
)]
async fn every_item_type_round_trips() -> TestResult {
    let server = RedisServer::start();
    let storage = RedisStorage::connect(&server.url(), "agent").await?;
    storage
        .put_tool(
            "echo.yaml",
            "name: echo\ntype: cli\ncommand: echo\nargs: \"{text}\"\ndescription: Print text\n",
        )
        .await?;
    storage.cache_put("emb-abc123", b"\x00\x01\xff").await?;
    let session = session(storage.clone()).await?;

    let skill = session
        .add_skill("double", DOUBLE, "Doubles numbers quickly")
        .await?;
    let got = session.get_skill("double").await?;
    assert_eq!(got, skill);
    assert_eq!(got.source, DOUBLE);
    assert_eq!(got.info.description, "Doubles numbers quickly");
    assert_eq!(got.info.parameters[0].name, "n");

    let items = [
        (
            "data/result.json",
            ArtifactData::Json {
                value: json!({"hosts": [1, 2], "ok": true}),
            },
        ),
        (
            "notes.md",
            ArtifactData::Text {
                value: "# héllo\n".into(),
            },
        ),
        (
            "blob.bin",
            ArtifactData::Bytes {
                base64: "AAH/gA==".into(),
            },
        ),
    ];
    for (name, data) in &items {
        session
            .save_artifact(
                name,
                data,
                "a description",
                meta(&json!({"source": "test"})),
            )
            .await?;
    }
    for (name, data) in &items {
        assert_eq!(&session.load_artifact(name).await?, data, "{name}");
    }
    let listed: Vec<(String, ArtifactKind, String, Map<String, Value>)> = session
        .list_artifacts()
        .await?
        .into_iter()
        .map(|m| (m.name, m.kind, m.description, m.metadata))
        .collect();
    let source = meta(&json!({"source": "test"}));
    assert_eq!(
        listed,
        vec![
            (
                "blob.bin".into(),
                ArtifactKind::Bytes,
                "a description".into(),
                source.clone()
            ),
            (
                "data/result.json".into(),
                ArtifactKind::Json,
                "a description".into(),
                source.clone()
            ),
            (
                "notes.md".into(),
                ArtifactKind::Text,
                "a description".into(),
                source
            ),
        ]
    );

    let tools: Vec<String> = session
        .list_tools()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tools, vec!["echo"]);
    assert_eq!(
        storage.cache_get("emb-abc123").await?,
        Some(b"\x00\x01\xff".to_vec())
    );
    assert_eq!(storage.cache_get("missing").await?, None);

    assert!(session.delete_artifact("notes.md").await?);
    assert!(!session.delete_artifact("notes.md").await?);
    assert!(session.remove_skill("double").await?);
    assert!(session.list_skills().await?.is_empty());

    // Every key lives under the prefix, named as docs/storage.md says.
    let keys = server.command(&["KEYS", "*"]);
    let mut keys: Vec<&str> = keys
        .lines()
        .filter(|l| !l.starts_with(['*', '$']))
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "agent:artifact:blob.bin",
            "agent:artifact:data/result.json",
            "agent:artifacts",
            "agent:cache:emb-abc123",
            // A deleted skill keeps its history until purged (docs/skills.md).
            "agent:skill-history:double",
            "agent:tools",
        ]
    );
    session.close().await;
    Ok(())
}

#[tokio::test]
async fn prefixes_are_isolated_tenants() -> TestResult {
    let server = RedisServer::start();
    let a = session(RedisStorage::connect(&server.url(), "team-a").await?).await?;
    let b_storage = RedisStorage::connect(&server.url(), "team-b").await?;
    let b = session(b_storage.clone()).await?;

    a.add_skill("port_scan", DOUBLE, "Scan network ports of a host")
        .await?;
    a.save_artifact(
        "scan.json",
        &ArtifactData::Json {
            value: json!([22, 80]),
        },
        "",
        Map::new(),
    )
    .await?;
    a.host().storage().cache_put("k", b"a's").await?;

    assert!(b.list_skills().await?.is_empty());
    assert!(b.search_skills("scan network ports", 5).await?.is_empty());
    assert!(b.list_artifacts().await?.is_empty());
    assert!(b.get_skill("port_scan").await.is_err());
    assert_eq!(b_storage.cache_get("k").await?, None);
    // b's writes and deletes under the same names leave a's items alone.
    assert!(!b.remove_skill("port_scan").await?);
    b.add_skill("port_scan", "def run():\n    return 'b'\n", "b's own")
        .await?;
    assert!(!b.delete_artifact("scan.json").await?);

    let found = a.search_skills("scan network ports", 5).await?;
    assert_eq!(found.len(), 1);
    assert_eq!(
        a.get_skill("port_scan").await?.info.description,
        "Scan network ports of a host"
    );
    assert_eq!(
        a.load_artifact("scan.json").await?,
        ArtifactData::Json {
            value: json!([22, 80])
        }
    );
    assert_eq!(b.get_skill("port_scan").await?.info.description, "b's own");

    // Agent code sees the same separation.
    let listed = b
        .run("[s['name'] for s in skills.list()], artifacts.list()")
        .await?;
    assert_eq!(
        listed.value,
        Some(json!([["port_scan"], []])),
        "{}",
        listed.to_text()
    );
    a.close().await;
    b.close().await;
    Ok(())
}

#[tokio::test]
async fn bad_prefixes_and_names_never_become_keys() -> TestResult {
    let server = RedisServer::start();
    for prefix in ["", "a:b", "a*", "x y"] {
        let err = RedisStorage::connect(&server.url(), prefix)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("prefix"), "{prefix:?}: {err}");
    }
    let storage = RedisStorage::connect(&server.url(), "p").await?;
    let now = jiff::Timestamp::now();
    for name in ["../x", "a:b", "x*", "q/../r", "list"] {
        let record = SkillRecord {
            name: name.into(),
            source: DOUBLE.into(),
            description: String::new(),
            created_at: now,
            updated_at: now,
            provenance: None,
        };
        assert!(
            matches!(storage.put_skill(&record).await, Err(StorageError::Name(_))),
            "{name}"
        );
        assert!(
            matches!(storage.get_skill(name).await, Err(StorageError::Name(_))),
            "{name}"
        );
    }
    for name in ["../etc/passwd", "a:b", "x/.meta", ""] {
        assert!(
            matches!(
                storage.artifact_meta(name).await,
                Err(StorageError::Name(_))
            ),
            "{name}"
        );
    }
    assert!(storage.put_tool("../x.yaml", "name: x").await.is_err());
    assert!(storage.cache_put("a:b", b"").await.is_err());
    // Nothing was written.
    assert_eq!(server.command(&["DBSIZE"]), ":0\r\n");

    // A member planted in an index by another client is skipped, not followed.
    server.command(&["SADD", "p:skills", "../evil", "a:b"]);
    server.command(&["HSET", "p:skill:../evil", "source", DOUBLE]);
    assert!(storage.list_skills().await?.is_empty());

    // Agent code gets the invalid-name error.
    let session = session(storage).await?;
    let result = session
        .run("skills.create(name='a:b', source='def run(): pass')")
        .await?;
    let error = result.error.as_ref().map(|e| e.kind.clone());
    assert_eq!(
        error.as_deref(),
        Some("InvalidNameError"),
        "{}",
        result.to_text()
    );
    session.close().await;
    Ok(())
}

#[tokio::test]
async fn a_redis_restart_fails_calls_clearly_then_they_work_again() -> TestResult {
    let mut server = RedisServer::start_with_password(Some("s3cret-pw"));
    let storage = RedisStorage::connect(&server.url(), "agent").await?;
    let session = session(storage).await?;
    session
        .add_skill("double", DOUBLE, "before the crash")
        .await?;

    server.kill();
    let started = Instant::now();
    let err = session.list_skills().await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", server.port())),
        "{message}"
    );
    assert!(message.contains("Redis unreachable"), "{message}");
    assert!(
        !message.contains("s3cret-pw"),
        "the password leaked: {message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failing took {:?}",
        started.elapsed()
    );
    // Agent code sees a StorageError, and the worker survives it.
    let result = session.run("skills.list()").await?;
    assert_eq!(
        result.error.map(|e| e.kind).as_deref(),
        Some("StorageError")
    );

    server.restart();
    // What was acknowledged before the crash is there; new writes work.
    let skill = session.get_skill("double").await?;
    assert_eq!(skill.info.description, "before the crash");
    session
        .add_skill("triple", "def run(n):\n    return n * 3\n", "after")
        .await?;
    let result = session
        .run("skills.triple(n=2) + skills.double(n=1)")
        .await?;
    assert_eq!(result.value, Some(json!(8)), "{}", result.to_text());
    session.close().await;
    Ok(())
}

#[tokio::test]
async fn agent_code_shares_skills_and_artifacts_across_sessions() -> TestResult {
    let server = RedisServer::start();
    let first = session(RedisStorage::connect(&server.url(), "shared").await?).await?;
    let code = r#"
skills.create(name="greet", code='def run(who: str) -> str:\n    return "hi " + who\n', description="Say hello to someone")
artifacts.save("report.json", {"open": [22]}, description="Scan results")
artifacts.save("raw.bin", b"\x00\xff")
artifacts.save("note.txt", "plain")
skills.greet(who="ann")
"#;
    let result = first.run(code).await?;
    assert_eq!(result.value, Some(json!("hi ann")), "{}", result.to_text());

    // A second session (its own connection and worker) sees them without a restart.
    let second = session(RedisStorage::connect(&server.url(), "shared").await?).await?;
    let check = r#"
names = [a["name"] for a in artifacts.list()]
(
    [s["name"] for s in skills.list()],
    skills.search("hello someone")[0]["name"],
    skills.get("greet").description,
    names,
    all(type(n) is str for n in names),
    type(artifacts.load("raw.bin")).__name__,
    artifacts.load("report.json"),
    artifacts.load("note.txt"),
    skills.greet(who="bob"),
)
"#;
    let result = second.run(check).await?;
    assert_eq!(
        result.value,
        Some(json!([
            ["greet"],
            "greet",
            "Say hello to someone",
            ["note.txt", "raw.bin", "report.json"],
            true,
            "bytes",
            {"open": [22]},
            "plain",
            "hi bob"
        ])),
        "{}",
        result.to_text()
    );
    first.close().await;
    second.close().await;
    Ok(())
}

/// The cache calls `py-code-mode index` and restarts use, on both backends:
/// many keys at once, listing by prefix, deleting; prefixes stay apart.
#[tokio::test]
async fn cache_entries_are_read_together_listed_and_deleted() -> TestResult {
    let server = RedisServer::start();
    let dir = tempfile::tempdir()?;
    let backends: [(Arc<dyn Storage>, Arc<dyn Storage>); 2] = [
        (
            Arc::new(RedisStorage::connect(&server.url(), "one").await?),
            Arc::new(RedisStorage::connect(&server.url(), "two").await?),
        ),
        (
            Arc::new(py_code_mode::FileStorage::open(dir.path().join("one"))?),
            Arc::new(py_code_mode::FileStorage::open(dir.path().join("two"))?),
        ),
    ];
    for (storage, other) in backends {
        let keys: Vec<String> = (0..600).map(|i| format!("emb-m1-{i:04}")).collect();
        for key in &keys {
            storage.cache_put(key, key.as_bytes()).await?;
        }
        storage.cache_put("emb-m2-0000", b"other model").await?;
        other.cache_put("emb-m1-9999", b"other prefix").await?;

        let mut wanted = keys.clone();
        wanted.push("emb-m1-absent".into());
        let blobs = storage.cache_get_many(&wanted).await?;
        assert_eq!(blobs.len(), 601, "{}", storage.location());
        assert_eq!(blobs[599].as_deref(), Some(&b"emb-m1-0599"[..]));
        assert_eq!(blobs[600], None);

        let mut listed = storage.cache_keys("emb-m1-").await?;
        listed.sort();
        assert_eq!(listed, keys, "this model's keys only, this prefix only");
        assert_eq!(storage.cache_keys("emb-m3-").await?, Vec::<String>::new());

        assert!(storage.cache_delete("emb-m1-0000").await?);
        assert!(!storage.cache_delete("emb-m1-0000").await?);
        assert_eq!(storage.cache_get("emb-m1-0000").await?, None);
        assert_eq!(storage.cache_keys("emb-m1-").await?.len(), 599);
        assert_eq!(other.cache_keys("emb-").await?, ["emb-m1-9999"]);
        assert!(storage.cache_delete("../escape").await.is_err());
    }
    Ok(())
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one library with every kind of bad entry"
)]
async fn one_corrupt_entry_is_skipped_and_reported_not_fatal_to_listings() -> TestResult {
    let server = RedisServer::start();
    let storage = RedisStorage::connect(&server.url(), "t").await?;
    let session = session(storage.clone()).await?;
    session.add_skill("double", DOUBLE, "Doubles").await?;
    session
        .save_artifact(
            "ok.txt",
            &ArtifactData::Text {
                value: "fine".into(),
            },
            "",
            Map::new(),
        )
        .await?;
    storage
        .put_tool(
            "echo.yaml",
            "name: echo\ntype: cli\ncommand: echo\nargs: \"{text}\"\ndescription: Print text\n",
        )
        .await?;
    // Entries another client wrote wrong: bytes that are not UTF-8, metadata
    // that is not JSON, a hash missing its fields, a name that is no name.
    let client = redis::Client::open(server.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let now = jiff::Timestamp::now().to_string();
    redis::pipe()
        .cmd("HSET")
        .arg("t:skill:latin1")
        .arg("source")
        .arg(b"def run():\n    return 'caf\xe9'\n".as_slice())
        .arg("created_at")
        .arg(&now)
        .arg("updated_at")
        .arg(&now)
        .cmd("HSET")
        .arg("t:skill:untimed")
        .arg("source")
        .arg(DOUBLE)
        .cmd("SADD")
        .arg("t:skills")
        .arg("latin1")
        .arg("untimed")
        .arg("no-name")
        .cmd("HSET")
        .arg("t:artifact:broken.json")
        .arg("meta")
        .arg("{not json")
        .arg("data")
        .arg("x")
        .cmd("SADD")
        .arg("t:artifacts")
        .arg("broken.json")
        .cmd("HSET")
        .arg("t:tools")
        .arg("latin1.yaml")
        .arg(b"name: caf\xe9\n".as_slice())
        .exec_async(&mut conn)
        .await?;

    let skills: Vec<String> = storage
        .list_skills()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(skills, vec!["double"]);
    let artifacts: Vec<String> = storage
        .list_artifacts()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(artifacts, vec!["ok.txt"]);
    assert_eq!(storage.tool_sources().await?.len(), 1);
    let problems: Vec<(ItemKind, String, String)> = storage
        .problems()
        .await?
        .into_iter()
        .map(|p| (p.kind, p.location, p.reason))
        .collect();
    assert_eq!(
        problems,
        vec![
            (
                ItemKind::Tool,
                "t:tools field `latin1.yaml`".into(),
                "not UTF-8: invalid utf-8 sequence of 1 bytes from index 9".into()
            ),
            (
                ItemKind::Skill,
                "t:skill:latin1".into(),
                "`source` is not UTF-8".into()
            ),
            (
                ItemKind::Skill,
                "t:skill:untimed".into(),
                "`created_at` is missing".into()
            ),
            (
                ItemKind::Skill,
                "t:skills member `no-name`".into(),
                "skill name `no-name` is not allowed: it may hold only letters, digits and `_` (a Python identifier)".into()
            ),
            (
                ItemKind::Artifact,
                "t:artifact:broken.json".into(),
                "`meta`: key must be a string at line 1 column 2".into()
            ),
        ]
    );
    // Agent code lists, searches and calls the rest.
    let result = session
        .run("([s.name for s in skills.list()], [s.name for s in skills.search('double')], skills.double(n=2), [a.name for a in artifacts.list()])")
        .await?;
    assert_eq!(
        result.value,
        Some(json!([["double"], ["double"], 4, ["ok.txt"]])),
        "{}",
        result.to_text()
    );
    session.close().await;
    Ok(())
}

#[tokio::test]
async fn the_deps_list_is_one_key_per_prefix() -> TestResult {
    let server = RedisServer::start();
    let a = RedisStorage::connect(&server.url(), "deps-a").await?;
    let b = RedisStorage::connect(&server.url(), "deps-b").await?;
    assert_eq!(a.deps_get().await?, None);
    a.deps_put("six\npandas>=2\n").await?;
    // A new connection (a restart) reads it back; another prefix does not see it.
    let again = RedisStorage::connect(&server.url(), "deps-a").await?;
    assert_eq!(again.deps_get().await?.as_deref(), Some("six\npandas>=2\n"));
    assert_eq!(b.deps_get().await?, None);
    Ok(())
}

#[tokio::test]
async fn skill_versions_update_roll_back_and_survive_a_restart_in_redis() -> TestResult {
    let server = RedisServer::start();
    let storage = RedisStorage::connect(&server.url(), "agent").await?;
    // A skill saved before history existed is kept as a version of its own.
    let now = jiff::Timestamp::now();
    storage
        .put_skill(&SkillRecord {
            name: "double".into(),
            source: DOUBLE.into(),
            description: "old".into(),
            created_at: now,
            updated_at: now,
            provenance: None,
        })
        .await?;
    let session = Session::builder(Arc::new(storage))
        .executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
        .session_id("agent-r")
        .build()
        .await?;
    let result = session
        .run("skills.create('double', 'def run(n: int):\\n    return n * 3', 'triple')\n[(h.version, h.session, h.description) for h in skills.history('double')]")
        .await?;
    assert_eq!(
        result.value,
        Some(json!([[2, "agent-r", "triple"], [1, "", "old"]]))
    );
    let result = session
        .run("skills.rollback('double', 1)\n(skills.double(n=2), skills.get('double').version, skills.get('double', version=2).description)")
        .await?;
    assert_eq!(result.value, Some(json!([4, 3, "triple"])));
    let created = session.get_skill("double").await?.info.created_at;
    assert_eq!(created, now, "created_at is the first version's");
    session.close().await;

    // A new connection (a restart) reads the same provenance; delete keeps history.
    let storage = RedisStorage::connect(&server.url(), "agent").await?;
    let history = storage.skill_history("double").await?;
    assert_eq!(
        history
            .iter()
            .map(|v| (
                v.provenance.version,
                v.provenance.rollback_of,
                v.provenance.session.as_str()
            ))
            .collect::<Vec<_>>(),
        vec![(3, Some(1), "agent-r"), (2, None, "agent-r"), (1, None, "")]
    );
    assert!(storage.delete_skill("double").await?);
    assert_eq!(storage.skill_history("double").await?.len(), 3);
    assert!(storage.purge_skill("double").await?);
    assert!(storage.skill_history("double").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_listing_reads_the_lean_listed_field_and_the_provenance_of_older_hashes() -> TestResult {
    let server = RedisServer::start();
    let storage = RedisStorage::connect(&server.url(), "lean").await?;
    let session = session(storage.clone()).await?;
    session.add_skill("double", DOUBLE, "Doubles").await?;
    session.add_skill("double", DOUBLE, "Doubles again").await?;
    let client = redis::Client::open(server.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let listed: Option<String> = redis::cmd("HGET")
        .arg("lean:skill:double")
        .arg("listed")
        .query_async(&mut conn)
        .await?;
    assert_eq!(listed.as_deref(), Some(r#"{"version":2,"tools":{}}"#));
    // A hash as a build before the `listed` field wrote it: version and tools
    // in `provenance` only.
    let now = jiff::Timestamp::now().to_string();
    redis::pipe()
        .cmd("HSET")
        .arg("lean:skill:older")
        .arg("source")
        .arg("def run():\n    return tools.echo(text='x')\n")
        .arg("description")
        .arg("")
        .arg("created_at")
        .arg(&now)
        .arg("updated_at")
        .arg(&now)
        .arg("provenance")
        .arg(r#"{"version":7,"session":"s","run":null,"hash":"","tools":{"echo":"echo(text?: string)"}}"#)
        .ignore()
        .cmd("SADD")
        .arg("lean:skills")
        .arg("older")
        .ignore()
        .query_async::<()>(&mut conn)
        .await?;
    let entries = storage.list_skill_entries().await?;
    let summary: Vec<(String, Option<u64>, Vec<String>)> = entries
        .into_iter()
        .map(|e| (e.name, e.version, e.tools.into_keys().collect()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("double".to_owned(), Some(2), vec![]),
            ("older".to_owned(), Some(7), vec!["echo".to_owned()]),
        ]
    );
    // A skill saved without history lists without a version.
    let at = jiff::Timestamp::now();
    storage
        .put_skill(&SkillRecord {
            name: "plain".into(),
            source: DOUBLE.into(),
            description: String::new(),
            created_at: at,
            updated_at: at,
            provenance: None,
        })
        .await?;
    let plain = storage
        .list_skill_entries()
        .await?
        .into_iter()
        .find(|e| e.name == "plain")
        .map(|e| e.version);
    assert_eq!(plain, Some(None));
    session.close().await;
    Ok(())
}

#[tokio::test]
async fn redis_history_is_bounded() -> TestResult {
    let server = RedisServer::start();
    let storage = RedisStorage::connect(&server.url(), "agent").await?;
    let session = Session::builder(Arc::new(storage)).build().await?;
    let total = py_code_mode::MAX_SKILL_HISTORY + 3;
    for i in 1..=total {
        session
            .add_skill("counter", &format!("def run():\n    return {i}\n"), "")
            .await?;
    }
    let history = session.skill_history("counter").await?;
    assert_eq!(history.len(), py_code_mode::MAX_SKILL_HISTORY);
    assert_eq!(history[0].provenance.version, total as u64);
    Ok(())
}

/// How many versions each writer process commits.
const WRITES_PER_PROCESS: usize = 20;

/// Run as a child process by the test below: commits versions of `shared`.
#[tokio::test]
#[ignore = "a helper the concurrency test runs in child processes"]
async fn helper_commit_versions() -> TestResult {
    let Ok(url) = std::env::var("PY_CODE_MODE_TEST_REDIS_URL") else {
        return Ok(());
    };
    let writer = std::env::var("PY_CODE_MODE_TEST_WRITER").unwrap_or_default();
    let storage = RedisStorage::connect(&url, "agent").await?;
    let session = Session::builder(Arc::new(storage))
        .session_id(&writer)
        .build()
        .await?;
    for i in 0..WRITES_PER_PROCESS {
        session
            .add_skill(
                "shared",
                &format!("def run():\n    return '{writer}-{i}'\n"),
                "",
            )
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_updates_from_two_processes_leave_a_consistent_history_in_redis() -> TestResult {
    let server = RedisServer::start();
    let exe = std::env::current_exe()?;
    let children = ["w1", "w2"]
        .iter()
        .map(|writer| {
            std::process::Command::new(&exe)
                .args(["--ignored", "--exact", "helper_commit_versions"])
                .env("PY_CODE_MODE_TEST_REDIS_URL", server.url())
                .env("PY_CODE_MODE_TEST_WRITER", writer)
                .stdout(std::process::Stdio::null())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success(), "a writer failed");
    }
    let storage = RedisStorage::connect(&server.url(), "agent").await?;
    let history = storage.skill_history("shared").await?;
    let versions: Vec<u64> = history.iter().map(|v| v.provenance.version).collect();
    let expected: Vec<u64> = (1..=(2 * WRITES_PER_PROCESS) as u64).rev().collect();
    assert_eq!(
        versions, expected,
        "every save got its own number, none lost"
    );
    let current = storage
        .get_skill("shared")
        .await?
        .ok_or_else(|| anyhow::anyhow!("`shared` is missing"))?;
    assert_eq!(current.source, history[0].source);
    Ok(())
}
