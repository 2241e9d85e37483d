//! `--memory`, `--cpus`, `--pids-limit`, `--allow-network`, `--allow-read`,
//! `--allow-write`: the limits every isolating executor takes, spelled the
//! same whichever one runs the code. Each executor applies its own defaults
//! to what is not given.

use std::path::PathBuf;

use clap::Args;

use crate::env_vars;

/// The smallest memory limit accepted: an interpreter with the runtime
/// loaded needs about 12 MiB; less would only fail obscurely at start.
pub const MIN_MEMORY: u64 = 32 << 20;
/// The largest memory limit accepted (1 TiB): more is a typo.
pub const MAX_MEMORY: u64 = 1 << 40;
/// The most processes a limit may allow.
pub const MAX_PIDS: u64 = 1 << 22;
/// The most CPUs a limit may name.
pub const MAX_CPUS: f64 = 1024.0;

/// Limits on what agent code may use, for the executors that enforce them.
#[derive(Debug, Clone, Default, Args)]
pub struct IsolationArgs {
    /// Memory the worker may use (`512m`, `1g`); default per executor
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_MEMORY, value_parser = parse_memory, value_name = "SIZE")]
    pub memory: Option<u64>,
    /// CPUs the worker may use (`1`, `0.5`); default per executor
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_CPUS, value_parser = parse_cpus, allow_negative_numbers = true, value_name = "N")]
    pub cpus: Option<f64>,
    /// Processes the worker may run at once; default per executor
    #[arg(long, global = true, env = env_vars::PY_CODE_MODE_PIDS_LIMIT, value_parser = parse_pids, value_name = "N")]
    pub pids_limit: Option<u64>,
    /// Let agent code reach the network (off by default in isolating executors)
    #[arg(long, global = true)]
    pub allow_network: bool,
    /// Show a host folder (or file) to agent code, read-only, at the same path (repeatable)
    #[arg(long, global = true, value_name = "PATH")]
    pub allow_read: Vec<PathBuf>,
    /// Show a host folder to agent code, writable, at the same path (repeatable)
    #[arg(long, global = true, value_name = "PATH")]
    pub allow_write: Vec<PathBuf>,
}

impl IsolationArgs {
    /// The first limit given, as its option: an executor that cannot
    /// enforce limits refuses them rather than ignore them silently.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.memory.is_some(), "--memory"),
            (self.cpus.is_some(), "--cpus"),
            (self.pids_limit.is_some(), "--pids-limit"),
            (self.allow_network, "--allow-network"),
            (!self.allow_read.is_empty(), "--allow-read"),
            (!self.allow_write.is_empty(), "--allow-write"),
        ]
        .into_iter()
        .find_map(|(given, option)| given.then_some(option))
    }
}

fn parse_memory(text: &str) -> Result<u64, String> {
    py_code_mode::size_bytes("--memory", text, MIN_MEMORY, MAX_MEMORY).map_err(|e| e.to_string())
}

fn parse_cpus(text: &str) -> Result<f64, String> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`--cpus` must be a number of CPUs, not `{text}`"))?;
    if cpus.is_finite() && cpus > 0.0 && cpus <= MAX_CPUS {
        Ok(cpus)
    } else {
        Err(format!(
            "`--cpus` must be above 0 and at most {MAX_CPUS}, not {text}"
        ))
    }
}

fn parse_pids(text: &str) -> Result<u64, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`--pids-limit` must be a whole number, not `{text}`"))?;
    py_code_mode::count("--pids-limit", n, 1, MAX_PIDS).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_their_range_are_usage_errors_naming_the_option() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert!(parse_memory("1m").is_err_and(|e| e.starts_with("`--memory`")));
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "2000", "x"] {
            assert!(
                parse_cpus(bad).is_err_and(|e| e.starts_with("`--cpus`")),
                "{bad}"
            );
        }
        assert_eq!(parse_pids("256"), Ok(256));
        assert!(parse_pids("0").is_err_and(|e| e.starts_with("`--pids-limit`")));
    }
}
