//! The processes behind `deps`: the presence check, `uv`/`pip`, and the venv
//! py-code-mode makes for an interpreter that is not one.
//!
//! Every process starts under the spawn policy (own group, killed with its
//! tree on timeout or drop) with the allow-listed environment plus the
//! installer's own configuration (`PIP_*`, `UV_*`, proxies): this is the
//! host's installer, configured by the host's user, never agent code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::DepsError;
use crate::spawn::Spawn;
use crate::tools::{OutputCap, tail};

/// Output kept from one installer run, in bytes: pip's reason for a failure is
/// at the end, and a resolver's log can be long.
const MAX_INSTALLER_OUTPUT: usize = 256 * 1024;
/// The end of the installer's output quoted in an error, in bytes.
const ERROR_EXCERPT: usize = 2000;
/// How long the presence check and `python -m venv` may take.
const QUICK_TIMEOUT: Duration = Duration::from_mins(1);

/// Variables of the host's environment the installer sees besides the
/// allow-list: its configuration, index credentials and proxies.
fn installer_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("PIP_")
                || k.starts_with("UV_")
                || matches!(
                    k.to_ascii_uppercase().as_str(),
                    "HTTP_PROXY" | "HTTPS_PROXY" | "ALL_PROXY" | "NO_PROXY" | "REQUESTS_CA_BUNDLE"
                )
        })
        .collect()
}

/// Whether `python` (as `sys.executable` names it) is a virtual environment's:
/// the interpreter itself decides that by a `pyvenv.cfg` one folder above it.
pub(crate) fn is_venv(python: &Path) -> bool {
    python
        .parent()
        .and_then(Path::parent)
        .is_some_and(|root| root.join("pyvenv.cfg").is_file())
}

/// The folder of a venv's interpreter.
pub(crate) fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// Runs a command to its end within `timeout`; its output (capped) on success.
async fn run(spawn: Spawn, what: &str, timeout: Duration) -> Result<String, DepsError> {
    let (mut child, mut tree) = spawn.spawn().map_err(|e| DepsError::Installer {
        message: format!("cannot start {what}: {e}"),
    })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let outputs = futures::future::join(
            OutputCap::read_pipe(stdout, MAX_INSTALLER_OUTPUT),
            OutputCap::read_pipe(stderr, MAX_INSTALLER_OUTPUT),
        );
        let (status, (out, err)) = tokio::join!(child.wait(), outputs);
        (status, out.into_text(), err.into_text())
    };
    let outcome = tokio::time::timeout(timeout, work).await;
    tree.kill();
    let Ok((status, out, err)) = outcome else {
        return Err(DepsError::Installer {
            message: format!(
                "{what} took longer than {}s and was stopped",
                timeout.as_secs()
            ),
        });
    };
    let status = status.map_err(|e| DepsError::Installer {
        message: format!("{what}: {e}"),
    })?;
    if status.success() {
        return Ok(out);
    }
    let text = if err.trim().is_empty() { out } else { err };
    Err(DepsError::Installer {
        message: format!(
            "{what} failed ({status}): {}",
            tail(text.trim(), ERROR_EXCERPT)
        ),
    })
}

/// Asks `python` which of `specs` its environment already satisfies (one
/// process for all of them, no index access). A specifier it cannot evaluate
/// counts as not satisfied: the installer then decides.
const PRESENT_SCRIPT: &str = r#"
import json, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    try:
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        Requirement = None
out = []
for spec in json.loads(sys.argv[1]):
    ok = False
    try:
        if Requirement is not None:
            req = Requirement(spec)
            version = metadata.version(req.name)
            ok = req.specifier.contains(version, prereleases=True)
        elif spec.replace("-", "").replace("_", "").replace(".", "").isalnum():
            metadata.version(spec)
            ok = True
    except Exception:
        ok = False
    out.append(ok)
print(json.dumps(out))
"#;

pub(crate) async fn present(python: &Path, specs: &[String]) -> Result<Vec<bool>, DepsError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(specs).map_err(|e| DepsError::Installer {
        message: e.to_string(),
    })?;
    let out = run(
        Spawn::new(python)
            .args(["-I", "-c", PRESENT_SCRIPT])
            .arg(list),
        "the installed-package check",
        QUICK_TIMEOUT,
    )
    .await?;
    let found: Vec<bool> = serde_json::from_str(out.trim()).map_err(|e| DepsError::Installer {
        message: format!(
            "the installed-package check answered `{}`: {e}",
            tail(out.trim(), 200)
        ),
    })?;
    if found.len() == specs.len() {
        Ok(found)
    } else {
        Err(DepsError::Installer {
            message: "the installed-package check answered for the wrong number of packages".into(),
        })
    }
}

