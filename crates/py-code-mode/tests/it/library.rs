//! Skills and artifacts through agent code, persisted in a folder.

use pretty_assertions::assert_eq;
use py_code_mode_test_support::{TempLibrary, binary, python};
use serde_json::json;

use crate::{ok, session};

const ECHO_TOOL: &str = "name: echo\ntype: cli\nargs: '{text}'\ndescription: print text back\n";

#[tokio::test]
async fn skills_are_created_invoked_and_survive_a_restart_with_their_description() {
    let library = TempLibrary::new().with_tool("echo.yaml", ECHO_TOOL);
    let session = session(&library).await;
    ok(
        &session,
        r#"skills.create(
    name="shout",
    code='def run(text: str) -> str:\n    return tools.echo(text=text).strip().upper()',
    description="Shout text back in capitals",
)"#,
    )
    .await;
    assert_eq!(
        ok(&session, "skills.shout(text='hi')").await.value,
        Some(json!("HI"))
    );
    assert_eq!(
        ok(&session, "skills.invoke('shout', text='yo')")
            .await
            .value,
        Some(json!("YO"))
    );
    session.close().await;

    // A new session (a restart) finds the skill, its description and its source.
    let session = session_again(&library).await;
    let result = ok(&session, "s = skills.get('shout')\n(s.name, s.description, s.parameters[0]['name'], 'upper' in s.source)").await;
    assert_eq!(
        result.value,
        Some(json!([
            "shout",
            "Shout text back in capitals",
            "text",
            true
        ]))
    );
    let found = session.search_skills("capitals", 5).await.expect("search");
    assert_eq!(found.first().map(|s| s.item.name.as_str()), Some("shout"));
    session.close().await;
}

async fn session_again(library: &TempLibrary) -> py_code_mode::Session {
    session(library).await
}

#[tokio::test]
async fn async_skills_calling_tools_and_other_skills_work_from_sync_and_async_code() {
    let library = TempLibrary::new()
        .with_tool("echo.yaml", ECHO_TOOL)
        .with_skill("base", "def run(x: str) -> str:\n    return tools.echo(text=x).strip()\n")
        .with_skill(
            "twice",
            "\"\"\"Echo twice.\"\"\"\nimport asyncio\n\nasync def run(x: str) -> str:\n    await asyncio.sleep(0)\n    return skills.base(x=x) + skills.base(x=x)\n",
        );
    let session = session(&library).await;
    assert_eq!(
        ok(&session, "skills.twice(x='ab')").await.value,
        Some(json!("abab"))
    );
    // Called from a coroutine, the async skill must not deadlock the running loop.
    let result = ok(
        &session,
        "async def main():\n    return skills.twice(x='c')\nawait main()",
    )
    .await;
    assert_eq!(result.value, Some(json!("cc")));
    session.close().await;
}

#[tokio::test]
async fn invalid_skill_source_is_rejected_and_nothing_is_written() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    for (code, expect) in [
        ("def run(:\n    pass", "syntax error at line 1"),
        (
            "def helper():\n    return 1",
            "defines no top-level `run()`",
        ),
    ] {
        let result = session
            .run(&format!(
                "skills.create(name='bad', code={code:?}, description='x')"
            ))
            .await
            .expect("run");
        let error = result.error.expect("rejected");
        assert_eq!(error.kind, "SkillError");
        assert!(error.message.contains(expect), "{}", error.message);
    }
    let skills_dir = library.path().join("skills");
    let leftovers: Vec<_> = walk(&skills_dir);
    assert!(leftovers.is_empty(), "files written: {leftovers:?}");
    session.close().await;
}

#[tokio::test]
async fn creating_a_skill_never_runs_it_on_the_host() {
    let library = TempLibrary::new();
    let marker = library.path().join("ran-at-import");
    let session = session(&library).await;
    let source = format!(
        "open({:?}, 'w').write('imported')\ndef run():\n    return 1\n",
        marker.display().to_string()
    );
    ok(
        &session,
        &format!("skills.create(name='sneaky', code={source:?})"),
    )
    .await;
    let listed = session.list_skills().await.expect("list");
    assert!(listed.iter().any(|s| s.name == "sneaky"));
    assert!(
        !marker.exists(),
        "creating or listing a skill executed its module"
    );
    // It runs only when invoked, inside the executor.
    ok(&session, "skills.sneaky()").await;
    assert!(marker.exists());
    session.close().await;
}

