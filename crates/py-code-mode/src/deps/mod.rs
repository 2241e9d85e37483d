//! `deps`: the Python packages a library needs, installed by the host.
//!
//! Agent code asks (`deps.add("pandas")`), the host decides: it validates the
//! spec ([`spec`]), refuses when runtime installs are off, installs with `uv`
//! or `pip` (bounded in time) into the environment of the interpreter the
//! worker runs on, and records the spec in the library's storage so a later
//! session can install the same list (`sync`). A worker on an interpreter that
//! is not a venv runs on a venv py-code-mode makes and owns for the library
//! instead (seeing the interpreter's site-packages): nothing is ever installed
//! into a system interpreter. The in-process executor installs into the
//! application's own environment. See docs/deps.md.

mod install;
pub mod spec;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;

pub use spec::{MAX_SPEC_LEN, Requirement, SpecError, canonical_name};

use crate::error::StorageError;
use crate::storage::Storage;

/// How long one install may take when the configuration says nothing: a
/// large wheel over a slow link takes minutes, a stuck resolver forever.
pub const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_mins(5);
/// The most packages the configured list holds: each is a line agents and
/// people read, and `sync` installs them all.
pub const MAX_DEPS: usize = 500;
/// The most specs one `add` or `remove` takes.
pub const MAX_SPECS_PER_CALL: usize = 50;

/// Failures of `deps`.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "runtime dependency installation is disabled for this session\nhint: ask the operator to add the package to the configuration (`deps=` / `--no-runtime-deps` off)"
    )]
    Disabled,
    #[error(
        "`deps` is not available in this session: its executor cannot install packages, or the session was built without `deps`"
    )]
    Unsupported,
    #[error("{message}")]
    Installer { message: String },
    #[error("{message}")]
    Limit { message: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where packages go, as the executor describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepsTarget {
    /// This executor cannot install packages (default for executors that say nothing).
    Unsupported,
    /// The environment of this interpreter, as it is (the in-process executor:
    /// the application's own).
    Interpreter(PathBuf),
    /// The worker's interpreter (a path or a name on PATH; `None`: `python3`).
    /// If it is not a venv, py-code-mode makes one for the library and the
    /// worker runs on that.
    Worker(Option<PathBuf>),
}

/// How a session handles `deps`.
#[derive(Debug, Clone)]
pub struct DepsConfig {
    /// Agent code (and the MCP tools) may add and remove packages. The
    /// session's own `add_dep`/`sync_deps` work either way.
    pub allow_runtime: bool,
    /// Install the configured list when the session starts.
    pub sync_on_start: bool,
    /// Packages the configuration names (0.10's `deps=` / `deps_file=`):
    /// added to the stored list at start.
    pub preconfigured: Vec<String>,
    /// The longest one install may take.
    pub install_timeout: Duration,
    /// Where venvs py-code-mode owns live (default: `$XDG_CACHE_HOME` or
    /// `~/.cache`, then `py-code-mode/venvs`).
    pub venvs_dir: Option<PathBuf>,
}

impl Default for DepsConfig {
    fn default() -> Self {
        Self {
            allow_runtime: true,
            sync_on_start: true,
            preconfigured: Vec::new(),
            install_timeout: DEFAULT_INSTALL_TIMEOUT,
            venvs_dir: None,
        }
    }
}

/// What `add` and `sync` did, in 0.10's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Specs installed now.
    pub installed: Vec<String>,
    /// Specs the environment already satisfied.
    pub already_present: Vec<String>,
    /// Specs that could not be installed (the reason is in `errors`).
    pub failed: Vec<String>,
    /// The installer's reason, per failed spec.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub errors: std::collections::BTreeMap<String, String>,
}

/// What `remove` did, in 0.10's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoveReport {
    /// Packages forgotten (and uninstalled, from a venv py-code-mode owns).
    pub removed: Vec<String>,
    /// Packages the configured list did not hold.
    pub not_found: Vec<String>,
    /// Packages forgotten whose uninstall failed.
    pub failed: Vec<String>,
    /// Whether the configured list changed.
    pub removed_from_config: bool,
}

/// The host's `deps`: the configured list in storage and the installer.
#[derive(Debug)]
pub struct DepsManager {
    config: DepsConfig,
    storage: Arc<dyn Storage>,
    /// The interpreter whose environment packages go into.
    python: PathBuf,
    /// That environment is a venv py-code-mode made: `remove` uninstalls from it.
    owned: bool,
    /// One install (and list update) at a time per session.
    lock: Mutex<()>,
    /// The interpreter's import folders, read once (see `installed_version`).
    import_dirs: tokio::sync::OnceCell<Vec<PathBuf>>,
}