/// The folders `python` imports from (its `sys.path`), for [`installed_version`].
pub(crate) async fn import_dirs(python: &Path) -> Result<Vec<PathBuf>, DepsError> {
    let out = run(
        Spawn::new(python).args([
            "-I",
            "-c",
            "import json, sys; print(json.dumps([p for p in sys.path if p]))",
        ]),
        "reading the interpreter's import path",
        QUICK_TIMEOUT,
    )
    .await?;
    let dirs: Vec<PathBuf> =
        serde_json::from_str(out.trim()).map_err(|e| DepsError::Installer {
            message: format!("the interpreter's import path is not a JSON list: {e}"),
        })?;
    Ok(dirs)
}

/// The version of distribution `key` (canonical name) installed in `dirs`,
/// read from the `*.dist-info` / `*.egg-info` folder names as the import
/// system's metadata finder does, without starting a process: this is what
/// makes `deps.add` of an installed package near-instant.
pub(crate) fn installed_version(dirs: &[PathBuf], key: &str) -> Option<String> {
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let parsed = if let Some(stem) = name.strip_suffix(".dist-info") {
                stem.rsplit_once('-')
            } else if let Some(stem) = name.strip_suffix(".egg-info") {
                // `six-1.16.0.egg-info` or `six-1.16.0-py3.11.egg-info`.
                stem.split_once('-')
                    .map(|(n, rest)| (n, rest.split('-').next().unwrap_or(rest)))
            } else {
                None
            };
            if let Some((dist, version)) = parsed
                && super::spec::canonical_name(dist) == key
            {
                return Some(version.to_owned());
            }
        }
    }
    None
}

/// `uv` on PATH, if any.
fn find_uv() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("uv"))
            .find(|candidate| candidate.is_file())
    })
}

/// One line of progress on stderr for a person at a terminal, whatever the
/// log level: an install can take minutes.
#[allow(clippy::print_stderr, reason = "progress for a person at a terminal")]
fn progress(line: &str) {
    eprintln!("py-code-mode: {line}");
}

/// Installs `specs` into `python`'s environment: `uv pip install --python`
/// when `uv` is on PATH, else `python -m pip install`. The specs were
/// validated and come after `--`, so none can be read as an option.
pub(crate) async fn install(
    python: &Path,
    specs: &[String],
    timeout: Duration,
) -> Result<(), DepsError> {
    let spawn = match find_uv() {
        Some(uv) => Spawn::new(uv)
            .args(["pip", "install", "--python"])
            .arg(python)
            .arg("--"),
        None => Spawn::new(python).args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--",
        ]),
    };
    tracing::info!(specs = %specs.join(" "), "installing packages");
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // Never stdout: it may be an MCP stream.
        progress(&format!("installing {} ...", specs.join(" ")));
    }
    run(
        spawn.args(specs).envs(installer_env()),
        "installing packages",
        timeout,
    )
    .await
    .map(drop)
}

/// Uninstalls `names` from `python`'s environment (a venv py-code-mode owns).
pub(crate) async fn uninstall(
    python: &Path,
    names: &[String],
    timeout: Duration,
) -> Result<(), DepsError> {
    let spawn = match find_uv() {
        Some(uv) => Spawn::new(uv)
            .args(["pip", "uninstall", "--python"])
            .arg(python)
            .arg("--"),
        None => Spawn::new(python).args([
            "-m",
            "pip",
            "uninstall",
            "--yes",
            "--disable-pip-version-check",
            "--",
        ]),
    };
    run(
        spawn.args(names).envs(installer_env()),
        "uninstalling packages",
        timeout,
    )
    .await
    .map(drop)
}

/// Makes (once) the venv py-code-mode owns for `base_python` at `dir`: it sees
/// the interpreter's own site-packages, so nothing the user had disappears,
/// and it takes pip from there too when there is one. Made in a temporary
/// folder and renamed into place, so two hosts starting at once agree.
pub(crate) async fn ensure_venv(base_python: &Path, dir: &Path) -> Result<PathBuf, DepsError> {
    let python = venv_python(dir);
    if python.exists() {
        return Ok(python);
    }
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|e| DepsError::Installer {
        message: format!("cannot create `{}`: {e}", parent.display()),
    })?;
    let tmp = tempfile::Builder::new()
        .prefix(".venv-")
        .tempdir_in(parent)
        .map_err(|e| DepsError::Installer {
            message: format!("cannot create a folder in `{}`: {e}", parent.display()),
        })?;
    run(
        Spawn::new(base_python)
            .args([
                "-I",
                "-m",
                "venv",
                "--system-site-packages",
                "--without-pip",
            ])
            .arg(tmp.path()),
        "creating a venv",
        QUICK_TIMEOUT,
    )
    .await?;
    // Scripts in the venv name its folder; the interpreter finds its
    // `pyvenv.cfg` by its own path, so the rename keeps it working.
    let made = tmp.keep();
    if let Err(e) = std::fs::rename(&made, dir) {
        let _ = std::fs::remove_dir_all(&made);
        if !python.exists() {
            return Err(DepsError::Installer {
                message: format!("cannot move the new venv to `{}`: {e}", dir.display()),
            });
        }
    }
    Ok(python)
}
