//! Switching sandbox layers off, for diagnostics and tests: to see what one
//! layer holds alone (Landlock without namespaces, as on a machine where
//! AppArmor blocks them), or to find which layer a program trips over.
//!
//! Two ways, which add up: [`LayersOff`] in `SandboxConfig::layers_off`, and
//! the environment variable [`ENV`] (`namespaces,seccomp`), read by
//! [`super::probe`] so that `py-code-mode sandbox`, `doctor` and the CLI's
//! choice of executor all see the layers as off. A layer switched off is
//! reported as `switched off (…)`, never as missing.

use serde::{Deserialize, Serialize};

use super::{LayerStatus, SandboxStatus};

/// The environment variable naming layers to switch off, comma-separated:
/// `namespaces`, `landlock`, `seccomp`, `cgroups`.
pub const ENV: &str = "PY_CODE_MODE_SANDBOX_OFF";

/// The layers that can be switched off, by the names [`ENV`] takes.
const NAMES: &[&str] = &["namespaces", "landlock", "seccomp", "cgroups"];

/// Sandbox layers to leave off even where they work. Diagnostics only: each
/// layer switched off weakens the sandbox (see docs/sandbox.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one switch per layer, as SandboxStatus has one field per layer"
)]
pub struct LayersOff {
    /// No namespaces and no filesystem view of its own: Landlock is the view.
    pub namespaces: bool,
    pub landlock: bool,
    pub seccomp: bool,
    /// No cgroups: memory and processes are held by rlimits, CPU only by the timeout.
    pub cgroups: bool,
}

impl LayersOff {
    /// Parses `namespaces,seccomp` (spaces and empty items allowed).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut off = Self::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "namespaces" => off.namespaces = true,
                "landlock" => off.landlock = true,
                "seccomp" => off.seccomp = true,
                "cgroups" => off.cgroups = true,
                other => {
                    return Err(format!(
                        "`{ENV}`: no sandbox layer `{other}`\nhint: name some of `{}`",
                        NAMES.join("`, `")
                    ));
                }
            }
        }
        Ok(off)
    }

    /// The layers [`ENV`] switches off (none when it is unset).
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(ENV) {
            Ok(text) => Self::parse(&text),
            Err(std::env::VarError::NotPresent) => Ok(Self::default()),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("`{ENV}` is not UTF-8")),
        }
    }

    /// Whether any layer is switched off.
    pub fn any(self) -> bool {
        self.namespaces || self.landlock || self.seccomp || self.cgroups
    }

    /// Both switch sets at once.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self {
            namespaces: self.namespaces || other.namespaces,
            landlock: self.landlock || other.landlock,
            seccomp: self.seccomp || other.seccomp,
            cgroups: self.cgroups || other.cgroups,
        }
    }

    /// Marks the layers switched off in `status` (those active ones only:
    /// a missing layer keeps the reason it is missing), saying by what.
    pub(crate) fn apply(self, status: &mut SandboxStatus, by: &str) {
        for (off, layer) in [
            (self.namespaces, &mut status.namespaces),
            (self.landlock, &mut status.landlock),
            (self.seccomp, &mut status.seccomp),
            (self.cgroups, &mut status.cgroups),
        ] {
            if off && layer.active {
                *layer = LayerStatus::off(format!("switched off ({by})"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_an_unknown_layer_is_refused() {
        assert_eq!(
            LayersOff::parse(" namespaces, seccomp,,"),
            Ok(LayersOff {
                namespaces: true,
                seccomp: true,
                ..LayersOff::default()
            })
        );
        assert_eq!(LayersOff::parse(""), Ok(LayersOff::default()));
        let error = LayersOff::parse("namespaces,net").expect_err("unknown");
        assert!(error.contains("no sandbox layer `net`"), "{error}");
    }

    #[test]
    fn a_switched_off_layer_says_so_and_a_missing_one_keeps_its_reason() {
        let mut status = SandboxStatus {
            namespaces: LayerStatus::on("user, pid"),
            landlock: LayerStatus::on("ABI 7"),
            seccomp: LayerStatus::off("not built in"),
            cgroups: LayerStatus::on("v1: memory"),
        };
        LayersOff::parse("namespaces,seccomp")
            .expect("parse")
            .apply(&mut status, "`PY_CODE_MODE_SANDBOX_OFF`");
        assert_eq!(
            status.namespaces,
            LayerStatus::off("switched off (`PY_CODE_MODE_SANDBOX_OFF`)")
        );
        assert_eq!(status.seccomp, LayerStatus::off("not built in"));
        assert!(status.landlock.active && status.cgroups.active);
        assert!(status.usable());
    }
}
