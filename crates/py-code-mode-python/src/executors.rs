//! The executor classes users pass to `Session(executor=...)`. They hold
//! settings only; the session builds the executor when it starts.

use std::path::PathBuf;
use std::time::Duration;

use py_code_mode::{ContainerEngine, ContainerMount, ExecutorFactory, SubprocessConfig};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::inprocess::{InProcessConfig, InProcessFactory};

/// Default cap on one run's stdout and on its stderr, in bytes (as the core's).
const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// Runs agent code in this interpreter, on a thread of its own (the default).
#[pyclass(frozen, module = "py_code_mode", name = "InProcessExecutor")]
pub(crate) struct InProcessExecutor {
    #[pyo3(get)]
    timeout: Option<f64>,
    #[pyo3(get)]
    output_limit: usize,
    /// 0.10's `InProcessConfig`, when given.
    #[pyo3(get)]
    config: Option<Py<PyAny>>,
    compat: Compat,
}

#[pymethods]
impl InProcessExecutor {
    /// `InProcessExecutor(timeout=...)`, or 0.10's `InProcessExecutor(config=InProcessConfig(...))`.
    #[new]
    #[pyo3(signature = (config = None, *, timeout = None, output_limit = DEFAULT_OUTPUT_LIMIT))]
    fn new(
        config: Option<Bound<'_, PyAny>>,
        timeout: Option<f64>,
        output_limit: usize,
    ) -> PyResult<Self> {
        let config = config.filter(|c| !c.is_none());
        let compat = match &config {
            Some(c) => Compat::read(c)?,
            None => Compat::default(),
        };
        let timeout = timeout.or(compat.default_timeout);
        seconds(timeout)?;
        Ok(Self {
            timeout,
            output_limit,
            config: config.map(Bound::unbind),
            compat,
        })
    }

    fn __repr__(&self) -> String {
        format!("InProcessExecutor(timeout={:?})", self.timeout)
    }
}

/// Runs agent code in a Python worker process (killed and restarted on timeout).
#[pyclass(frozen, module = "py_code_mode", name = "SubprocessExecutor")]
pub(crate) struct SubprocessExecutor {
    #[pyo3(get)]
    python: Option<PathBuf>,
    #[pyo3(get)]
    cwd: Option<PathBuf>,
    #[pyo3(get)]
    env: Vec<(String, String)>,
    #[pyo3(get)]
    timeout: Option<f64>,
    #[pyo3(get)]
    output_limit: usize,
    /// Workers kept started ahead for sessions of this configuration (0: none).
    #[pyo3(get)]
    pool_size: usize,
    /// 0.10's `SubprocessConfig`, when given.
    #[pyo3(get)]
    config: Option<Py<PyAny>>,
    compat: Compat,
}

#[pymethods]
impl SubprocessExecutor {
    /// `SubprocessExecutor(python, cwd=, env=, timeout=)`, or 0.10's
    /// `SubprocessExecutor(config=SubprocessConfig(...))` (also positional).
    #[new]
    #[pyo3(signature = (python = None, *, cwd = None, env = None, timeout = None, output_limit = DEFAULT_OUTPUT_LIMIT, pool_size = 0, config = None))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn new(
        py: Python<'_>,
        python: Option<Bound<'_, PyAny>>,
        cwd: Option<PathBuf>,
        env: Option<std::collections::BTreeMap<String, String>>,
        timeout: Option<f64>,
        output_limit: usize,
        pool_size: usize,
        config: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        shared_pool(pool_size)?;
        // 0.10 passed the config first: `SubprocessExecutor(SubprocessConfig(...))`.
        let (python, config) = match python.filter(|p| !p.is_none()) {
            Some(p) if p.hasattr("allow_runtime_deps")? => (None, Some(p)),
            Some(p) => (Some(p.extract::<PathBuf>()?), config),
            None => (None, config),
        };
        let config = config.filter(|c| !c.is_none());
        let compat = match &config {
            Some(c) => Compat::read(c)?,
            None => Compat::default(),
        };
        let timeout = timeout.or(compat.default_timeout);
        seconds(timeout)?;
        // The worker runs on this interpreter unless told otherwise, so agent
        // code imports the packages of the caller's environment.
        let python = match python.or(compat.worker_python(py)?) {
            Some(python) => Some(python),
            None => py
                .import("sys")?
                .getattr("executable")?
                .extract::<Option<PathBuf>>()?
                .filter(|p| !p.as_os_str().is_empty()),
        };
        Ok(Self {
            python,
            cwd,
            env: env.unwrap_or_default().into_iter().collect(),
            timeout,
            output_limit,
            pool_size,
            config: config.map(Bound::unbind),
            compat,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "SubprocessExecutor(python={:?}, timeout={:?})",
            self.python.as_ref().map(|p| p.display().to_string()),
            self.timeout
        )
    }
}

