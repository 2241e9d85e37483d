//! The runtime's compiled bytecode, kept in the host's memory so workers skip
//! compiling its source (~8 ms of every cold start).
//!
//! Where the cache lives is the security question: agent code is hostile and,
//! under the subprocess executor, runs as the host's user (root here), so any
//! file the host could write, agent code could write too, and a poisoned
//! `.pyc` would run in every later worker, of every session and executor.
//! So nothing is written to disk: the bytecode lives only in this process and
//! is made by an interpreter that runs no agent code: `python -I -S` (no
//! environment, no `site`, so no `.pth` file from a venv agent code could
//! write to) compiling the embedded source read from its stdin. A worker gets
//! it on its stdin before the protocol starts. The first worker of each
//! interpreter in a process starts from source; the compile runs a second
//! after it is ready, off every session's path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::RUNTIME_SOURCE;

/// Compiles the source on stdin and writes `<hexversion>\n<marshalled code>`:
/// the code of `python -c <source>`, as `-c` compiles it.
const COMPILE: &str = "import marshal, sys\n\
code = compile(sys.stdin.read(), '<string>', 'exec', dont_inherit=True)\n\
sys.stdout.buffer.write(b'%d\\n' % sys.hexversion + marshal.dumps(code))";

/// The worker's `-c` when it gets bytecode: reads exactly the length given as
/// its argument from fd 0 (never more: the protocol follows on the same fd),
/// checks the interpreter is the one that compiled it, runs it as `__main__`.
pub(crate) const BOOTSTRAP: &str = "import os, sys\n\
def _read(size):\n    \
data = bytearray()\n    \
while len(data) < size:\n        \
chunk = os.read(0, size - len(data))\n        \
if not chunk:\n            \
sys.exit(1)\n        \
data += chunk\n    \
return bytes(data)\n\
if sys.hexversion != int(sys.argv[2]):\n    \
sys.exit('py-code-mode: the interpreter changed since the runtime was compiled')\n\
import marshal\n\
_code = marshal.loads(_read(int(sys.argv[1])))\n\
del sys.argv[1:], _read\n\
exec(_code)";

/// How long after a process's first worker the compile starts: a process
/// that runs one cell and exits (`run -c`) never pays for it, and a first
/// result never competes with it for the CPU.
const COMPILE_DELAY: Duration = Duration::from_secs(1);
/// How long the compile may take before the cache stays empty (it only ever
/// saves time).
const COMPILE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest output taken from the compile: the runtime's code is ~80 KB.
const MAX_BYTECODE: usize = 4 << 20;

/// The runtime compiled for one interpreter.
#[derive(Debug)]
pub(crate) struct Bytecode {
    /// `sys.hexversion` of the interpreter that compiled it.
    pub(crate) version: u32,
    pub(crate) code: Vec<u8>,
}

enum Entry {
    Compiling,
    Done(Arc<Bytecode>),
    Failed,
}

static CACHE: LazyLock<std::sync::Mutex<HashMap<PathBuf, Entry>>> = LazyLock::new(Default::default);

/// The runtime's bytecode for `python`, if this process has made it.
pub(crate) fn cached(python: &Path) -> Option<Arc<Bytecode>> {
    match CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(python)
    {
        Some(Entry::Done(bytecode)) => Some(Arc::clone(bytecode)),
        _ => None,
    }
}

/// Whether this process has the runtime compiled for `python` (an
/// interpreter path as [`crate::resolve_python`] returns it): for tests and
/// diagnostics.
#[doc(hidden)]
pub fn runtime_bytecode_cached(python: &Path) -> bool {
    cached(python).is_some()
}

/// Compiles the runtime for `python` in the background, once per process
/// (a failure is logged and not retried: workers start from source).
pub(crate) fn compile_soon(python: &Path) {
    {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.contains_key(python) {
            return;
        }
        cache.insert(python.to_owned(), Entry::Compiling);
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        CACHE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(python);
        return;
    };
    let python = python.to_owned();
    runtime.spawn(async move {
        // A runtime shut down before the compile ended (a test's, an
        // application's short-lived one) drops this task: the next worker
        // started on another runtime compiles again.
        let unfinished = Unfinished(Some(python.clone()));
        tokio::time::sleep(COMPILE_DELAY).await;
        let entry = match tokio::time::timeout(COMPILE_TIMEOUT, compile(&python)).await {
            Ok(Ok(bytecode)) => Entry::Done(Arc::new(bytecode)),
            Ok(Err(error)) => {
                tracing::warn!(%error, python = %python.display(), "cannot compile the runtime; workers start from source");
                Entry::Failed
            }
            Err(_) => {
                tracing::warn!(python = %python.display(), "compiling the runtime timed out; workers start from source");
                Entry::Failed
            }
        };
        unfinished.finished();
        CACHE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(python, entry);
    });
}

/// Takes back a compile's `Compiling` mark if its task is dropped unfinished.
struct Unfinished(Option<PathBuf>);

impl Unfinished {
    fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(python) = self.0.take() {
            CACHE
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&python);
        }
    }
}

async fn compile(python: &Path) -> Result<Bytecode, String> {
    let mut child = crate::spawn::Spawn::new(python)
        .args(["-I", "-S", "-c", COMPILE])
        .stdin_piped()
        .drop_capabilities()
        .into_command();
    child
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = child.spawn().map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let write = async move {
        let written = stdin.write_all(RUNTIME_SOURCE.as_bytes()).await;
        drop(stdin);
        written
    };
    let (written, output) = tokio::join!(write, child.wait_with_output());
    written.map_err(|e| e.to_string())?;
    let output = output.map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("the compile exited with {}", output.status));
    }
    if output.stdout.len() > MAX_BYTECODE {
        return Err("the compiled runtime is too large".into());
    }
    let newline = output
        .stdout
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no version line")?;
    let version = std::str::from_utf8(&output.stdout[..newline])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or("a bad version line")?;
    Ok(Bytecode {
        version,
        code: output.stdout[newline + 1..].to_vec(),
    })
}
