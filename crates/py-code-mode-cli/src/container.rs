//! `--image`, `--engine`: where `--executor container` runs the worker.

use clap::{Args, ValueEnum};
use py_code_mode::{ContainerConfig, ContainerEngine};

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

    /// The container config from these options and the isolation limits.
    pub fn config(&self, isolation: &IsolationArgs) -> ContainerConfig {
        let defaults = ContainerConfig::default();
        ContainerConfig {
            image: self.image.clone().unwrap_or(defaults.image.clone()),
            engine: self.engine.map(|e| match e {
                EngineKind::Docker => ContainerEngine::Docker,
                EngineKind::Podman => ContainerEngine::Podman,
            }),
            memory: isolation.memory.unwrap_or(defaults.memory),
            cpus: isolation.cpus.unwrap_or(defaults.cpus),
            pids_limit: isolation.pids_limit.unwrap_or(defaults.pids_limit),
            network: isolation.allow_network,
            ..defaults
        }
    }
}