impl SubprocessExecutor {
    /// The settings of `SubprocessExecutor()`.
    pub(crate) fn default_for(py: Python<'_>) -> PyResult<Self> {
        Self::new(py, None, None, None, None, DEFAULT_OUTPUT_LIMIT, 0, None)
    }
}

/// The largest memory limit accepted (1 TiB): more is a typo.
const MAX_MEMORY: u64 = 1 << 40;

/// Settings of the container executor, with the seed's names.
#[pyclass(frozen, module = "py_code_mode", name = "ContainerConfig")]
pub(crate) struct ContainerConfig {
    #[pyo3(get)]
    image: String,
    #[pyo3(get)]
    timeout: Option<f64>,
    /// Bytes.
    #[pyo3(get)]
    memory: u64,
    #[pyo3(get)]
    cpus: f64,
    #[pyo3(get)]
    pids_limit: u64,
    #[pyo3(get)]
    network: bool,
    #[pyo3(get)]
    mounts: Vec<String>,
    #[pyo3(get)]
    environment: Vec<(String, String)>,
    #[pyo3(get)]
    engine: Option<String>,
    #[pyo3(get)]
    pool_size: usize,
    #[pyo3(get)]
    output_limit: usize,
    core: py_code_mode::ContainerConfig,
}

#[pymethods]
impl ContainerConfig {
    #[new]
    #[pyo3(signature = (
        image = py_code_mode::DEFAULT_IMAGE.to_owned(), timeout = None, *, memory = None,
        cpus = py_code_mode::DEFAULT_CPUS, pids_limit = py_code_mode::DEFAULT_PIDS_LIMIT,
        network = false, mounts = None, environment = None, engine = None,
        pool_size = py_code_mode::DEFAULT_POOL_SIZE, output_limit = DEFAULT_OUTPUT_LIMIT
    ))]
    #[expect(clippy::too_many_arguments, reason = "the seed's keyword arguments")]
    fn new(
        image: String,
        timeout: Option<f64>,
        memory: Option<&Bound<'_, PyAny>>,
        cpus: f64,
        pids_limit: u64,
        network: bool,
        mounts: Option<Vec<String>>,
        environment: Option<std::collections::BTreeMap<String, String>>,
        engine: Option<String>,
        pool_size: usize,
        output_limit: usize,
    ) -> PyResult<Self> {
        seconds(timeout)?;
        let memory = match memory {
            None => py_code_mode::DEFAULT_MEMORY,
            Some(m) => {
                let text = match m.extract::<u64>() {
                    Ok(bytes) => bytes.to_string(),
                    Err(_) => m.extract::<String>().map_err(|_| {
                        PyTypeError::new_err(
                            "`memory` must be a size like \"512m\" or a number of bytes",
                        )
                    })?,
                };
                py_code_mode::size_bytes(
                    "memory",
                    &text,
                    py_code_mode::MIN_CONTAINER_MEMORY,
                    MAX_MEMORY,
                )
                .map_err(|e| PyValueError::new_err(e.to_string()))?
            }
        };
        let kind = match engine.as_deref() {
            None => None,
            Some(name) => Some(ContainerEngine::parse(name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "`engine` must be \"docker\" or \"podman\", not `{name}`"
                ))
            })?),
        };
        let mounts = mounts.unwrap_or_default();
        let parsed = mounts
            .iter()
            .map(|m| ContainerMount::parse(m))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let environment: Vec<(String, String)> =
            environment.unwrap_or_default().into_iter().collect();
        let core = py_code_mode::ContainerConfig {
            image: image.clone(),
            engine: kind,
            memory,
            cpus,
            pids_limit,
            network,
            mounts: parsed,
            env: environment.clone(),
            pool_size,
            output_limit,
            ..py_code_mode::ContainerConfig::default()
        };
        core.validate()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self {
            image,
            timeout,
            memory,
            cpus,
            pids_limit,
            network,
            mounts,
            environment,
            engine,
            pool_size,
            output_limit,
            core,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "ContainerConfig(image={:?}, timeout={:?}, memory={}, cpus={}, pids_limit={}, network={})",
            self.image,
            self.timeout,
            self.memory,
            self.cpus,
            self.pids_limit,
            if self.network { "True" } else { "False" }
        )
    }
}

