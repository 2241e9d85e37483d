//! The real `py-code-mode` binary against a real `redis-server`: `store
//! push|pull|diff`, the Redis flags, concurrent writers, an unreachable server.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use pretty_assertions::assert_eq;
use py_code_mode::{ArtifactKind, ArtifactMeta, FileStorage, SkillRecord, Storage};
use py_code_mode_test_support::{RedisServer, free_port};
use serde_json::json;

type TestResult = anyhow::Result<()>;

const BIN: &str = env!("CARGO_BIN_EXE_py-code-mode");

fn cli(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    // Offline: no test here may reach the Hugging Face hub for a model.
    cmd.args(args)
        .stdin(Stdio::null())
        .env("HF_HUB_OFFLINE", "1");
    for var in [
        "PY_CODE_MODE_BASE",
        "PY_CODE_MODE_BACKEND",
        "PY_CODE_MODE_REDIS_URL",
        "PY_CODE_MODE_PREFIX",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(args: &[&str]) -> anyhow::Result<Output> {
    Ok(cli(args).output()?)
}

/// stdout with the temp folder's path replaced, and the exit code.
fn report(output: &Output, base: &Path, url: &str) -> (Option<i32>, String) {
    let stdout = String::from_utf8_lossy(&output.stdout)
        .replace(&base.display().to_string(), "[BASE]")
        .replace(url, "[URL]");
    (output.status.code(), stdout)
}

async fn seed_folder(base: &Path) -> anyhow::Result<FileStorage> {
    let folder = FileStorage::open(base)?;
    folder
        .put_tool(
            "echo.yaml",
            "name: echo\ntype: cli\ncommand: echo\nargs: \"{text}\"\ndescription: Print text\n",
        )
        .await?;
    let now = jiff::Timestamp::now();
    folder
        .put_skill(&SkillRecord {
            name: "greet".into(),
            source: "def run(who: str) -> str:\n    return 'hi ' + who\n".into(),
            description: "Say hello".into(),
            created_at: now,
            updated_at: now,
            provenance: None,
        })
        .await?;
    let data = [0u8, 1, 255];
    folder
        .put_artifact(
            &ArtifactMeta {
                name: "scans/raw.bin".into(),
                kind: ArtifactKind::Bytes,
                description: "raw scan".into(),
                metadata: json!({"host": "10.0.0.1"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                size: data.len() as u64,
                created_at: now,
                updated_at: now,
            },
            &data,
        )
        .await?;
    Ok(folder)
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one story: a library moved there and back"
)]
async fn store_push_pull_and_diff_move_a_library() -> TestResult {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir()?;
    let base = dir.path().join("lib");
    let folder = seed_folder(&base).await?;
    let lib = base.to_str().unwrap_or_default();
    let redis = ["--redis", url.as_str(), "--prefix", "team"];
    let with = |args: &[&str]| -> Vec<String> {
        ["--base", lib]
            .iter()
            .chain(&redis)
            .chain(args)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let go = |args: &[&str]| -> anyhow::Result<(Option<i32>, String)> {
        let args = with(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&args)?;
        Ok(report(&output, &base, &url))
    };
    let everything = "\
< tool `echo.yaml` (only in the folder)
< skill `greet` (only in the folder)
< artifact `scans/raw.bin` (only in the folder)
3 only in the folder, 0 only in Redis, 0 differ, 0 same: folder `[BASE]` vs Redis `[URL] (prefix `team`)`
";
    assert_eq!(go(&["store", "diff"])?, (Some(1), everything.to_owned()));

    let dry = go(&["store", "push", "--dry-run"])?;
    assert_eq!(
        dry,
        (
            Some(0),
            "+ tool `echo.yaml`\n+ skill `greet`\n+ artifact `scans/raw.bin`\nwould push 3 new, 0 changed, 0 unchanged: folder `[BASE]` -> Redis `[URL] (prefix `team`)`\n".to_owned()
        )
    );
    assert_eq!(
        go(&["store", "diff"])?,
        (Some(1), everything.to_owned()),
        "a dry run wrote"
    );

    let pushed = go(&["store", "push"])?;
    assert_eq!(pushed.0, Some(0), "{}", pushed.1);
    assert!(
        pushed.1.ends_with(
            "push 3 new, 0 changed, 0 unchanged: folder `[BASE]` -> Redis `[URL] (prefix `team`)`\n"
        ),
        "{}",
        pushed.1
    );
    let again = go(&["store", "push"])?;
    assert_eq!(
        again,
        (Some(0), "push 0 new, 0 changed, 3 unchanged: folder `[BASE]` -> Redis `[URL] (prefix `team`)`\n".to_owned())
    );
    assert_eq!(go(&["store", "diff"])?.0, Some(0));

    // The seed's flags reach the same library; agent code there sees the pushed items.
    let output = run(&[
        "--backend",
        "redis",
        "--url",
        &url,
        "--prefix",
        "team",
        "run",
        "-c",
        "[t['name'] for t in tools.list()], skills.get('greet').description, artifacts.load('scans/raw.bin'), artifacts.list()[0]['metadata']",
    ])?;
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "(['echo'], 'Say hello', b'\\x00\\x01\\xff', {'host': '10.0.0.1'})",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A change made in Redis shows in the diff and comes back with a pull.
    let output = run(&[
        "--redis",
        &url,
        "--prefix",
        "team",
        "run",
        "-c",
        "skills.create(name='greet', source='def run(who):\\n    return \"yo \" + who\\n', description='Say yo'); skills.create(name='shout', source='def run(t):\\n    return t.upper()\\n')",
    ])?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        go(&["store", "diff"])?,
        (
            Some(1),
            "> skill `shout` (only in Redis)\n~ skill `greet` (differs)\n0 only in the folder, 1 only in Redis, 1 differ, 2 same: folder `[BASE]` vs Redis `[URL] (prefix `team`)`\n".to_owned()
        )
    );
    let pulled = go(&["store", "pull"])?;
    assert_eq!(
        pulled,
        (
            Some(0),
            "+ skill `shout`\n~ skill `greet`\npull 1 new, 1 changed, 2 unchanged: Redis `[URL] (prefix `team`)` -> folder `[BASE]`\n".to_owned()
        )
    );
    let greet = folder.get_skill("greet").await?.map(|s| s.description);
    assert_eq!(greet.as_deref(), Some("Say yo"));

    // Pulling into an empty folder rebuilds the whole library.
    let other = dir.path().join("copy");
    let other_lib = other.to_str().unwrap_or_default();
    let output = run(&[
        "--base", other_lib, "--redis", &url, "--prefix", "team", "store", "pull",
    ])?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let copy = FileStorage::open(&other)?;
    assert_eq!(
        std::fs::read_to_string(other.join("tools/echo.yaml"))?,
        std::fs::read_to_string(base.join("tools/echo.yaml"))?
    );
    let (meta, data) = copy
        .get_artifact("scans/raw.bin")
        .await?
        .unwrap_or_else(|| panic!("artifact missing"));
    assert_eq!(
        (meta.kind, meta.description.as_str(), data),
        (ArtifactKind::Bytes, "raw scan", vec![0, 1, 255])
    );
    assert_eq!(meta.metadata.get("host"), Some(&json!("10.0.0.1")));
    let names: Vec<String> = copy
        .list_skills()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["greet", "shout"]);
    Ok(())
}

#[test]
fn concurrent_processes_lose_no_skill() -> TestResult {
    const N: usize = 6;
    let server = RedisServer::start();
    let url = server.url();
    let children = (0..N)
        .map(|i| {
            cli(&[
                "--redis", &url, "--prefix", "crowd", "run", "-c",
                &format!("skills.create(name='skill_{i}', source='def run():\\n    return {i}\\n', description='number {i}')"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for child in children {
        let output = child.wait_with_output()?;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output = run(&["--redis", &url, "--prefix", "crowd", "skills", "list"])?;
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
    let names: Vec<&str> = listed.iter().filter_map(|s| s["name"].as_str()).collect();
    let expected: Vec<String> = (0..N).map(|i| format!("skill_{i}")).collect();
    assert_eq!(names, expected);
    Ok(())
}

#[test]
fn an_unreachable_redis_is_named_without_its_password() -> TestResult {
    let port = free_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let output = cli(&["skills", "list"])
        .env("PY_CODE_MODE_REDIS_URL", &url)
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "Redis unreachable at `redis://:***@127.0.0.1:{port}`"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let output = run(&["--backend", "redis", "skills", "list"])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`--backend redis` needs a Redis URL"),
        "{stderr}"
    );
    Ok(())
}

/// `--redis redis://:pw@…` would put the password in `/proc/<pid>/cmdline`,
/// readable by every process of the user (agent code included): refused
/// before anything connects, with a hint naming the alternatives.
#[test]
fn a_password_on_the_command_line_is_refused() -> TestResult {
    let server = RedisServer::start_with_password(Some("s3cret-pw"));
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}", server.port());
    for flag in ["--redis", "--url"] {
        let output = run(&[flag, &url, "skills", "list"])?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr,
            "error: a password in `--redis` is visible to every process of this user (`/proc/<pid>/cmdline`)\n\
             hint: put the URL in `PY_CODE_MODE_REDIS_URL`, or the password in a file named by `--redis-password-file`\n"
        );
    }
    Ok(())
}

/// The two ways in that keep the password out of argv both reach a Redis
/// that requires it.
#[test]
fn the_password_comes_from_the_environment_or_a_file() -> TestResult {
    let server = RedisServer::start_with_password(Some("s3cret-pw"));
    let bare = format!("redis://127.0.0.1:{}", server.port());
    let base = tempfile::tempdir()?;
    let base = base.path().to_str().unwrap_or_default().to_owned();
    // Save a skill through the environment's URL, read it back through the file.
    let output = cli(&["--prefix", "pw", "run", "-c"])
        .arg("skills.create(name='hello', code='def run():\\n    return 1', description='d')")
        .env(
            "PY_CODE_MODE_REDIS_URL",
            format!("redis://:s3cret-pw@127.0.0.1:{}", server.port()),
        )
        .env("PY_CODE_MODE_BASE", &base)
        .output()?;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let secret = tempfile::NamedTempFile::new()?;
    std::fs::write(secret.path(), "s3cret-pw\n")?;
    let file = secret.path().to_str().unwrap_or_default();
    let output = run(&[
        "--redis",
        &bare,
        "--redis-password-file",
        file,
        "--prefix",
        "pw",
        "skills",
        "list",
    ])?;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "hello");

    // A wrong password in the file is Redis's refusal, not a silent success.
    std::fs::write(secret.path(), "wrong\n")?;
    let output = run(&[
        "--redis",
        &bare,
        "--redis-password-file",
        file,
        "skills",
        "list",
    ])?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("wrong"),
        "the password is not printed: {stderr}"
    );
    Ok(())
}

/// A skill's kept versions (with their provenance) and its recorded cases
/// travel with it, folder -> Redis -> folder; the cases replay in the
/// target, and a second push finds nothing to do.
#[tokio::test]
async fn store_push_and_pull_move_history_and_recorded_cases() -> TestResult {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir()?;
    let base = dir.path().join("lib");
    let folder = FileStorage::open(&base)?;
    folder
        .put_tool(
            "echo.yaml",
            "name: echo\ntype: cli\ncommand: echo\nargs: \"{text}\"\ndescription: Print text\n",
        )
        .await?;
    let lib = base.to_str().unwrap_or_default();
    let agent = |backend: &[&str], code: &str| -> anyhow::Result<String> {
        let mut args = backend.to_vec();
        args.extend([
            "--session-id",
            "agent-a",
            "--no-semantic",
            "run",
            "-c",
            code,
        ]);
        let output = run(&args)?;
        anyhow::ensure!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let in_folder = ["--base", lib];
    let in_redis = ["--redis", url.as_str(), "--prefix", "team"];
    agent(
        &in_folder,
        "skills.create('shout', 'def run(text: str):\\n    return tools.echo(text=text).strip()', 'Echo')\n\
         skills.create('shout', 'def run(text: str):\\n    return tools.echo(text=text).strip().upper()', 'Shout')\n\
         skills.record('shout', 'hi', text='hi')",
    )?;
    let both: Vec<&str> = in_folder.iter().chain(&in_redis).copied().collect();
    let sync = |verb: &str| -> anyhow::Result<(Option<i32>, String)> {
        let mut args = both.clone();
        args.extend(["store", verb]);
        Ok(report(&run(&args)?, &base, &url))
    };
    let pushed = sync("push")?;
    assert_eq!(pushed.0, Some(0), "{}", pushed.1);

    let redis = py_code_mode::RedisStorage::connect(&url, "team").await?;
    let versions = |history: Vec<py_code_mode::SkillVersion>| -> Vec<(u64, String, String)> {
        history
            .into_iter()
            .map(|v| (v.provenance.version, v.description, v.provenance.session))
            .collect()
    };
    let expected = vec![
        (2, "Shout".to_owned(), "agent-a".to_owned()),
        (1, "Echo".to_owned(), "agent-a".to_owned()),
    ];
    assert_eq!(versions(redis.skill_history("shout").await?), expected);
    let cases = folder.skill_cases("shout").await?;
    assert!(cases.is_some(), "the case was recorded in the folder");
    assert_eq!(redis.skill_cases("shout").await?, cases);
    let deps = redis
        .cache_get("recorded-tool-deps.json")
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert!(
        deps.contains("\"shout\"") && deps.contains("\"echo\""),
        "{deps}"
    );
    assert_eq!(
        sync("push")?,
        (
            Some(0),
            "push 0 new, 0 changed, 2 unchanged: folder `[BASE]` -> Redis `[URL] (prefix `team`)`\n"
                .to_owned()
        ),
        "nothing left to copy"
    );

    // The recorded case replays in Redis; a new version there comes back
    // with a pull, the whole history with it.
    assert_eq!(
        agent(
            &in_redis,
            "[(t['case'], t['ok']) for t in skills.test('shout')]"
        )?,
        "[('hi', True)]"
    );
    agent(
        &in_redis,
        "skills.create('shout', 'def run(text: str):\\n    return tools.echo(text=text).strip() + \"!\"', 'Bang')",
    )?;
    let pulled = sync("pull")?;
    assert_eq!(pulled.0, Some(0), "{}", pulled.1);
    assert!(pulled.1.starts_with("~ skill `shout`\n"), "{}", pulled.1);
    let mut expected = expected;
    expected.insert(0, (3, "Bang".to_owned(), "agent-a".to_owned()));
    assert_eq!(versions(folder.skill_history("shout").await?), expected);
    assert_eq!(folder.skill_cases("shout").await?, cases);
    assert_eq!(sync("diff")?.0, Some(0), "the two libraries agree");
    Ok(())
}
