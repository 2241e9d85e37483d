//! `--image`, `--engine`: where `--executor container` runs the worker.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use py_code_mode::{ContainerConfig, ContainerEngine, ContainerMount};

use crate::env_vars;
use crate::isolation::IsolationArgs;

/// The container engine's CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    Docker,
    Podman,
}

/// The container executor's options.
#[derive(Debug, Clone, Default, Args)]
pub struct ContainerArgs {
    /// The worker image for `--executor container` (default `py-code-mode:latest`, built by
    /// `docker build -f docker/Dockerfile.tools -t py-code-mode:latest .`)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_IMAGE, value_name = "NAME")]
    pub image: Option<String>,
    /// The container engine (default: `docker`, else `podman`, on PATH)
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_ENGINE, value_enum)]
    pub engine: Option<EngineKind>,
}

impl ContainerArgs {
    /// The first container option given, for executors that take none.
    pub fn first_given(&self) -> Option<&'static str> {
        if self.image.is_some() {
            Some("--image")
        } else if self.engine.is_some() {
            Some("--engine")
        } else {
            None
        }
    }

    /// The container config from these options and the isolation limits;
    /// `--allow-read`/`--allow-write` folders are bind-mounted at the same
    /// path, read-only or writable.
    pub fn config(&self, isolation: &IsolationArgs) -> anyhow::Result<ContainerConfig> {
        let defaults = ContainerConfig::default();
        let mut mounts = Vec::new();
        let folders = (isolation.allow_read.iter().map(|p| (p, true)))
            .chain(isolation.allow_write.iter().map(|p| (p, false)));
        for (path, read_only) in folders {
            let source = path
                .canonicalize()
                .with_context(|| format!("cannot mount `{}`", path.display()))?;
            let target = source
                .to_str()
                .with_context(|| format!("cannot mount `{}`: not UTF-8", source.display()))?
                .to_owned();
            mounts.push(ContainerMount {
                source,
                target,
                read_only,
            });
        }
        Ok(ContainerConfig {
            image: self.image.clone().unwrap_or(defaults.image.clone()),
            engine: self.engine.map(|e| match e {
                EngineKind::Docker => ContainerEngine::Docker,
                EngineKind::Podman => ContainerEngine::Podman,
            }),
            memory: isolation.memory.unwrap_or(defaults.memory),
            cpus: isolation.cpus.unwrap_or(defaults.cpus),
            pids_limit: isolation.pids_limit.unwrap_or(defaults.pids_limit),
            network: isolation.allow_network,
            mounts,
            ..defaults
        })
    }
}
