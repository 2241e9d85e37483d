//! The container executor: the same worker and protocol as the subprocess
//! executor, in a Docker or Podman container reached over `run -i` stdio.
//!
//! Every container runs `python3 -I -c <runtime>` with the runtime source
//! passed by the host on each start, so an image never holds a runtime that
//! disagrees with the host's protocol; the image needs only Python 3.11+
//! (`docker/Dockerfile.tools`). The host keeps tools, storage and search; the
//! container gets no network unless allowed, a read-only root with a
//! writable scratch (`/workspace`) and `/tmp`, a non-root user, no
//! capabilities, `no-new-privileges` and memory/CPU/pids limits.
//!
//! Starting a container costs ~300 ms, so started containers wait in a pool
//! shared by every executor of the same config in the process (see
//! [`super::container_pool`]). Killing the engine's CLI does not stop a
//! container: a worker's guard removes its container (`rm -f`) when the
//! worker is dropped (timeout, crash, `close()`), a watchdog removes the
//! host's containers when the host exits (even by `SIGKILL`), and the first
//! pool of a process sweeps away containers of hosts that are gone.

use std::path::PathBuf;
use std::sync::Arc;

use super::container_pool::{Engine, Pool};
use super::subprocess::{
    DEFAULT_OUTPUT_LIMIT, LaunchedWorker, SubprocessConfig, SubprocessExecutor, WorkerCommand,
    WorkerLauncher,
};
use super::{Executor, ExecutorFactory, RUNTIME_SOURCE};
use crate::error::ExecutorError;
use crate::host::Host;

/// The image the seed's examples and `docker/Dockerfile.tools` name.
pub const DEFAULT_IMAGE: &str = "py-code-mode:latest";
/// Memory per container: the interpreter with the runtime takes ~15 MiB, and
/// agent code that loads data frames wants hundreds.
pub const DEFAULT_MEMORY: u64 = 512 << 20;
/// One CPU: agent code cannot starve the host of its other cores.
pub const DEFAULT_CPUS: f64 = 1.0;
/// Processes and threads per container: plenty for subprocesses and thread
/// pools, and a fork bomb stops there.
pub const DEFAULT_PIDS_LIMIT: u64 = 256;
/// Started containers kept ready per config: a session start and the spare a
/// `reset` takes are served without waiting for `docker run`.
pub const DEFAULT_POOL_SIZE: usize = 2;
/// The uid and gid of `docker/Dockerfile.tools`'s user; any image works,
/// since the worker needs no home or entry in `/etc/passwd`.
pub const DEFAULT_USER: (u32, u32) = (10001, 10001);
/// The smallest memory limit: an interpreter with the runtime needs ~15 MiB.
pub const MIN_MEMORY: u64 = 32 << 20;
/// The most containers a pool keeps started.
pub const MAX_POOL_SIZE: usize = 64;
/// `python -c` takes the runtime as one argument, which Linux caps at 128 KiB
/// (`MAX_ARG_STRLEN`); the runtime is far below.
const MAX_ARG: usize = 128 * 1024;
const _: () = assert!(RUNTIME_SOURCE.len() < MAX_ARG);

/// The working folder agent code starts in: a tmpfs, the only writable place
/// besides `/tmp` (both charged to the container's memory limit).
pub const SCRATCH: &str = "/workspace";

/// Which container engine runs the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerEngine {
    Docker,
    Podman,
}

impl ContainerEngine {
    /// The engine's CLI name (`docker`, `podman`).
    pub fn command(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }

    /// `docker` or `podman`, spelled as on the command line.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "docker" => Some(Self::Docker),
            "podman" => Some(Self::Podman),
            _ => None,
        }
    }
}

/// A host folder mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerMount {
    /// An absolute path on the host.
    pub source: PathBuf,
    /// An absolute path in the container.
    pub target: String,
    pub read_only: bool,
}

impl ContainerMount {
    /// Parses Docker's `-v` spelling: `SOURCE:TARGET[:ro|:rw]`.
    pub fn parse(spec: &str) -> Result<Self, ExecutorError> {
        let invalid = |reason: &str| ExecutorError::Config {
            message: format!(
                "mount `{spec}`: {reason}\nhint: write `/host/path:/container/path` or `/host/path:/container/path:ro`"
            ),
        };
        let mut parts = spec.split(':');
        let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
            return Err(invalid("expected `SOURCE:TARGET`"));
        };
        let read_only = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => return Err(invalid(&format!("unknown mode `{other}`"))),
        };
        if parts.next().is_some() {
            return Err(invalid("too many `:`"));
        }
        let mount = Self {
            source: PathBuf::from(source),
            target: target.to_owned(),
            read_only,
        };
        mount.validate()?;
        Ok(mount)
    }

    fn validate(&self) -> Result<(), ExecutorError> {
        let source = self.source.to_string_lossy();
        let bad = |reason: String| ExecutorError::Config {
            message: format!("mount `{source}` → `{}`: {reason}", self.target),
        };
        if !self.source.is_absolute() || !self.target.starts_with('/') {
            return Err(bad("both paths must be absolute".into()));
        }
        // `--mount` is comma-separated `key=value`: a comma in a path would
        // add options of the caller's choosing.
        for path in [source.as_ref(), self.target.as_str()] {
            if path.contains([',', '"', '\n']) {
                return Err(bad("paths may not hold `,`, `\"` or newlines".into()));
            }
        }
        if !self.source.exists() {
            return Err(bad("the source does not exist".into()));
        }
        Ok(())
    }
}