#[tokio::test]
async fn names_that_escape_the_folder_are_refused() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    for code in [
        "artifacts.save('../escape.txt', 'x')",
        "artifacts.save('/etc/x', 'x')",
        "artifacts.load('a/../../b')",
        "skills.create(name='../evil', code='def run(): pass')",
        "skills.get('../../etc/passwd')",
    ] {
        let result = session.run(code).await.expect("run");
        let error = result.error.unwrap_or_else(|| panic!("accepted: {code}"));
        assert_eq!(error.kind, "InvalidNameError", "{code}: {}", error.message);
    }
    assert!(!library.path().join("escape.txt").exists());
    session.close().await;
}

#[tokio::test]
async fn artifacts_round_trip_json_text_and_bytes_with_their_type() {
    let library = TempLibrary::new();
    let session = session(&library).await;
    ok(
        &session,
        r##"
artifacts.save("data.json", {"hosts": ["a", "b"], "n": 2}, description="scan results")
artifacts.save("notes.md", "# Notes\n", description="notes")
artifacts.save("blob.bin", bytes(range(256)), metadata={"source": "test"})
"##,
    )
    .await;
    let result = ok(
        &session,
        "(artifacts.load('data.json'), artifacts.load('notes.md'), artifacts.load('blob.bin') == bytes(range(256)), type(artifacts.load('blob.bin')).__name__)",
    )
    .await;
    assert_eq!(
        result.value,
        Some(json!([{"hosts": ["a", "b"], "n": 2}, "# Notes\n", true, "bytes"]))
    );
    let listed = ok(
        &session,
        "[(a.name, a.type, a.description, a.size) for a in artifacts.list()]",
    )
    .await;
    assert_eq!(
        listed.value,
        Some(json!([
            ["blob.bin", "bytes", "", 256],
            ["data.json", "json", "scan results", 25],
            ["notes.md", "text", "notes", 8]
        ]))
    );
    let result = ok(&session, "(artifacts.exists('notes.md'), artifacts.delete('notes.md'), artifacts.exists('notes.md'))").await;
    assert_eq!(result.value, Some(json!([true, true, false])));
    let result = session
        .run("artifacts.load('notes.md')")
        .await
        .expect("run");
    assert_eq!(
        result.error.map(|e| e.kind).as_deref(),
        Some("ArtifactNotFoundError")
    );
    session.close().await;
}

#[test]
fn several_processes_writing_one_folder_lose_nothing() {
    let library = TempLibrary::new();
    let mut children = Vec::new();
    for i in 0..6 {
        let code = format!(
            "skills.create(name='s{i}', code='def run(): return {i}', description='skill {i}')\nartifacts.save('a{i}.txt', 'v{i}')"
        );
        let mut command = std::process::Command::new(binary());
        command
            .arg("--base")
            .arg(library.path())
            .args(["run", "-c", &code]);
        if let Some(python) = python() {
            command.arg("--python").arg(python);
        }
        children.push(command.spawn().expect("spawn py-code-mode"));
    }
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let output = std::process::Command::new(binary())
        .arg("--base")
        .arg(library.path())
        .args([
            "run",
            "-c",
            "(sorted(s.name for s in skills.list()), sorted(a.name for a in artifacts.list()))",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.trim(),
        "(['s0', 's1', 's2', 's3', 's4', 's5'], ['a0.txt', 'a1.txt', 'a2.txt', 'a3.txt', 'a4.txt', 'a5.txt'])"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn skill_search_also_reads_the_docstrings_a_description_replaced() {
    let library = TempLibrary::new().with_tool("echo.yaml", ECHO_TOOL);
    let session = session(&library).await;
    ok(
        &session,
        r#"skills.create(
    name="thumbs",
    code='def run(folder: str):\n    """Resize every picture into a thumbnail."""\n    return folder',
    description="Image helper",
)"#,
    )
    .await;
    let found = session.search_skills("thumbnail", 5).await.expect("search");
    assert_eq!(found.first().map(|s| s.item.name.as_str()), Some("thumbs"));
    assert_eq!(
        found[0].item.description, "Image helper",
        "the listing keeps the given description"
    );
    session.close().await;
}
