//! Finding the Python interpreter the worker runs on.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, PoisonError};

use tokio::sync::OnceCell;

use crate::error::ExecutorError;

/// Interpreters already resolved in this process, by the path found for the
/// one requested: every session (and `deps`) asks once per process, not once
/// per executor. A failed probe is not remembered, so a fixed PATH or a newly
/// made venv is found on the next try.
static RESOLVED: LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<OnceCell<PathBuf>>>>> =
    LazyLock::new(Default::default);

/// Resolves `python` (a name on PATH or a path) to the real interpreter.
///
/// Version-manager shims (pyenv) are scripts that cost 75–90 ms per start, so
/// the interpreter is asked once for `sys.executable` and that path is spawned
/// from then on. A virtualenv's interpreter resolves to itself, keeping the
/// venv's packages importable by agent code. The answer is kept for the life
/// of the process, and an absolute path to an executable ELF file is taken as
/// it is, without asking (see [`is_native_executable`]).
pub async fn resolve_python(python: Option<&Path>) -> Result<PathBuf, ExecutorError> {
    let requested = python.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
    let found = if requested.components().count() > 1 {
        requested.clone()
    } else {
        find_on_path(&requested).ok_or_else(|| ExecutorError::NoPython {
            message: format!("`{}` is not on PATH", requested.display()),
        })?
    };
    let cell = Arc::clone(
        RESOLVED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(found.clone())
            .or_default(),
    );
    cell.get_or_try_init(|| probe(found)).await.cloned()
}

/// The interpreter `found` runs: itself when it is an absolute path to a
/// native executable, otherwise what it reports as `sys.executable`.
async fn probe(found: PathBuf) -> Result<PathBuf, ExecutorError> {
    if found.is_absolute() && is_native_executable(&found) {
        return Ok(found);
    }
    let output = tokio::process::Command::new(&found)
        .args(["-I", "-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .map_err(|source| ExecutorError::Spawn {
            python: found.clone(),
            source,
        })?;
    let executable = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || executable.is_empty() {
        return Err(ExecutorError::NoPython {
            message: format!("`{}` did not report its executable", found.display()),
        });
    }
    Ok(PathBuf::from(executable))
}

/// Whether `path` (followed through symlinks) is an executable ELF file.
///
/// The probe exists for scripts that start another interpreter (pyenv and
/// asdf shims, wrappers): what they exec is only known by asking. A native
/// CPython started by an absolute path reports that very path as
/// `sys.executable` (a venv's `bin/python` symlink included: CPython keeps
/// the path it was started by, which is how it finds the venv's
/// `pyvenv.cfg`), so asking would cost an interpreter start (~11 ms) to learn
/// nothing. A path that is ELF but not Python fails at the worker's start-up
/// instead, with the same kind of error.
fn is_native_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;

    const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok()
        && magic == ELF_MAGIC
}

/// The first file named `name` in a folder of `PATH`.
pub(crate) fn find_on_path(name: &Path) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_is_not_a_native_executable() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let script = dir.path().join("python3");
        std::fs::write(&script, "#!/bin/sh\nexec python3 \"$@\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!is_native_executable(&script));
        assert!(!is_native_executable(dir.path()));
        assert!(!is_native_executable(&dir.path().join("missing")));
        assert!(is_native_executable(Path::new("/proc/self/exe")));
    }
}