/// How to run the worker in a container; an [`ExecutorFactory`].
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerConfig {
    /// The image, built from `docker/Dockerfile.tools` or any with Python 3.11+.
    pub image: String,
    /// The engine; `None` picks `docker`, else `podman`, on PATH.
    pub engine: Option<ContainerEngine>,
    /// Memory limit in bytes (swap included: no swap beyond it).
    pub memory: u64,
    pub cpus: f64,
    pub pids_limit: u64,
    /// Let agent code reach the network (`--network none` otherwise).
    pub network: bool,
    pub mounts: Vec<ContainerMount>,
    /// Extra environment variables in the container.
    pub env: Vec<(String, String)>,
    /// Started containers kept ready for new sessions (0: start on demand).
    pub pool_size: usize,
    /// The uid and gid the worker runs as; never 0.
    pub user: (u32, u32),
    /// The interpreter in the image.
    pub python: String,
    /// Cap on one run's stdout and on its stderr, in bytes.
    pub output_limit: usize,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            image: DEFAULT_IMAGE.to_owned(),
            engine: None,
            memory: DEFAULT_MEMORY,
            cpus: DEFAULT_CPUS,
            pids_limit: DEFAULT_PIDS_LIMIT,
            network: false,
            mounts: Vec::new(),
            env: Vec::new(),
            pool_size: DEFAULT_POOL_SIZE,
            user: DEFAULT_USER,
            python: "python3".to_owned(),
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

impl ContainerConfig {
    /// The default config for `image`.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            ..Self::default()
        }
    }

    /// Checks every value that reaches the engine's command line.
    pub fn validate(&self) -> Result<(), ExecutorError> {
        let bad = |message: String| Err(ExecutorError::Config { message });
        if self.image.is_empty()
            || self.image.starts_with('-')
            || self.image.contains(char::is_whitespace)
        {
            return bad(format!("`{}` is not an image name", self.image));
        }
        if self.memory < MIN_MEMORY {
            return bad(format!(
                "a memory limit of {} bytes is below the {} MiB an interpreter needs",
                self.memory,
                MIN_MEMORY >> 20
            ));
        }
        if !(self.cpus.is_finite() && self.cpus > 0.0 && self.cpus <= 1024.0) {
            return bad(format!(
                "`cpus` must be above 0 and at most 1024, not {}",
                self.cpus
            ));
        }
        if self.pids_limit < 8 {
            return bad(format!(
                "a pids limit of {} leaves the interpreter no threads (at least 8)",
                self.pids_limit
            ));
        }
        if self.pool_size > MAX_POOL_SIZE {
            return bad(format!(
                "`pool_size` is at most {MAX_POOL_SIZE}, not {}",
                self.pool_size
            ));
        }
        if self.user.0 == 0 || self.user.1 == 0 {
            return bad("the worker never runs as root (uid or gid 0)".into());
        }
        if self.python.is_empty() || self.python.starts_with('-') {
            return bad(format!("`{}` is not an interpreter", self.python));
        }
        for (key, _) in &self.env {
            let valid = key
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
            if key.is_empty() || !valid {
                return bad(format!("`{key}` is not an environment variable name"));
            }
        }
        for mount in &self.mounts {
            mount.validate()?;
        }
        Ok(())
    }

    /// The engine's `run` options after `run --init -i --name N --label L`:
    /// isolation, limits, mounts and environment.
    pub(crate) fn run_options(&self, engine: ContainerEngine) -> Vec<String> {
        let (uid, gid) = self.user;
        let mut args: Vec<String> = vec![
            "--user".into(),
            format!("{uid}:{gid}"),
            "--read-only".into(),
            "--tmpfs".into(),
            "/tmp:rw,nosuid,nodev,mode=1777".into(),
            // The image's folder ownership does not carry over to a tmpfs:
            // give it to the worker's user explicitly (Podman spells it `U`).
            "--tmpfs".into(),
            match engine {
                ContainerEngine::Docker => {
                    format!("{SCRATCH}:rw,nosuid,nodev,uid={uid},gid={gid},mode=0700")
                }
                ContainerEngine::Podman => format!("{SCRATCH}:rw,nosuid,nodev,mode=0700,U"),
            },
            "--workdir".into(),
            SCRATCH.into(),
            "--cap-drop".into(),
            "ALL".into(),
            "--security-opt".into(),
            "no-new-privileges".into(),
            "--memory".into(),
            self.memory.to_string(),
            // Swap equal to memory: the limit is the limit, no swapping past it.
            "--memory-swap".into(),
            self.memory.to_string(),
            "--cpus".into(),
            self.cpus.to_string(),
            "--pids-limit".into(),
            self.pids_limit.to_string(),
        ];
        if !self.network {
            args.extend(["--network".into(), "none".into()]);
        }
        if engine == ContainerEngine::Podman {
            // Rootful Podman raises these to the daemon-less defaults, which
            // needs CAP_SYS_RESOURCE; lower them explicitly.
            args.extend([
                "--ulimit".into(),
                "nofile=4096:4096".into(),
                "--ulimit".into(),
                "nproc=4096:4096".into(),
            ]);
        }
        for mount in &self.mounts {
            let mut spec = format!(
                "type=bind,source={},target={}",
                mount.source.to_string_lossy(),
                mount.target
            );
            if mount.read_only {
                spec.push_str(",readonly");
            }
            args.extend(["--mount".into(), spec]);
        }
        let output_limit = self.output_limit.to_string();
        let fixed = [
            ("PYTHONIOENCODING", "utf-8"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("HOME", SCRATCH),
            ("PY_CODE_MODE_OUTPUT_LIMIT", output_limit.as_str()),
        ];
        for (key, value) in fixed
            .iter()
            .map(|&(k, v)| (k, v))
            .chain(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            args.extend(["--env".into(), format!("{key}={value}")]);
        }
        args
    }

    /// The command in the container after the image.
    pub(crate) fn worker_command(&self) -> Vec<String> {
        vec![
            self.python.clone(),
            "-I".into(),
            "-c".into(),
            RUNTIME_SOURCE.into(),
        ]
    }
}

