//! Finding the Python interpreter the worker runs on.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::error::ExecutorError;

/// Resolves `python` (a name on PATH or a path) to the real interpreter.
///
/// Version-manager shims (pyenv) are scripts that cost 75–90 ms per start, so
/// the interpreter is asked once for `sys.executable` and that path is spawned
/// from then on. A virtualenv's interpreter resolves to itself, keeping the
/// venv's packages importable by agent code.
pub async fn resolve_python(python: Option<&Path>) -> Result<PathBuf, ExecutorError> {
    let requested = python.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
    let found = if requested.components().count() > 1 {
        requested.clone()
    } else {
        find_on_path(&requested).ok_or_else(|| ExecutorError::NoPython {
            message: format!("`{}` is not on PATH", requested.display()),
        })?
    };
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

fn find_on_path(name: &Path) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
