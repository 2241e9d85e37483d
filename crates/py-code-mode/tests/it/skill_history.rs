//! Skill versions, provenance, recorded tests and drift, with a real worker
//! and a real folder library.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use pretty_assertions::assert_eq;
use py_code_mode::{
    FileStorage, FunctionTool, MAX_SKILL_HISTORY, Session, Storage, SubprocessConfig,
};
use py_code_mode_test_support::{TempLibrary, python};
use serde_json::{Value, json};

use crate::ok;

async fn named_session(library: &TempLibrary, id: &str) -> Session {
    let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
    Session::builder(storage)
        .executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
        .session_id(id)
        .timeout(Duration::from_secs(20))
        .build()
        .await
        .expect("build session")
}

#[tokio::test]
async fn update_then_rollback_in_a_folder_keeps_provenance_across_a_restart() {
    let library = TempLibrary::new();
    let session = named_session(&library, "agent-a").await;
    ok(
        &session,
        "skills.create('greet', 'def run(n: str):\\n    return \"hi \" + n', 'Say hi')",
    )
    .await;
    ok(
        &session,
        "skills.create('greet', 'def run(n: str):\\n    return \"yo \" + n', 'Say yo')",
    )
    .await;
    let history = ok(
        &session,
        "[(h.version, h.session, h.run, h.description, h.hash[:7]) for h in skills.history('greet')]",
    )
    .await;
    assert_eq!(
        history.value,
        Some(json!([
            [2, "agent-a", "agent-a/2", "Say yo", "sha256:"],
            [1, "agent-a", "agent-a/1", "Say hi", "sha256:"]
        ])),
        "newest first, the current version included, each with its run"
    );
    let old = ok(&session, "skills.get('greet', version=1).source").await;
    assert!(
        old.value
            .unwrap_or_default()
            .as_str()
            .unwrap_or("")
            .contains("hi ")
    );
    let rolled = ok(
        &session,
        "r = skills.rollback('greet', 1)\n(r.version, skills.greet(n='x'), r.description)",
    )
    .await;
    assert_eq!(rolled.value, Some(json!([3, "hi x", "Say hi"])));
    session.close().await;

    // A restart (another session, another id) sees the same history and provenance.
    let session = named_session(&library, "agent-b").await;
    let current = session.get_skill("greet").await.expect("get");
    assert_eq!(current.info.version, Some(3));
    assert_eq!(current.info.session.as_deref(), Some("agent-a"));
    assert_eq!(
        current.info.run.as_deref(),
        Some("agent-a/5"),
        "the fifth run rolled back"
    );
    let history = session.skill_history("greet").await.expect("history");
    assert_eq!(
        history
            .iter()
            .map(|v| (v.provenance.version, v.provenance.rollback_of))
            .collect::<Vec<_>>(),
        vec![(3, Some(1)), (2, None), (1, None)]
    );
    assert_eq!(history[0].provenance.hash, history[2].provenance.hash);

    // Deleting keeps the history (and a rollback brings the skill back) until purged.
    assert!(session.remove_skill("greet").await.expect("delete"));
    assert_eq!(
        session.skill_history("greet").await.expect("history").len(),
        3
    );
    let back = session.rollback_skill("greet", 2).await.expect("rollback");
    assert_eq!(
        (back.info.version, back.info.session.as_deref()),
        (Some(4), Some("agent-b"))
    );
    assert!(session.remove_skill("greet").await.expect("delete"));
    assert!(session.purge_skill("greet").await.expect("purge"));
    assert!(
        session
            .skill_history("greet")
            .await
            .expect("history")
            .is_empty()
    );
    session.close().await;
}

