//! The sandbox as the command's default executor: chosen wherever the
//! kernel allows namespaces or Landlock, else the subprocess executor with a
//! one-line notice; and `py-code-mode sandbox`, which shows the layers.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use py_code_mode::SandboxConfig;
use py_code_mode::sandbox::{Launcher, probe};

use crate::config::ExecutorKind;
use crate::isolation::IsolationArgs;

/// The launcher that ships next to the `py-code-mode` binary.
pub const SMALL_LAUNCHER: &str = "py-code-mode-sandbox";

/// Starts sandboxed workers through [`SMALL_LAUNCHER`] when it is installed
/// next to this binary (`cargo install` puts it there): this binary's size
/// costs milliseconds of loading at each worker start. Without it, this
/// binary launches.
pub fn use_small_launcher() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let Some(small) = exe.parent().map(|dir| dir.join(SMALL_LAUNCHER)) else {
        return;
    };
    if small.is_file() {
        Launcher::set_small(Launcher {
            program: small,
            args: Vec::new(),
        });
    }
}

/// The executor when `--executor` is not given.
pub async fn default_executor(isolation: &IsolationArgs) -> anyhow::Result<ExecutorKind> {
    let reason = match Launcher::current_exe() {
        None => "this program was not started as the `py-code-mode` binary".to_owned(),
        Some(launcher) => match probe(&launcher).await {
            Ok(status) if status.usable() => return Ok(ExecutorKind::Sandbox),
            Ok(status) => status.summary(),
            Err(error) => error.to_string(),
        },
    };
    if let Some(option) = isolation.first_given() {
        bail!(
            "`{option}` needs the sandbox, which does not work here: {reason}\n\
             hint: `py-code-mode sandbox` shows why; drop `{option}` to run without it"
        );
    }
    #[expect(
        clippy::print_stderr,
        reason = "the one-line notice the fallback promises"
    )]
    {
        eprintln!(
            "notice: agent code runs without a sandbox ({reason}); `--executor subprocess` says so and silences this"
        );
    }
    Ok(ExecutorKind::Subprocess)
}

/// The sandbox's config from the limits given, defaults for the rest.
pub fn sandbox_config(isolation: &IsolationArgs) -> SandboxConfig {
    let defaults = SandboxConfig::default();
    SandboxConfig {
        memory: isolation.memory.unwrap_or(defaults.memory),
        cpus: isolation.cpus.unwrap_or(defaults.cpus),
        pids_limit: isolation.pids_limit.unwrap_or(defaults.pids_limit),
        network: isolation.allow_network,
        read_only_paths: isolation.allow_read.clone(),
        writable_paths: isolation.allow_write.clone(),
        ..defaults
    }
}

/// `py-code-mode sandbox`: the probed layers as JSON; exit code 1 when no
/// layer that makes a sandbox works.
pub async fn print_status() -> anyhow::Result<ExitCode> {
    let launcher = Launcher::current_exe()
        .context("this program was not started as the `py-code-mode` binary")?;
    let status = probe(&launcher).await?;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &status)?;
    writeln!(stdout)?;
    Ok(if status.usable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
