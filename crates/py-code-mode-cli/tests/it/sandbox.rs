//! The sandbox as the command's default executor, and its flags.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use py_code_mode_test_support::{TempLibrary, binary, python};

fn command(library: &TempLibrary, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("--base")
        .arg(library.path())
        .arg("--no-semantic")
        .args(args)
        .env_remove("PY_CODE_MODE_EXECUTOR")
        .stdin(Stdio::null());
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    command
}

fn run(library: &TempLibrary, args: &[&str]) -> Output {
    command(library, args).output().expect("run py-code-mode")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_sandbox_reports_its_layers_and_is_the_default_here() {
    let library = TempLibrary::new();
    let out = run(&library, &["sandbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for layer in ["namespaces", "landlock", "seccomp", "cgroups"] {
        assert_eq!(status[layer]["active"], true, "{layer}: {status}");
    }
    // With no `--executor`, agent code does not see the library it runs on.
    let code = format!(
        "import os\ntry:\n    os.listdir({:?}); seen = True\nexcept OSError:\n    seen = False\nseen",
        library.path().display().to_string()
    );
    let out = run(&library, &["run", "-c", &code]);
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(0), "False\n".to_owned(), String::new())
    );
    let out = run(&library, &["--executor", "subprocess", "run", "-c", &code]);
    assert_eq!(text(&out.stdout), "True\n");
}

#[test]
fn allow_read_and_allow_write_add_folders_to_the_view() {
    let library = TempLibrary::new();
    let project = tempfile::tempdir().expect("project");
    let out_dir = tempfile::tempdir().expect("out");
    std::fs::write(project.path().join("README"), "hello").expect("write");
    let code = format!(
        "open({out:?} + '/report', 'w').write(open({project:?} + '/README').read().upper())\n\
         try:\n    open({project:?} + '/x', 'w'); wrote = True\nexcept OSError:\n    wrote = False\nwrote",
        project = project.path().display().to_string(),
        out = out_dir.path().display().to_string(),
    );
    let out = run(
        &library,
        &[
            "--allow-read",
            &project.path().display().to_string(),
            "--allow-write",
            &out_dir.path().display().to_string(),
            "run",
            "-c",
            &code,
        ],
    );
    assert_eq!(text(&out.stdout), "False\n", "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("report")).ok(),
        Some("HELLO".to_owned())
    );
    assert!(!project.path().join("x").exists());
    let out = run(&library, &["--allow-read", "/", "run", "-c", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("would show the whole machine"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_run_leaves_no_cgroup_behind() {
    let library = TempLibrary::new();
    let mut child = command(
        &library,
        &[
            "run",
            "-c",
            "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(1); 1",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start py-code-mode");
    let prefix = format!("py-code-mode-{}-", child.id());
    // The worker's cgroups are made under the host's own, which it inherits
    // from this process: only there (not in other cgroups of the machine,
    // where a gone process of the same pid may have left one).
    let worker_cgroups = || {
        let mut found = Vec::new();
        for controller in ["memory", "pids", "cpu"] {
            if let Some(own) = own_cgroup(controller) {
                collect(&own, &prefix, 2, &mut found);
            }
        }
        found
    };
    let mut seen = false;
    while !seen && child.try_wait().expect("poll").is_none() {
        seen = !worker_cgroups().is_empty();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(seen, "the run's worker had no cgroup to check");
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    assert_eq!(worker_cgroups(), Vec::<std::path::PathBuf>::new());
}

/// This process's cgroup in a v1 `controller`'s hierarchy.
fn own_cgroup(controller: &str) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|line| {
        let (_, rest) = line.split_once(':')?;
        let (controllers, path) = rest.split_once(':')?;
        controllers
            .split(',')
            .any(|c| c == controller)
            .then_some(path)
    })?;
    Some(
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/')),
    )
}

fn collect(dir: &Path, prefix: &str, depth: usize, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(entry.path());
        } else if depth > 0 {
            collect(&entry.path(), prefix, depth - 1, found);
        }
    }
}

/// `PY_CODE_MODE_SANDBOX_OFF` switches layers off for diagnostics: the
/// status and `doctor` say so, and agent code runs under what is left
/// (Landlock alone still hides the library, as on a machine whose
/// namespaces are blocked).
#[test]
fn layers_switched_off_by_the_environment_are_reported_and_left_off() {
    let library = TempLibrary::new();
    let off = |args: &[&str], layers: &str| {
        command(&library, args)
            .env("PY_CODE_MODE_SANDBOX_OFF", layers)
            .output()
            .expect("run py-code-mode")
    };
    let out = off(&["sandbox"], "namespaces, seccomp");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for layer in ["namespaces", "seccomp"] {
        assert_eq!(
            status[layer],
            serde_json::json!({"active": false, "detail": "switched off (`PY_CODE_MODE_SANDBOX_OFF`)"}),
            "{status}"
        );
    }
    assert_eq!(status["landlock"]["active"], true, "{status}");
    let out = off(&["doctor"], "namespaces,seccomp");
    assert!(
        text(&out.stdout).contains("namespaces: switched off (`PY_CODE_MODE_SANDBOX_OFF`)"),
        "{}",
        text(&out.stdout)
    );
    // Landlock alone: the library is hidden, the scratch folder is the
    // working directory (no `/tmp` of its own).
    let code = format!(
        "import os\ntry:\n    os.listdir({:?}); seen = True\nexcept OSError:\n    seen = False\nseen, os.getcwd() == '/tmp'",
        library.path().display().to_string()
    );
    let out = off(&["run", "-c", &code], "namespaces,seccomp");
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "(False, False)\n".to_owned()),
        "{}",
        text(&out.stderr)
    );
    // No view layer left: not a sandbox, so the default falls back with its
    // notice, and a misspelt layer is refused.
    let out = off(&["sandbox"], "namespaces,landlock");
    assert_eq!(out.status.code(), Some(1));
    let out = off(&["run", "-c", "1"], "namespaces,landlock");
    assert!(
        text(&out.stderr).contains("notice: agent code runs without a sandbox"),
        "{}",
        text(&out.stderr)
    );
    let out = off(&["sandbox"], "network");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("no sandbox layer `network`"),
        "{}",
        text(&out.stderr)
    );
}