impl DepsManager {
    /// Resolves where packages go for `target`, making the owned venv when
    /// the worker's interpreter is not one. Returns the manager and the
    /// interpreter the worker must run on (`None`: unchanged).
    pub async fn prepare(
        config: DepsConfig,
        storage: Arc<dyn Storage>,
        target: DepsTarget,
    ) -> Result<(Self, Option<PathBuf>), crate::Error> {
        let (python, owned, worker) = match target {
            DepsTarget::Unsupported => {
                return Err(crate::Error::Deps(DepsError::Unsupported));
            }
            DepsTarget::Interpreter(python) => (python, false, None),
            DepsTarget::Worker(requested) => {
                let python = crate::executor::resolve_python(requested.as_deref()).await?;
                if install::is_venv(&python) {
                    (python, false, None)
                } else {
                    let dir = owned_venv_dir(&config, storage.as_ref(), &python);
                    let venv = install::ensure_venv(&python, &dir).await?;
                    tracing::info!(venv = %dir.display(), "the worker runs on a venv py-code-mode owns");
                    (venv.clone(), true, Some(venv))
                }
            }
        };
        let manager = Self {
            config,
            storage,
            python,
            owned,
            lock: Mutex::new(()),
            import_dirs: tokio::sync::OnceCell::new(),
        };
        if !manager.config.preconfigured.is_empty() {
            let specs = manager.config.preconfigured.clone();
            manager.remember(&specs).await?;
        }
        Ok((manager, worker))
    }

    /// Whether agent code may add and remove packages.
    pub fn runtime_allowed(&self) -> bool {
        self.config.allow_runtime
    }

    pub fn sync_on_start(&self) -> bool {
        self.config.sync_on_start
    }

    /// The interpreter whose environment packages go into.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Whether that environment is a venv py-code-mode made.
    pub fn owns_environment(&self) -> bool {
        self.owned
    }

    /// The configured list, as stored.
    pub async fn list(&self) -> Result<Vec<String>, DepsError> {
        Ok(read_list(self.storage.as_ref()).await?)
    }

    /// Validates, installs and records `specs`. A spec that fails to install
    /// is reported with the installer's reason and not recorded.
    pub async fn add(&self, specs: &[String]) -> Result<SyncReport, DepsError> {
        let reqs = parse_all(specs)?;
        let _guard = self.lock.lock().await;
        let report = self.install(&reqs).await?;
        let ok: Vec<String> = report
            .installed
            .iter()
            .chain(&report.already_present)
            .cloned()
            .collect();
        self.remember_locked(&ok).await?;
        Ok(report)
    }

    /// Forgets `names` (uninstalling them only from a venv py-code-mode owns).
    pub async fn remove(&self, names: &[String]) -> Result<RemoveReport, DepsError> {
        let reqs = parse_all(names)?;
        let _guard = self.lock.lock().await;
        let mut list = read_list(self.storage.as_ref()).await?;
        let mut report = RemoveReport::default();
        for req in &reqs {
            let before = list.len();
            list.retain(|line| spec::parse(line).map_or(true, |r| r.key != req.key));
            if list.len() < before {
                report.removed.push(req.name.clone());
            } else {
                report.not_found.push(req.name.clone());
            }
        }
        if !report.removed.is_empty() {
            write_list(self.storage.as_ref(), &list).await?;
            report.removed_from_config = true;
            if self.owned
                && install::uninstall(&self.python, &report.removed, self.config.install_timeout)
                    .await
                    .is_err()
            {
                report.failed.clone_from(&report.removed);
            }
        }
        Ok(report)
    }

    /// Installs every configured package that is missing.
    pub async fn sync(&self) -> Result<SyncReport, DepsError> {
        let _guard = self.lock.lock().await;
        let list = read_list(self.storage.as_ref()).await?;
        let reqs = parse_all(&list)?;
        self.install(&reqs).await
    }

