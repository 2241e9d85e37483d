//! `py-code-mode repl`: a person at a terminal, with `tools`, `skills` and
//! `artifacts` bound, on the same session and executors as `run`.
//!
//! Conventions of Python's own REPL: `>>>` and `...` prompts, an empty line
//! ends a block, a value is printed on its own line. Line editing, history
//! (kept in the user's data folder) and completion come from `rustyline`;
//! completion knows the library's tool and skill names and parameters.
//!
//! Ctrl-C at the prompt drops the line; during a run it stops the run (the
//! executor stops the worker's whole tree and starts a new one, so variables
//! are reset, which the REPL says) and the session goes on. Ctrl-D exits 0.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use py_code_mode::{ExecutionResult, ParamInfo, Session};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, Helper};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::LibraryArgs;
use crate::env_vars;

/// The most history entries kept on disk.
const HISTORY_SIZE: usize = 10_000;

/// Options of `py-code-mode repl`.
#[derive(Debug, Clone, Args)]
pub struct ReplArgs {
    /// History file (default: `$XDG_DATA_HOME/py-code-mode/history`, or
    /// `~/.local/share/py-code-mode/history`)
    #[arg(long, env = env_vars::PY_CODE_MODE_HISTORY, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Keep no history
    #[arg(long, conflicts_with = "history")]
    pub no_history: bool,
}

/// Methods each namespace has besides the names of the library's items.
const TOOLS_METHODS: &[&str] = &["call", "list", "search"];
const SKILLS_METHODS: &[&str] = &["create", "delete", "get", "invoke", "list", "search"];
const ARTIFACTS_METHODS: &[&str] = &["delete", "exists", "list", "load", "save"];
const GLOBALS: &[&str] = &["artifacts", "print", "skills", "tools"];

/// A name with the parameters it takes.
type Signature = (String, Vec<ParamInfo>);

/// What completion knows about the library, refreshed after every cell.
#[derive(Debug, Default, Clone)]
struct Names {
    /// Tool name → its callables (name, parameters).
    tools: Vec<(String, Vec<Signature>)>,
    /// Skill name → its `run()` parameters.
    skills: Vec<Signature>,
}

impl Names {
    async fn load(session: &Session) -> Self {
        let tools = session.list_tools().await.unwrap_or_default();
        let skills = session.list_skills().await.unwrap_or_default();
        Self {
            tools: tools
                .into_iter()
                .map(|t| {
                    let callables = t
                        .callables
                        .into_iter()
                        .map(|c| (c.name, c.parameters))
                        .collect();
                    (t.name, callables)
                })
                .collect(),
            skills: skills.into_iter().map(|s| (s.name, s.parameters)).collect(),
        }
    }

    /// Names after `path.` (`tools`, `skills`, `artifacts`, `tools.NAME`).
    fn members(&self, path: &str) -> Vec<String> {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match path {
            "tools" => {
                let mut names: Vec<String> = self.tools.iter().map(|(n, _)| n.clone()).collect();
                names.extend(owned(TOOLS_METHODS));
                names
            }
            "skills" => {
                let mut names: Vec<String> = self.skills.iter().map(|(n, _)| n.clone()).collect();
                names.extend(owned(SKILLS_METHODS));
                names
            }
            "artifacts" => owned(ARTIFACTS_METHODS),
            _ => match path.strip_prefix("tools.") {
                Some(tool) => self
                    .tools
                    .iter()
                    .find(|(n, _)| n == tool)
                    .map(|(_, callables)| {
                        callables
                            .iter()
                            .filter(|(c, _)| c != tool)
                            .map(|(c, _)| c.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            },
        }
    }

    /// Parameters of the callable `target` (`tools.NAME`, `tools.NAME.RECIPE`,
    /// `skills.NAME`).
    fn parameters(&self, target: &str) -> Vec<String> {
        let mut parts = target.split('.');
        let params = match (parts.next(), parts.next(), parts.next()) {
            (Some("skills"), Some(name), None) => self
                .skills
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone()),
            (Some("tools"), Some(name), callable) => self
                .tools
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, cs)| {
                    let wanted = callable.unwrap_or(name);
                    cs.iter()
                        .find(|(c, _)| c == wanted)
                        .or_else(|| (callable.is_none() && cs.len() == 1).then(|| &cs[0]))
                        .map(|(_, p)| p.clone())
                }),
            _ => None,
        };
        params
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    /// Completions for `line` with the cursor at `pos`: where the replaced
    /// word starts, and the candidates.
    fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if let Some((path, partial)) = word.rsplit_once('.') {
            let offset = start + path.len() + 1;
            let mut found: Vec<String> = self
                .members(path)
                .into_iter()
                .filter(|m| m.starts_with(partial))
                .collect();
            found.sort();
            found.dedup();
            return (offset, found);
        }
        if let Some(target) = open_call(&before[..start]) {
            let found: Vec<String> = self
                .parameters(&target)
                .into_iter()
                .filter(|p| p.starts_with(word))
                .map(|p| format!("{p}="))
                .collect();
            if !found.is_empty() {
                return (start, found);
            }
        }
        let found = GLOBALS
            .iter()
            .filter(|g| !word.is_empty() && g.starts_with(word))
            .map(|g| (*g).to_owned())
            .collect();
        (start, found)
    }
}