#[tokio::test]
async fn history_is_bounded() {
    let library = TempLibrary::new();
    let storage = Arc::new(FileStorage::open(library.path()).expect("open"));
    let session = Session::builder(storage)
        .build()
        .await
        .expect("session without runs");
    let total = MAX_SKILL_HISTORY + 5;
    for i in 1..=total {
        session
            .add_skill("counter", &format!("def run():\n    return {i}\n"), "")
            .await
            .expect("save");
    }
    let history = session.skill_history("counter").await.expect("history");
    assert_eq!(history.len(), MAX_SKILL_HISTORY);
    assert_eq!(history[0].provenance.version, total as u64);
    assert_eq!(
        history.last().map(|v| v.provenance.version),
        Some((total - MAX_SKILL_HISTORY + 1) as u64)
    );
    assert_eq!(
        version_files(&library, "counter").len(),
        MAX_SKILL_HISTORY,
        "old versions are removed from disk"
    );

    // Deleted with its first versions long gone, then saved again: the
    // numbers go on from the kept history, never back to 1.
    assert!(session.remove_skill("counter").await.expect("delete"));
    let again = session
        .add_skill("counter", "def run():\n    return 0\n", "")
        .await
        .expect("save after delete");
    assert_eq!(again.info.version, Some(total as u64 + 1));
    let history = session.skill_history("counter").await.expect("history");
    assert_eq!(history.len(), MAX_SKILL_HISTORY);
    assert_eq!(history[1].provenance.version, total as u64);
}