/// Runs agent code in a Docker/Podman container: `ContainerExecutor(ContainerConfig(...))`.
#[pyclass(frozen, module = "py_code_mode", name = "ContainerExecutor")]
pub(crate) struct ContainerExecutor {
    #[pyo3(get)]
    config: Py<ContainerConfig>,
}

#[pymethods]
impl ContainerExecutor {
    #[new]
    #[pyo3(signature = (config = None))]
    fn new(py: Python<'_>, config: Option<Py<ContainerConfig>>) -> PyResult<Self> {
        let config = match config {
            Some(config) => config,
            None => Py::new(
                py,
                ContainerConfig::new(
                    py_code_mode::DEFAULT_IMAGE.to_owned(),
                    None,
                    None,
                    py_code_mode::DEFAULT_CPUS,
                    py_code_mode::DEFAULT_PIDS_LIMIT,
                    false,
                    None,
                    None,
                    None,
                    py_code_mode::DEFAULT_POOL_SIZE,
                    DEFAULT_OUTPUT_LIMIT,
                )?,
            )?,
        };
        Ok(Self { config })
    }

    fn __repr__(&self) -> String {
        format!("ContainerExecutor({})", self.config.get().__repr__())
    }
}

/// What a session needs to know of its executor object.
pub(crate) struct ExecutorChoice {
    pub factory: Box<dyn ExecutorFactory>,
    pub timeout: Option<Duration>,
    /// 0.10's executor settings: `deps`, `allow_runtime_deps`, `tools_path`.
    pub compat: Compat,
}

/// This interpreter's `sys.executable`, if it has one.
fn this_python(py: Python<'_>) -> PyResult<Option<PathBuf>> {
    Ok(py
        .import("sys")?
        .getattr("executable")?
        .extract::<Option<PathBuf>>()?
        .filter(|p| !p.as_os_str().is_empty()))
}

/// Reads `executor=`; `None` means in-process, as in the seed.
pub(crate) fn executor_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<ExecutorChoice> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        let py = Python::attach(this_python)?;
        return Ok(ExecutorChoice {
            factory: Box::new(InProcessFactory(InProcessConfig {
                output_limit: DEFAULT_OUTPUT_LIMIT,
                python: py,
            })),
            timeout: None,
            compat: Compat::default(),
        });
    };
    if let Ok(inprocess) = obj.cast::<InProcessExecutor>() {
        let e = inprocess.get();
        return Ok(ExecutorChoice {
            factory: Box::new(InProcessFactory(InProcessConfig {
                output_limit: e.output_limit,
                python: this_python(obj.py())?,
            })),
            timeout: seconds(e.timeout)?,
            compat: e.compat.clone(),
        });
    }
    if let Ok(subprocess) = obj.cast::<SubprocessExecutor>() {
        let e = subprocess.get();
        return Ok(ExecutorChoice {
            factory: Box::new(SubprocessConfig {
                python: e.python.clone(),
                cwd: e.cwd.clone(),
                env: e.env.clone(),
                output_limit: e.output_limit,
                pool: shared_pool(e.pool_size)?,
            }),
            timeout: seconds(e.timeout)?,
            compat: e.compat.clone(),
        });
    }
    if let Ok(sandbox) = obj.cast::<crate::sandbox::SandboxExecutor>() {
        let e = sandbox.get();
        return Ok(ExecutorChoice {
            factory: Box::new(e.core_config()?),
            timeout: seconds(e.timeout)?,
            compat: Compat::default(),
        });
    }
    if let Ok(container) = obj.cast::<ContainerExecutor>() {
        let config = container.get().config.get();
        return Ok(ExecutorChoice {
            factory: Box::new(config.core.clone()),
            timeout: seconds(config.timeout)?,
            compat: Compat::default(),
        });
    }
    Err(PyTypeError::new_err(format!(
        "`executor` must be an InProcessExecutor, a SubprocessExecutor, a SandboxExecutor or a ContainerExecutor, not `{}`",
        obj.get_type().name()?
    )))
}