/// The callee of the innermost call still open at the end of `text`
/// (`skills.greet(name="a", ` → `skills.greet`), if it is dotted.
fn open_call(text: &str) -> Option<String> {
    // Walk back to the first `(` not closed after it (brackets inside string
    // arguments may mislead it; a wrong guess only offers no parameters).
    let mut level = 0_i32;
    let mut innermost = None;
    for (i, c) in text.char_indices().rev() {
        match c {
            ')' | ']' | '}' => level += 1,
            '(' if level == 0 => {
                innermost = Some(i);
                break;
            }
            '(' | '[' | '{' => level -= 1,
            _ => {}
        }
    }
    let head = &text[..innermost?];
    let start = head
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    let callee = &head[start..];
    (callee.starts_with("tools.") || callee.starts_with("skills.")).then(|| callee.to_owned())
}

/// The line editor's helper: completion from [`Names`], nothing else.
struct ReplHelper {
    names: Arc<Mutex<Names>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, found) = names.complete(line, pos);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

/// Keywords that open a compound statement, which Python's REPL runs only
/// after an empty line even when written on one line (`while True: pass`).
const COMPOUND: &[&str] = &[
    "async", "class", "def", "for", "if", "match", "try", "while", "with",
];

/// Whether the lines typed so far need more before they run, by the rules of
/// Python's REPL: an open bracket, string or trailing backslash continues; a
/// compound statement (a line ending in `:`, a decorator) runs only after an
/// empty line.
fn needs_more(lines: &[String]) -> bool {
    let text = lines.join("\n");
    if open_brackets_or_strings(&text) {
        return true;
    }
    let block = lines.iter().any(|l| {
        let code = strip_comment(l).trim();
        let first = code.split([' ', ':', '(']).next().unwrap_or_default();
        code.ends_with(':') || code.starts_with('@') || COMPOUND.contains(&first)
    });
    block && lines.last().is_some_and(|l| !l.trim().is_empty())
}