/// The version files of skill `name` in a folder library, sorted.
fn version_files(library: &TempLibrary, name: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(library.path().join("skills/.history"))
        .expect("history folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| {
            f.strip_prefix(&format!("{name}."))
                .is_some_and(|rest| std::path::Path::new(rest).extension() == Some("py".as_ref()))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_version_file_lost_in_a_crash_is_shown_from_the_skill_and_kept_by_the_next_save() {
    let library = TempLibrary::new();
    let session = named_session(&library, "agent-a").await;
    for word in ["hi", "yo"] {
        session
            .add_skill("greet", &format!("def run():\n    return '{word}'\n"), word)
            .await
            .expect("save");
    }
    // A save writes its version file as a second name of the skill file, and
    // syncs only the skills folder: a crash can lose that name and keep the
    // skill. Here the name is removed by hand.
    let lost = library.path().join("skills/.history/greet.0000000002.py");
    std::fs::remove_file(&lost).expect("remove the version file");
    let versions = |history: Vec<py_code_mode::SkillVersion>| {
        history
            .into_iter()
            .map(|v| (v.provenance.version, v.description))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        versions(session.skill_history("greet").await.expect("history")),
        vec![(2, "yo".to_owned()), (1, "hi".to_owned())],
        "the current version is shown from the skill file"
    );
    session
        .add_skill("greet", "def run():\n    return 'hey'\n", "hey")
        .await
        .expect("save");
    assert!(
        lost.is_file(),
        "the next save kept version 2 before replacing it"
    );
    assert_eq!(
        versions(session.skill_history("greet").await.expect("history")),
        vec![
            (3, "hey".to_owned()),
            (2, "yo".to_owned()),
            (1, "hi".to_owned())
        ]
    );
    let two = session
        .get_skill_version("greet", 2)
        .await
        .expect("version 2");
    assert!(two.source.contains("'yo'"), "{}", two.source);
    session.close().await;
}

#[tokio::test]
async fn history_an_earlier_build_kept_in_a_folder_per_skill_is_read_and_moved_by_the_next_save() {
    let library = TempLibrary::new();
    // The layout of the builds before: `.history/<name>/<v>.py` and a lock file.
    let skills = library.path().join("skills");
    let old = skills.join(".history/greet");
    std::fs::create_dir_all(&old).expect("old history folder");
    let file = |version: u64, word: &str| {
        format!(
            "# py-code-mode-skill/1 {{\"description\":\"{word}\",\"created_at\":\"2026-11-30T10:00:00Z\",\"updated_at\":\"2026-11-30T10:0{version}:00Z\",\"provenance\":{{\"version\":{version},\"session\":\"old\",\"run\":null,\"hash\":\"\",\"tools\":{{}}}}}}\ndef run():\n    return '{word}'\n"
        )
    };
    std::fs::write(old.join("0000000001.py"), file(1, "hi")).expect("write");
    std::fs::write(old.join("0000000002.py"), file(2, "yo")).expect("write");
    std::fs::write(old.join(".lock"), "").expect("write");
    std::fs::write(skills.join("greet.py"), file(2, "yo")).expect("write");
    let session = named_session(&library, "agent-a").await;
    let numbers = |history: Vec<py_code_mode::SkillVersion>| {
        history
            .iter()
            .map(|v| v.provenance.version)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        numbers(session.skill_history("greet").await.expect("history")),
        vec![2, 1]
    );
    session
        .add_skill("greet", "def run():\n    return 'hey'\n", "hey")
        .await
        .expect("save");
    assert_eq!(
        numbers(session.skill_history("greet").await.expect("history")),
        vec![3, 2, 1]
    );
    assert!(
        !old.exists(),
        "the old folder is gone once its versions moved"
    );
    assert_eq!(
        version_files(&library, "greet"),
        vec![
            "greet.0000000001.py",
            "greet.0000000002.py",
            "greet.0000000003.py"
        ]
    );
    let one = session
        .get_skill_version("greet", 1)
        .await
        .expect("version 1");
    assert_eq!(one.info.description, "hi");

    // A file of someone else's left in an old folder keeps the folder, and
    // the save still goes through.
    let kept = skills.join(".history/wave");
    std::fs::create_dir_all(&kept).expect("old history folder");
    std::fs::write(kept.join("0000000001.py"), file(1, "hi")).expect("write");
    std::fs::write(kept.join("notes.txt"), "mine").expect("write");
    std::fs::write(skills.join("wave.py"), file(1, "hi")).expect("write");
    let saved = session
        .add_skill("wave", "def run():\n    return 'bye'\n", "bye")
        .await
        .expect("save beside a file left in the old folder");
    assert_eq!(saved.info.version, Some(2));
    assert!(kept.join("notes.txt").is_file());
    assert_eq!(
        numbers(session.skill_history("wave").await.expect("history")),
        vec![2, 1]
    );
    session.close().await;
}

/// How many versions each writer process commits.
const WRITES_PER_PROCESS: usize = 20;

/// Run as a child process by the test below: commits versions of `shared`.
#[tokio::test]
#[ignore = "a helper the concurrency test runs in child processes"]
async fn helper_commit_versions() {
    let Ok(dir) = std::env::var("PY_CODE_MODE_TEST_HISTORY_DIR") else {
        return;
    };
    let writer = std::env::var("PY_CODE_MODE_TEST_WRITER").unwrap_or_default();
    let storage = Arc::new(FileStorage::open(&dir).expect("open"));
    let session = Session::builder(storage)
        .session_id(&writer)
        .build()
        .await
        .expect("session");
    for i in 0..WRITES_PER_PROCESS {
        session
            .add_skill(
                "shared",
                &format!("def run():\n    return '{writer}-{i}'\n"),
                "",
            )
            .await
            .expect("save");
    }
}

#[tokio::test]
async fn concurrent_updates_from_two_processes_leave_a_consistent_history() {
    let library = TempLibrary::new();
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = ["w1", "w2"]
        .iter()
        .map(|writer| {
            std::process::Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "skill_history::helper_commit_versions",
                ])
                .env("PY_CODE_MODE_TEST_HISTORY_DIR", library.path())
                .env("PY_CODE_MODE_TEST_WRITER", writer)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn writer")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "a writer failed");
    }
    let storage = FileStorage::open(library.path()).expect("open");
    let history = storage.skill_history("shared").await.expect("history");
    let versions: Vec<u64> = history.iter().map(|v| v.provenance.version).collect();
    let expected: Vec<u64> = (1..=(2 * WRITES_PER_PROCESS) as u64).rev().collect();
    assert_eq!(
        versions, expected,
        "every save got its own number, none lost"
    );
    let current = storage
        .get_skill("shared")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        current.provenance.as_ref().map(|p| p.version),
        Some(2 * WRITES_PER_PROCESS as u64)
    );
    assert_eq!(
        current.source, history[0].source,
        "the current version is the newest kept"
    );
    for writer in ["w1", "w2"] {
        assert_eq!(
            history
                .iter()
                .filter(|v| v.provenance.session == writer)
                .count(),
            WRITES_PER_PROCESS
        );
    }
}