/// 0.10's executor configuration fields (`InProcessConfig`, `SubprocessConfig`),
/// read by name so any object with those attributes works.
#[derive(Debug, Clone)]
pub(crate) struct Compat {
    pub default_timeout: Option<f64>,
    pub tools_path: Option<PathBuf>,
    pub deps: Vec<String>,
    pub allow_runtime_deps: bool,
    pub venv_path: Option<PathBuf>,
    pub python_version: Option<String>,
}

impl Default for Compat {
    fn default() -> Self {
        Self {
            default_timeout: None,
            tools_path: None,
            deps: Vec::new(),
            // 0.10's default: agent code may add packages.
            allow_runtime_deps: true,
            venv_path: None,
            python_version: None,
        }
    }
}

/// The most lines read from a `deps_file` (as the core's list bound).
const MAX_DEPS_FILE_LINES: usize = py_code_mode::deps::MAX_DEPS;

impl Compat {
    fn read(config: &Bound<'_, PyAny>) -> PyResult<Self> {
        fn field<'py, T: FromPyObjectOwned<'py>>(
            config: &Bound<'py, PyAny>,
            name: &str,
        ) -> PyResult<Option<T>> {
            match config.getattr(name) {
                Ok(v) if !v.is_none() => Ok(Some(v.extract::<T>().map_err(Into::into)?)),
                _ => Ok(None),
            }
        }
        let mut deps: Vec<String> = field(config, "deps")?.unwrap_or_default();
        if let Some(file) = field::<PathBuf>(config, "deps_file")? {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                PyValueError::new_err(format!("cannot read `deps_file` `{}`: {e}", file.display()))
            })?;
            deps.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .take(MAX_DEPS_FILE_LINES)
                    .map(str::to_owned),
            );
        }
        for spec in &deps {
            py_code_mode::deps::spec::parse(spec)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        Ok(Self {
            default_timeout: field(config, "default_timeout")?,
            tools_path: field(config, "tools_path")?,
            deps,
            allow_runtime_deps: field(config, "allow_runtime_deps")?.unwrap_or(true),
            venv_path: field(config, "venv_path")?,
            python_version: field(config, "python_version")?,
        })
    }

    /// The worker's interpreter 0.10's fields ask for: the venv at
    /// `venv_path` (made on first use), or `python<version>` on PATH when
    /// `python_version` is not this interpreter's.
    fn worker_python(&self, py: Python<'_>) -> PyResult<Option<PathBuf>> {
        if let Some(venv) = &self.venv_path {
            let python = venv.join("bin").join("python");
            if !python.exists() {
                let base = this_python(py)?.unwrap_or_else(|| PathBuf::from("python3"));
                let status = py.detach(|| {
                    std::process::Command::new(&base)
                        .args(["-I", "-m", "venv"])
                        .arg(venv)
                        .stdin(std::process::Stdio::null())
                        .status()
                });
                if !status.is_ok_and(|s| s.success()) {
                    return Err(PyValueError::new_err(format!(
                        "cannot create the venv at `venv_path` `{}`",
                        venv.display()
                    )));
                }
            }
            return Ok(Some(python));
        }
        if let Some(version) = &self.python_version {
            let info = py.import("sys")?.getattr("version_info")?;
            let current = format!(
                "{}.{}",
                info.getattr("major")?.extract::<u32>()?,
                info.getattr("minor")?.extract::<u32>()?
            );
            if version.trim() != current {
                return Ok(Some(PathBuf::from(format!("python{}", version.trim()))));
            }
        }
        Ok(None)
    }
}

/// A timeout in seconds as a duration; it must be positive and finite.
pub(crate) fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|t| {
            Duration::try_from_secs_f64(t)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "`timeout` must be a positive number of seconds, not {t}"
                    ))
                })
        })
        .transpose()
}

/// The process's pool of `size` idle workers per configuration (`None` for
/// 0): one per size, since a pool keys its workers by their whole
/// configuration, so sessions share a worker only if they would have
/// started the same one.
pub(crate) fn shared_pool(size: usize) -> PyResult<Option<py_code_mode::WorkerPool>> {
    static POOLS: std::sync::Mutex<std::collections::BTreeMap<usize, py_code_mode::WorkerPool>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    if size == 0 {
        return Ok(None);
    }
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(pool) = pools.get(&size) {
        return Ok(Some(pool.clone()));
    }
    let pool = py_code_mode::WorkerPool::new(size)
        .map_err(|e| PyValueError::new_err(format!("`pool_size`: {e}")))?;
    pools.insert(size, pool.clone());
    Ok(Some(pool))
}