impl ExecutorFactory for ContainerConfig {
    fn build(self: Box<Self>, host: Arc<Host>) -> Result<Box<dyn Executor>, ExecutorError> {
        self.validate()?;
        let engine = Engine::find(self.engine)?;
        let output_limit = self.output_limit;
        let pool = Pool::shared(engine, &self)?;
        let config = SubprocessConfig {
            output_limit,
            ..SubprocessConfig::default()
        };
        Ok(Box::new(SubprocessExecutor::with_launcher(
            config,
            host,
            Arc::new(ContainerLauncher { pool }),
        )))
    }

    /// No network unless allowed; the engine enforces every limit. `deps`
    /// cannot install into the read-only image.
    fn capabilities(&self) -> Vec<super::Capability> {
        use super::Capability;
        let mut capabilities = vec![
            Capability::Timeout,
            Capability::ProcessIsolation,
            Capability::FilesystemIsolation,
            Capability::MemoryLimit,
            Capability::CpuLimit,
            Capability::Reset,
        ];
        if !self.network {
            capabilities.push(Capability::NetworkIsolation);
        }
        capabilities.sort();
        capabilities
    }
}

/// Takes workers from the config's pool (or starts one when it is empty).
struct ContainerLauncher {
    pool: Arc<Pool>,
}

#[async_trait::async_trait]
impl WorkerLauncher for ContainerLauncher {
    /// The container runs its own command (the image's interpreter, in its
    /// scratch folder), so the host's `command` is not used.
    async fn launch(&self, _command: WorkerCommand) -> Result<LaunchedWorker, ExecutorError> {
        self.pool.take().await
    }

    fn host_worker(&self) -> bool {
        false
    }

    /// `SIGINT` to `run -i` reaches the worker: the CLI forwards it to the
    /// container's init (`--sig-proxy`, on by default), which forwards it to
    /// the interpreter; the CLI itself keeps running.
    fn interruptible(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_docker_spelling_and_refuse_option_injection() {
        let mount = ContainerMount::parse("/tmp:/data:ro").unwrap();
        assert_eq!(mount.target, "/data");
        assert!(mount.read_only);
        assert!(!ContainerMount::parse("/tmp:/data").unwrap().read_only);
        for bad in [
            "/tmp",
            "tmp:/data",
            "/tmp:data",
            "/tmp:/data:rx",
            "/tmp:/data,readonly=false",
            "/does/not/exist:/data",
        ] {
            assert!(ContainerMount::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_refuses_root_tiny_limits_and_odd_names() {
        let ok = ContainerConfig::default();
        assert!(ok.validate().is_ok());
        for bad in [
            ContainerConfig {
                user: (0, 0),
                ..ok.clone()
            },
            ContainerConfig {
                memory: 1 << 20,
                ..ok.clone()
            },
            ContainerConfig {
                cpus: f64::NAN,
                ..ok.clone()
            },
            ContainerConfig {
                pids_limit: 1,
                ..ok.clone()
            },
            ContainerConfig {
                image: "--privileged".into(),
                ..ok.clone()
            },
            ContainerConfig {
                env: vec![("A=B".into(), "x".into())],
                ..ok.clone()
            },
            ContainerConfig {
                pool_size: 1000,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn run_options_isolate_by_default() {
        let args = ContainerConfig::default().run_options(ContainerEngine::Docker);
        let joined = args.join(" ");
        for expected in [
            "--user 10001:10001",
            "--read-only",
            "--cap-drop ALL",
            "--security-opt no-new-privileges",
            "--network none",
            "--memory 536870912",
            "--pids-limit 256",
        ] {
            assert!(
                joined.contains(expected),
                "{expected} missing from {joined}"
            );
        }
    }
}