/// A weather API on a loopback port; the handle stops it.
async fn weather_api() -> (u16, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/weather/{city}",
        get(|Path(city): Path<String>| async move {
            axum::Json(json!({"city": city, "celsius": city.len() * 3}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().map(|a| a.port()).expect("port");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, server)
}

fn weather_yaml(port: u16) -> String {
    format!(
        "name: weather\ntype: http\nbase_url: http://127.0.0.1:{port}\ntimeout: 2\ndescription: Weather\nendpoints:\n  - name: get\n    path: /weather/{{city}}\n    description: temperature of a city\n"
    )
}

const FORECAST: &str = "def run(city: str):\n    return tools.weather.get(city=city)['celsius']\n";

#[tokio::test]
async fn a_recorded_case_replays_offline_with_the_tool_server_stopped() {
    let (port, server) = weather_api().await;
    let library = TempLibrary::new().with_tool("weather.yaml", &weather_yaml(port));
    let session = named_session(&library, "recorder").await;
    session
        .add_skill("forecast", FORECAST, "Temperature of a city")
        .await
        .expect("create");
    let recorded = ok(&session, "skills.record('forecast', 'paris', city='Paris')").await;
    assert_eq!(recorded.value, Some(json!(15)));
    // The tool server goes away: live calls fail, the replay does not need it.
    server.abort();
    let _ = server.await;
    let live = session
        .run("tools.weather.get(city='Paris')")
        .await
        .expect("run");
    assert!(live.error.is_some(), "the server is really stopped");
    let started = std::time::Instant::now();
    let reports = session.test_skill("forecast").await.expect("test");
    let elapsed = started.elapsed();
    assert_eq!(
        serde_json::to_value(&reports).expect("json"),
        json!([{"case": "paris", "ok": true, "diff": ""}])
    );
    // A figure for the notes, not a timed assertion.
    eprintln!("replay of one recorded case: {elapsed:?}");
    let from_code = ok(
        &session,
        "[(r.case, r.ok) for r in skills.test('forecast')]",
    )
    .await;
    assert_eq!(from_code.value, Some(json!([["paris", true]])));
    session.close().await;
}

#[tokio::test]
async fn a_skill_changed_to_call_a_tool_differently_fails_its_case_with_a_diff() {
    let (port, _server) = weather_api().await;
    let library = TempLibrary::new().with_tool("weather.yaml", &weather_yaml(port));
    let session = named_session(&library, "recorder").await;
    session
        .add_skill("forecast", FORECAST, "")
        .await
        .expect("create");
    ok(&session, "skills.record('forecast', 'paris', city='Paris')").await;
    let changed =
        "def run(city: str):\n    return tools.weather.get(city=city.upper())['celsius']\n";
    // Asked to, an update whose cases fail is refused and nothing is saved.
    let refused = session
        .run(&format!(
            "skills.create('forecast', {changed:?}, require_passing=True)"
        ))
        .await
        .expect("run");
    let message = refused.error.map(|e| e.message).unwrap_or_default();
    assert!(message.contains("was not updated"), "{message}");
    assert_eq!(
        session
            .get_skill("forecast")
            .await
            .expect("get")
            .info
            .version,
        Some(1)
    );
    // Otherwise the update is saved and the failing case reported to the caller.
    let saved = ok(
        &session,
        &format!(
            "r = skills.create('forecast', {changed:?})\n(r.version, [t.ok for t in r.tests])"
        ),
    )
    .await;
    assert_eq!(saved.value, Some(json!([2, [false]])));
    let reports = session.test_skill("forecast").await.expect("test");
    assert_eq!(reports.len(), 1);
    assert!(!reports[0].ok);
    assert_eq!(
        reports[0].diff.lines().take(3).collect::<Vec<_>>(),
        vec![
            "call 1: expected `tools.weather.get(city=\"Paris\")`, got `tools.weather.get(city=\"PARIS\")`",
            "  - city=\"Paris\"",
            "  + city=\"PARIS\"",
        ]
    );
    session.close().await;
}

#[tokio::test]
async fn record_and_test_do_not_take_the_skills_parameters() {
    // `name` and `case` are positional-only: a skill may have parameters of those names.
    let library = TempLibrary::new();
    let session = named_session(&library, "a").await;
    session
        .add_skill(
            "label",
            "def run(name: str, case: str):\n    return f'{name}:{case}'\n",
            "",
        )
        .await
        .expect("create");
    let value = ok(
        &session,
        "skills.record('label', 'one', name='n', case='c')",
    )
    .await;
    assert_eq!(value.value, Some(Value::String("n:c".into())));
    let reports = session.test_skill("label").await.expect("test");
    assert!(reports[0].ok, "{}", reports[0].diff);
    session.close().await;
}

#[tokio::test]
async fn a_tool_reached_only_by_a_recorded_call_makes_the_skill_stale_when_it_changes() {
    let library = TempLibrary::new().with_tool(
        "echo.yaml",
        "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n",
    );
    let session = named_session(&library, "a").await;
    // The tool's name is computed: parsing the source cannot see it.
    let source =
        "def run(tool: str, text: str):\n    return tools.call(tool, {'text': text}).strip()\n";
    let saved = session
        .add_skill("relay", source, "")
        .await
        .expect("create");
    assert!(saved.info.tools.is_empty(), "no static dependency");
    ok(
        &session,
        "skills.record('relay', 'echo', tool='echo', text='hi')",
    )
    .await;
    let listed = session.list_skills().await.expect("list");
    assert_eq!(listed[0].stale, None);
    session.close().await;

    library.write(
        "tools/echo.yaml",
        "name: echo\ntype: cli\nargs: '{words}'\ndescription: print text back\n",
    );
    let session = named_session(&library, "a").await;
    let listed = session.list_skills().await.expect("list");
    assert_eq!(
        listed[0].stale.as_deref(),
        Some("tool `echo` changed: `echo(text?: string)` is now `echo(words?: string)`")
    );
    // The recording still answers a replay; only a failing case names the change.
    let reports = session.test_skill("relay").await.expect("test");
    assert!(
        reports[0].ok,
        "the recording still answers: {}",
        reports[0].diff
    );
    session.close().await;
}

/// Two overlapping `Session::run` calls (as two MCP requests or
/// `asyncio.gather` in the facade make them): the second, started while the
/// first is recording a case and waiting in a tool, must neither clear the
/// first's recording nor lend it its run id. Without the session's run gate
/// the second call's setup does both at its first poll.
#[tokio::test]
async fn an_overlapping_run_does_not_mix_recording_state_or_run_ids() {
    let library = TempLibrary::new();
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let released = Arc::clone(&release);
    let gate = FunctionTool::new("gate", move |_| {
        let (entered, release) = (entered_tx.clone(), Arc::clone(&released));
        async move {
            let _ = entered.send(());
            release.notified().await;
            Ok(json!("open"))
        }
    })
    .description("Waits until the test opens it");
    let storage = Arc::new(FileStorage::open(library.path()).expect("open storage"));
    let session = Session::builder(storage)
        .executor(SubprocessConfig {
            python: python(),
            ..SubprocessConfig::default()
        })
        .session_id("agent-a")
        .function(gate)
        .timeout(Duration::from_secs(30))
        .build()
        .await
        .expect("build session");
    session
        .add_skill(
            "slow",
            "def run():\n    return tools.gate()\n",
            "Waits for the gate",
        )
        .await
        .expect("add skill");
    let first = session.run(
        "r = skills.record('slow', 'c1')\nskills.create('made_by_first', 'def run():\\n    return 1')\nr",
    );
    let second = session.run("skills.create('made_by_second', 'def run():\\n    return 2')");
    let mut first = std::pin::pin!(first);
    let mut second = std::pin::pin!(second);
    tokio::time::timeout(Duration::from_mins(1), async {
        tokio::select! {
            r = &mut first => panic!("the first run ended before its tool call: {r:?}"),
            _ = entered.recv() => {}
        }
        // The second run starts (one poll) while the first waits in `gate`.
        tokio::select! {
            biased;
            r = &mut second => panic!("the second run ended while the first ran: {r:?}"),
            () = std::future::ready(()) => {}
        }
        release.notify_one();
        let (first, second) = tokio::join!(first, second);
        let first = first.expect("first run");
        assert!(first.is_ok(), "first run: {}", first.to_text());
        assert_eq!(first.value, Some(json!("open")));
        let second = second.expect("second run");
        assert!(second.is_ok(), "second run: {}", second.to_text());
    })
    .await
    .expect("the runs end within a minute");
    let cases = session.host().cases("slow").await.expect("cases");
    assert_eq!(
        cases.cases.keys().collect::<Vec<_>>(),
        ["c1"],
        "the first run's recording was kept"
    );
    for (skill, run) in [
        ("made_by_first", "agent-a/1"),
        ("made_by_second", "agent-a/2"),
    ] {
        let saved = session.get_skill(skill).await.expect("get skill");
        assert_eq!(saved.info.run.as_deref(), Some(run), "the run of `{skill}`");
    }
    session.close().await;
}