/// `line` without a trailing `# comment` (outside strings).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// An unclosed bracket, an unterminated triple-quoted string, or a trailing
/// backslash at the end of `text`.
fn open_brackets_or_strings(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut depth = 0_i32;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let triple = bytes.get(i..i + 3) == Some(&[b, b, b][..]);
                let width = if triple { 3 } else { 1 };
                i += width;
                loop {
                    let Some(&c) = bytes.get(i) else {
                        return triple; // an open one-line string is a syntax error: run it
                    };
                    if c == b'\\' {
                        i += 2;
                        continue;
                    }
                    if c == b'\n' && !triple {
                        break;
                    }
                    if c == b && (!triple || bytes.get(i..i + 3) == Some(&[b, b, b][..])) {
                        i += width;
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    depth > 0 || text.trim_end_matches([' ', '\t']).ends_with('\\')
}

/// Colours for a terminal; nothing when stdout is a pipe or `NO_COLOR` is set.
struct Style {
    on: bool,
}

impl Style {
    fn detect() -> Self {
        Self {
            on: crate::doctor::colour(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Prints a run's output, value and error the way a person reads them.
fn show(out: &mut impl std::io::Write, style: &Style, result: &ExecutionResult, quiet_reset: bool) {
    if !result.stdout.is_empty() {
        let _ = write!(out, "{}", result.stdout);
        if !result.stdout.ends_with('\n') {
            let _ = writeln!(out);
        }
    }
    if !result.stderr.is_empty() {
        let _ = writeln!(out, "{}", style.paint("33", result.stderr.trim_end()));
    }
    if let Some(repr) = &result.repr {
        let _ = writeln!(out, "{repr}");
    }
    if let Some(error) = &result.error {
        let text = if error.traceback.is_empty() {
            format!("{}: {}", error.kind, error.message)
        } else {
            error.traceback.trim_end().to_owned()
        };
        let _ = writeln!(out, "{}", style.paint("31", &text));
    }
    if result.state_reset && !quiet_reset {
        let _ = writeln!(
            out,
            "{}",
            style.paint("2", "(a new worker was started: variables were reset)")
        );
    }
    let _ = out.flush();
}

/// The history file: `--history`, else the user's data folder.
fn history_path(args: &ReplArgs) -> Option<PathBuf> {
    if args.no_history {
        return None;
    }
    if let Some(path) = &args.history {
        return Some(path.clone());
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("py-code-mode").join("history"))
}

/// What the prompt gave back.
enum Input {
    Line(String),
    Interrupted,
    Eof,
}

type ReplEditor = Editor<ReplHelper, FileHistory>;

/// Reads one line on the blocking pool (the editor owns the terminal while it
/// waits) and hands the editor back.
async fn read_line(mut editor: ReplEditor, prompt: &'static str) -> (ReplEditor, Input) {
    let joined = tokio::task::spawn_blocking(move || {
        let input = match editor.readline(prompt) {
            Ok(line) => Input::Line(line),
            Err(ReadlineError::Interrupted) => Input::Interrupted,
            Err(error) => {
                if !matches!(error, ReadlineError::Eof) {
                    tracing::warn!("cannot read the terminal: {error}");
                }
                Input::Eof
            }
        };
        (editor, input)
    })
    .await;
    match joined {
        Ok(pair) => pair,
        // The blocking task panicked inside the editor: nothing to go on with.
        Err(error) => {
            tracing::error!("the line editor failed: {error}");
            std::process::exit(1)
        }
    }
}

/// What a `%` command asked for.
enum Magic {
    Reset,
    Timeout(Option<String>),
    Help,
    Unknown(String),
}

fn magic(cell: &str) -> Option<Magic> {
    let rest = cell.trim().strip_prefix('%')?;
    let mut words = rest.split_whitespace();
    Some(match words.next().unwrap_or_default() {
        "reset" => Magic::Reset,
        "timeout" => Magic::Timeout(words.next().map(str::to_owned)),
        "help" => Magic::Help,
        other => Magic::Unknown(other.to_owned()),
    })
}

const HELP: &str = "\
%reset          forget every variable (the library is untouched)
%timeout SECS   the longest one cell may run (now: {timeout}s)
%help           this text
Tab completes `tools.`, `skills.`, `artifacts.` and parameters; Ctrl-C stops a
running cell; an empty line ends a block; Ctrl-D exits";

/// Runs a `%` command.
async fn run_magic(session: &Session, magic: Magic, timeout: &mut Duration, style: &Style) {
    let mut out = std::io::stdout();
    match magic {
        Magic::Reset => match session.reset().await {
            Ok(()) => {
                let _ = writeln!(out, "{}", style.paint("2", "(variables reset)"));
            }
            Err(e) => {
                let _ = writeln!(out, "{}", style.paint("31", &format!("error: {e}")));
            }
        },
        Magic::Timeout(None) => {
            let _ = writeln!(out, "timeout: {}s", timeout.as_secs_f64());
        }
        Magic::Timeout(Some(text)) => match text
            .parse::<f64>()
            .map_err(|_| format!("`%timeout` takes a number of seconds, not `{text}`"))
            .and_then(|s| py_code_mode::timeout_secs("%timeout", s).map_err(|e| e.to_string()))
        {
            Ok(secs) => {
                *timeout = secs;
                let _ = writeln!(out, "timeout: {}s", timeout.as_secs_f64());
            }
            Err(e) => {
                let _ = writeln!(out, "{}", style.paint("31", &format!("error: {e}")));
            }
        },
        Magic::Help => {
            let text = HELP.replace("{timeout}", &timeout.as_secs_f64().to_string());
            let _ = writeln!(out, "{text}");
        }
        Magic::Unknown(name) => {
            let _ = writeln!(
                out,
                "{}",
                style.paint("31", &format!("unknown command `%{name}`; try `%help`"))
            );
        }
    }
}

/// The line editor with completion over `names` and the saved history.
fn editor(names: &Arc<Mutex<Names>>, history: Option<&PathBuf>) -> anyhow::Result<ReplEditor> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)
        .context("bad history size")?
        .auto_add_history(false)
        // Asking the terminal where the cursor is reads stdin, and would eat
        // lines typed (or pasted) while the previous cell ran.
        .check_cursor_position(false)
        .build();
    let mut editor: ReplEditor = Editor::with_config(config).context("cannot open the terminal")?;
    editor.set_helper(Some(ReplHelper {
        names: Arc::clone(names),
    }));
    if let Some(path) = history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // A missing file is a first run; a bad one is only worth a log line.
        if path.exists()
            && let Err(error) = editor.load_history(path)
        {
            tracing::warn!("cannot read the history `{}`: {error}", path.display());
        }
    }
    Ok(editor)
}

/// Runs the REPL until Ctrl-D (exit 0) or SIGTERM/SIGHUP.
pub async fn run(library: &LibraryArgs, args: &ReplArgs) -> anyhow::Result<ExitCode> {
    let session = Arc::new(library.session().await?);
    for error in session.host().tools().load_errors() {
        tracing::warn!("{error}");
    }
    let warm = Arc::clone(&session);
    tokio::spawn(async move {
        if let Err(e) = warm.start().await {
            tracing::error!("{e}");
        }
    });
    let names = Arc::new(Mutex::new(Names::load(&session).await));
    let history = history_path(args);
    let mut editor = editor(&names, history.as_ref())?;
    // After the editor: it installs its own SIGINT handler for its lifetime,
    // and ours, registered now, runs first and then chains to it.
    let mut signals = ReplSignals {
        interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        hangup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
    };
    let style = Style::detect();
    let mut timeout = session.default_timeout();
    let mut out = std::io::stdout();
    if std::io::stdin().is_terminal() {
        let _ = writeln!(
            out,
            "py-code-mode {} on {}; `tools`, `skills`, `artifacts` are bound. %help for help, Ctrl-D to exit.",
            env!("CARGO_PKG_VERSION"),
            session.host().storage().location()
        );
    }
    let mut lines: Vec<String> = Vec::new();
    let mut announced_reset = false;
    loop {
        let prompt = if lines.is_empty() { ">>> " } else { "... " };
        // On SIGTERM while the editor waits, it stays with the blocked read:
        // the history was saved after the last cell.
        let (back, input) = tokio::select! {
            read = read_line(editor, prompt) => read,
            _ = signals.terminate.recv() => return Ok(close(&session).await),
            _ = signals.hangup.recv() => return Ok(close(&session).await),
        };
        editor = back;
        let line = match input {
            Input::Line(line) => line,
            Input::Interrupted => {
                lines.clear();
                let _ = writeln!(out, "KeyboardInterrupt");
                continue;
            }
            Input::Eof => break,
        };
        if lines.is_empty() && line.trim().is_empty() {
            continue;
        }
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        lines.push(line);
        if needs_more(&lines) {
            continue;
        }
        let cell = lines.join("\n");
        lines.clear();
        if let Some(history) = &history
            && let Err(error) = editor.append_history(history)
        {
            tracing::debug!("cannot save the history: {error}");
        }
        if let Some(magic) = magic(&cell) {
            run_magic(&session, magic, &mut timeout, &style).await;
            continue;
        }
        match run_cell(&session, &cell, timeout, &mut signals).await {
            CellEnd::Done(outcome) => match *outcome {
                Ok(result) => {
                    show(&mut out, &style, &result, announced_reset);
                    announced_reset = false;
                }
                Err(e) => {
                    let _ = writeln!(out, "{}", style.paint("31", &format!("error: {e}")));
                }
            },
            CellEnd::Killed => {
                killed(&session, &style);
                announced_reset = true;
            }
            CellEnd::Quit => break,
        }
        let fresh = Names::load(&session).await;
        *names.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
    }
    if let Some(history) = &history {
        let _ = editor.append_history(history);
    }
    let _ = writeln!(out);
    Ok(close(&session).await)
}

/// What Ctrl-C during a run did when the cell did not stop by itself.
const STOPPED: &str =
    "(the cell did not stop, so its worker was killed and a new one started: variables were reset)";

/// Says the cell was killed, and starts the next worker now so the next
/// cell does not wait for it (dropping the run killed the old one's tree).
fn killed(session: &Arc<Session>, style: &Style) {
    let _ = writeln!(
        std::io::stdout(),
        "{}\n{}",
        style.paint("31", "KeyboardInterrupt"),
        style.paint("2", STOPPED)
    );
    let warm = Arc::clone(session);
    tokio::spawn(async move {
        let _ = warm.start().await;
    });
}

/// How long a cell may go on after Ctrl-C asked it to stop (it may catch
/// `KeyboardInterrupt`, or sit in a call that does not return) before its
/// worker is killed; a second Ctrl-C kills it at once.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// The signals the REPL handles itself.
struct ReplSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

/// How a cell ended.
enum CellEnd {
    Done(Box<py_code_mode::Result<ExecutionResult>>),
    /// Ctrl-C, and the cell did not stop within [`INTERRUPT_GRACE`] (or the
    /// executor cannot interrupt): the run was dropped, killing the worker.
    Killed,
    /// SIGTERM or SIGHUP: leave.
    Quit,
}

/// Runs `cell`. Ctrl-C first asks the cell to stop as Python's REPL does (a
/// `KeyboardInterrupt`, variables kept); a cell that does not stop is killed.
async fn run_cell(
    session: &Session,
    cell: &str,
    timeout: Duration,
    signals: &mut ReplSignals,
) -> CellEnd {
    let run = session.run_with_timeout(cell, Some(timeout));
    tokio::pin!(run);
    tokio::select! {
        outcome = &mut run => return CellEnd::Done(Box::new(outcome)),
        _ = signals.interrupt.recv() => {}
        _ = signals.terminate.recv() => return CellEnd::Quit,
        _ = signals.hangup.recv() => return CellEnd::Quit,
    }
    if !session.interrupt() {
        return CellEnd::Killed;
    }
    tokio::select! {
        outcome = &mut run => CellEnd::Done(Box::new(outcome)),
        _ = signals.interrupt.recv() => CellEnd::Killed,
        () = tokio::time::sleep(INTERRUPT_GRACE) => CellEnd::Killed,
        _ = signals.terminate.recv() => CellEnd::Quit,
        _ = signals.hangup.recv() => CellEnd::Quit,
    }
}

/// How long closing the session may take before the REPL exits anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

async fn close(session: &Session) -> ExitCode {
    if tokio::time::timeout(CLOSE_GRACE, session.close())
        .await
        .is_err()
    {
        tracing::warn!("closing the session took over 5s; exiting anyway");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn blocks_end_with_an_empty_line_and_brackets_with_their_close() {
        assert!(!needs_more(&lines(&["1 + 1"])));
        assert!(needs_more(&lines(&["def f(x):"])));
        assert!(needs_more(&lines(&["def f(x):", "    return x"])));
        assert!(!needs_more(&lines(&["def f(x):", "    return x", ""])));
        assert!(needs_more(&lines(&["x = [1,"])));
        assert!(!needs_more(&lines(&["x = [1,", " 2]"])));
        assert!(needs_more(&lines(&["s = '''a"])));
        assert!(!needs_more(&lines(&["s = '''a", "b'''"])));
        assert!(!needs_more(&lines(&["x = ':'  # a colon:"])));
        assert!(needs_more(&lines(&["@decorator"])));
        assert!(needs_more(&lines(&["x = 1 + \\"])));
        assert!(!needs_more(&lines(&["print('(')"])));
        assert!(needs_more(&lines(&["while True: pass"])));
        assert!(!needs_more(&lines(&["while True: pass", ""])));
        assert!(!needs_more(&lines(&["format(1)"])));
    }

    #[test]
    fn completion_knows_namespaces_names_and_parameters() {
        let param = |name: &str| ParamInfo {
            name: name.to_owned(),
            ty: "str".to_owned(),
            required: true,
            default: None,
            description: String::new(),
        };
        let names = Names {
            tools: vec![(
                "curl".to_owned(),
                vec![
                    ("curl".to_owned(), vec![param("url")]),
                    ("get".to_owned(), vec![param("url"), param("headers")]),
                ],
            )],
            skills: vec![("greet_user".to_owned(), vec![param("name")])],
        };
        assert_eq!(
            names.complete("skills.gr", 9),
            (7, vec!["greet_user".to_owned()])
        );
        assert_eq!(names.complete("x = tools.cu", 12).1, vec!["curl"]);
        assert_eq!(names.complete("tools.curl.g", 12).1, vec!["get"]);
        assert_eq!(names.complete("artifacts.lo", 12).1, vec!["load"]);
        assert_eq!(
            names.complete("skills.greet_user(na", 20),
            (18, vec!["name=".to_owned()])
        );
        assert_eq!(
            names.complete("tools.curl.get(url='x', he", 26).1,
            vec!["headers="]
        );
        assert_eq!(names.complete("sk", 2).1, vec!["skills"]);
    }
}