    async fn install(&self, reqs: &[Requirement]) -> Result<SyncReport, DepsError> {
        if reqs.is_empty() {
            return Ok(SyncReport::default());
        }
        let dirs = self
            .import_dirs
            .get_or_try_init(|| install::import_dirs(&self.python))
            .await?;
        let mut report = SyncReport::default();
        let mut missing = Vec::new();
        // A bare name or an exact pin is answered from the folder names; any
        // other specifier by the interpreter itself (PEP 440 ordering).
        let mut ask = Vec::new();
        for req in reqs {
            let version = install::installed_version(dirs, &req.key);
            match (version, req.exact_version()) {
                (None, _) => missing.push(req.spec.clone()),
                (Some(_), Some(None)) => report.already_present.push(req.spec.clone()),
                (Some(v), Some(Some(pin))) if v == pin => {
                    report.already_present.push(req.spec.clone());
                }
                (Some(_), Some(Some(_))) => missing.push(req.spec.clone()),
                (Some(_), None) => ask.push(req.spec.clone()),
            }
        }
        let present = install::present(&self.python, &ask).await?;
        for (spec, found) in ask.into_iter().zip(present) {
            if found {
                report.already_present.push(spec);
            } else {
                missing.push(spec);
            }
        }
        if missing.is_empty() {
            return Ok(report);
        }
        match install::install(&self.python, &missing, self.config.install_timeout).await {
            Ok(()) => report.installed = missing,
            Err(e) if missing.len() == 1 => {
                report.errors.insert(missing[0].clone(), e.to_string());
                report.failed = missing;
            }
            Err(_) => {
                // One bad spec fails the whole batch: install one by one so
                // the good ones land and each failure has its own reason.
                for spec in missing {
                    match install::install(
                        &self.python,
                        std::slice::from_ref(&spec),
                        self.config.install_timeout,
                    )
                    .await
                    {
                        Ok(()) => report.installed.push(spec),
                        Err(e) => {
                            report.errors.insert(spec.clone(), e.to_string());
                            report.failed.push(spec);
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    async fn remember(&self, specs: &[String]) -> Result<(), DepsError> {
        let _guard = self.lock.lock().await;
        self.remember_locked(specs).await
    }

    /// Adds `specs` to the stored list, replacing an entry of the same package.
    async fn remember_locked(&self, specs: &[String]) -> Result<(), DepsError> {
        if specs.is_empty() {
            return Ok(());
        }
        let reqs = parse_all(specs)?;
        let mut list = read_list(self.storage.as_ref()).await?;
        if reqs.iter().all(|r| list.contains(&r.spec)) {
            // Nothing to record: no write (and no fsync) for a repeated add.
            return Ok(());
        }
        for req in reqs {
            list.retain(|line| spec::parse(line).map_or(true, |r| r.key != req.key));
            list.push(req.spec);
        }
        if list.len() > MAX_DEPS {
            return Err(DepsError::Limit {
                message: format!(
                    "the list would hold {} packages; the limit is {MAX_DEPS} (`MAX_DEPS`)",
                    list.len()
                ),
            });
        }
        write_list(self.storage.as_ref(), &list).await?;
        Ok(())
    }
}

/// Makes the session's [`DepsManager`] for `factory`'s executor: resolves
/// where packages go (pointing the worker at an owned venv when needed) and,
/// when configured, installs the list now. A failed sync is logged, not
/// fatal: the session starts and agent code can see what is missing.
pub(crate) async fn attach(
    config: DepsConfig,
    storage: &Arc<dyn Storage>,
    factory: &mut dyn crate::executor::ExecutorFactory,
) -> Result<Option<Arc<DepsManager>>, crate::Error> {
    let target = factory.deps_target();
    if target == DepsTarget::Unsupported {
        // An executor that cannot install packages still runs code; `deps`
        // calls then say so.
        tracing::debug!("this executor cannot install packages: `deps` is off");
        return Ok(None);
    }
    let (manager, worker) = DepsManager::prepare(config, Arc::clone(storage), target).await?;
    if let Some(python) = worker {
        factory.use_python(python);
    }
    if manager.sync_on_start() {
        match manager.sync().await {
            Ok(report) if !report.failed.is_empty() => {
                tracing::warn!(failed = ?report.failed, errors = ?report.errors, "some configured packages could not be installed");
            }
            Ok(report) => {
                tracing::debug!(installed = ?report.installed, present = ?report.already_present, "dependencies in sync");
            }
            Err(e) => tracing::warn!(%e, "the configured packages could not be installed"),
        }
    }
    Ok(Some(Arc::new(manager)))
}

fn parse_all(specs: &[String]) -> Result<Vec<Requirement>, DepsError> {
    if specs.len() > MAX_SPECS_PER_CALL {
        return Err(DepsError::Limit {
            message: format!(
                "{} packages in one call; the limit is {MAX_SPECS_PER_CALL} (`MAX_SPECS_PER_CALL`)",
                specs.len()
            ),
        });
    }
    Ok(specs
        .iter()
        .map(|s| spec::parse(s))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The stored list: one requirement a line (`requirements.txt` without
/// options), blank lines and `#` comments ignored.
async fn read_list(storage: &dyn Storage) -> Result<Vec<String>, StorageError> {
    let Some(text) = storage.deps_get().await? else {
        return Ok(Vec::new());
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| {
            let ok = spec::parse(l).is_ok();
            if !ok {
                tracing::warn!(
                    line = l,
                    "skipping a stored dependency that is not a valid spec"
                );
            }
            ok
        })
        .map(str::to_owned)
        .collect())
}

async fn write_list(storage: &dyn Storage, list: &[String]) -> Result<(), StorageError> {
    let mut text = list.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    storage.deps_put(&text).await
}

/// `<venvs>/<hash of library and interpreter>`: one owned venv per library
/// and base interpreter.
fn owned_venv_dir(config: &DepsConfig, storage: &dyn Storage, python: &Path) -> PathBuf {
    let root = config.venvs_dir.clone().unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("py-code-mode")
            .join("venvs")
    });
    // FNV-1a: the same folder for the same library and interpreter across
    // builds and toolchains (std's hasher makes no such promise).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let key = format!("{}\0{}", storage.location(), python.display());
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    root.join(format!("{hash:016x}"))
}
