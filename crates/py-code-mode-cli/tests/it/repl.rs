//! `py-code-mode repl` in a real terminal: tmux runs it, `send-keys` types,
//! `capture-pane` reads the screen, polled with a deadline.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use py_code_mode_test_support::{TempLibrary, binary, python};

/// How long one expected screen may take to appear (a worker starting on a
/// busy machine, a killed worker being replaced).
const SCREEN_DEADLINE: Duration = Duration::from_secs(30);

/// A tmux server of its own (`-L`), so tests never meet a user's tmux.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(library: &Path, history: &Path) -> Self {
        let socket = format!("pcm-repl-{}-{}", std::process::id(), rand_suffix());
        // The subprocess executor: the cells write markers into the
        // library folder, which a sandboxed worker cannot see.
        let mut command = format!(
            "HF_HUB_OFFLINE=1 {} --base {} --executor subprocess --no-semantic repl --history {}",
            binary().display(),
            library.display(),
            history.display()
        );
        if let Some(p) = python() {
            command = format!("PY_CODE_MODE_PYTHON={} {command}", p.display());
        }
        let tmux = Self { socket };
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-x", "120", "-y", "50", "-s", "repl"])
            .arg(format!("{command}; echo EXIT=$?; sleep 600"))
            .status()
            .expect("tmux new-session");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    /// Types `keys` (tmux key names such as `Enter`, `C-c`, `Tab`, or text).
    fn send(&self, keys: &[&str]) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "repl"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Types `text` literally, then Enter.
    fn line(&self, text: &str) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "repl", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
        self.send(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "repl", "-S", "-200"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `ready` holds for the screen; fails with the screen.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_DEADLINE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `text` appears (tmux drops trailing spaces: `>>>`, not `>>> `) `times` times on the screen.
    fn wait_count(&self, text: &str, times: usize) -> String {
        self.wait_for(&format!("{times}× {text:?}"), |s| {
            s.matches(text).count() >= times
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_person_defines_completes_fails_interrupts_and_leaves() {
    assert!(
        tmux_available(),
        "tmux is needed for the REPL test (`.ci/run` installs it)"
    );
    let library = TempLibrary::new().with_skill(
        "greet_user",
        "\"\"\"Greets someone.\"\"\"\n\ndef run(name: str) -> str:\n    return f'hello {name}'\n",
    );
    let history = library.path().join("history");
    let tmux = Tmux::start(library.path(), &history);
    tmux.wait_count(">>>", 1);

    // A multi-line definition: `...` continues it, the empty line ends it.
    tmux.line("def double(x):");
    tmux.wait_count("...", 1);
    tmux.line("    return x * 2");
    tmux.wait_count("...", 2);
    tmux.line("");
    tmux.wait_count(">>>", 2);
    tmux.line("double(21)");
    let screen = tmux.wait_count(">>>", 3);
    assert!(screen.contains("double(21)\n42\n>>>"), "{screen}");

    // Tab completes a skill name; its call runs.
    tmux.send(&["-l", "skills.greet_u"]);
    tmux.send(&["Tab"]);
    tmux.wait_for("the completed name", |s| {
        last_line(s) == Some(">>> skills.greet_user")
    });
    tmux.line("(name='ada')");
    let screen = tmux.wait_count(">>>", 4);
    assert!(screen.contains("'hello ada'\n>>>"), "{screen}");

    // A traceback, and the session goes on.
    tmux.line("{}['missing']");
    let screen = tmux.wait_count(">>>", 5);
    assert!(screen.contains("KeyError: 'missing'\n>>>"), "{screen}");

    // Ctrl-C stops a runaway cell; the session goes on.
    // The cell leaves a mark first, so the test knows it is running.
    let started = library.path().join("started");
    // Each line waits for its `...` prompt, as a person would.
    tmux.line("if True:");
    tmux.wait_count("...", 3);
    tmux.line(&format!(
        "    open({:?}, 'w').close()",
        started.display().to_string()
    ));
    tmux.wait_count("...", 4);
    tmux.line("    while True: pass");
    tmux.wait_count("...", 5);
    tmux.line("");
    let deadline = Instant::now() + SCREEN_DEADLINE;
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "the cell never started:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.send(&["C-c"]);
    // As in Python: a traceback ending in KeyboardInterrupt, variables kept.
    let screen = tmux.wait_count(">>>", 6);
    assert!(
        screen.contains("    while True: pass\nKeyboardInterrupt\n>>>"),
        "{screen}"
    );
    tmux.line("1+1");
    let screen = tmux.wait_count(">>>", 7);
    assert!(screen.contains(">>> 1+1\n2\n>>>"), "{screen}");
    tmux.line("double(2)");
    let screen = tmux.wait_count(">>>", 8);
    assert!(screen.contains(">>> double(2)\n4\n>>>"), "{screen}");

    // Ctrl-D leaves with status 0, and the history was kept.
    tmux.send(&["C-d"]);
    tmux.wait_count("EXIT=0", 1);
    let kept = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(kept.contains("double(21)"), "history: {kept}");
}

/// The last line of the screen with something on it.
fn last_line(screen: &str) -> Option<&str> {
    screen
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .map(str::trim_end)
}

/// On a pipe: no colour, no banner, the same conventions; `%timeout` and
/// `%reset` work and bad input to them is an error that loses nothing.
#[test]
fn piped_input_runs_cells_and_magics_without_colour() {
    use std::io::Write as _;
    let library = TempLibrary::new();
    let mut command = Command::new(binary());
    command
        .arg("--base")
        .arg(library.path())
        .args(["--no-semantic", "repl", "--no-history"])
        .env("HF_HUB_OFFLINE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    let mut child = command.spawn().expect("spawn the REPL");
    let input = "x = 20\nfor i in range(2):\n    x += 1\n\nx\n%timeout 1\n%timeout soon\nimport time\ntime.sleep(5)\nx\nx = 1\n%reset\nx\n%bogus\nprint('a')\n";
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains('\x1b'), "colour on a pipe: {stdout:?}");
    let expected_start = "22\ntimeout: 1s\nerror: `%timeout` takes a number of seconds, not `soon`\nTimeoutError: execution exceeded the 1s timeout";
    assert!(stdout.starts_with(expected_start), "{stdout}");
    assert!(
        stdout.contains("(a new worker was started: variables were reset)\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "(variables reset)\nTraceback (most recent call last):\n  File \"<cell 1>\", line 1, in <module>\n    x\nNameError: name 'x' is not defined\nunknown command `%bogus`; try `%help`\na\n\n"
        ),
        "{stdout}"
    );
}

/// A cell that swallows `KeyboardInterrupt` is killed after the grace, and
/// the session goes on with a new worker.
#[test]
fn a_cell_that_ignores_ctrl_c_is_killed_and_the_session_goes_on() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let library = TempLibrary::new();
    let mut command = Command::new(binary());
    command
        .arg("--base")
        .arg(library.path())
        .args([
            "--executor",
            "subprocess",
            "--no-semantic",
            "repl",
            "--no-history",
        ])
        .env("HF_HUB_OFFLINE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some(p) = python() {
        command.env("PY_CODE_MODE_PYTHON", p);
    }
    let mut child = command.spawn().expect("spawn the REPL");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let started = library.path().join("started");
    let cell = format!(
        "x = 1\nimport time\nwhile True:\n    open({:?}, 'w').close()\n    try: time.sleep(1)\n    except KeyboardInterrupt: pass\n\n",
        started.display().to_string()
    );
    stdin.write_all(cell.as_bytes()).expect("write");
    stdin.flush().expect("flush");
    let deadline = Instant::now() + SCREEN_DEADLINE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "the cell never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert_eq!(line, "KeyboardInterrupt\n");
    line.clear();
    stdout.read_line(&mut line).expect("read");
    assert!(line.contains("its worker was killed"), "{line}");
    stdin.write_all(b"1 + 1\n").expect("write");
    drop(stdin);
    line.clear();
    stdout.read_line(&mut line).expect("read");
    assert_eq!(line, "2\n");
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}
