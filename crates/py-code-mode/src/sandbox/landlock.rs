//! Landlock: the filesystem view as access rules, TCP off with the network,
//! and signals and abstract UNIX sockets scoped to the sandbox.
//!
//! Applied after the namespaces (a Landlock domain made before the user
//! namespace's maps are written would forbid writing them). With namespaces
//! the rules repeat the view (a second wall should a mount be missed);
//! without them they are the view: the same read-only paths of the host,
//! and the session's scratch folder as the only writable place.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible as _, LandlockStatus, Ruleset,
    RulesetAttr as _, RulesetCreatedAttr as _, RulesetStatus, Scope, path_beneath_rules,
};

use super::{SANDBOX_TMP, Spec};

/// The newest ABI whose rights we ask for and tested (Linux 6.12: scopes).
/// Older kernels get what they support (best effort), reported in the status.
const ABI_TESTED: ABI = ABI::V6;

/// Restricts this process (and the worker it will exec) to the view.
pub(crate) fn restrict(spec: &Spec, namespaces: bool) -> Result<String, String> {
    let error = |e: landlock::RulesetError| format!("Landlock: {e}");
    let mut writable: Vec<std::path::PathBuf> = spec.writable.clone();
    let mut read_only = spec.read_only.clone();
    if namespaces {
        writable.push(SANDBOX_TMP.into());
        writable.push("/dev/shm".into());
        read_only.push("/proc".into());
    } else {
        // The host's `/tmp` is shared with every user: the scratch folder
        // (also `TMPDIR`) is the worker's only writable place.
        writable.push(spec.scratch.clone());
    }
    let devices = [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
    ];
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI_TESTED))
        .map_err(error)?
        .scope(Scope::from_all(ABI_TESTED))
        .map_err(error)?;
    if !spec.network {
        // No rule for any port: every TCP bind and connect is denied.
        ruleset = ruleset
            .handle_access(AccessNet::from_all(ABI_TESTED))
            .map_err(error)?;
    }
    // With namespaces the root holds only the view: listing its folders
    // (not reading their files) shows nothing of the host.
    let listable: &[&str] = if namespaces { &["/"] } else { &[] };
    let status = ruleset
        .create()
        .map_err(error)?
        .add_rules(path_beneath_rules(listable, AccessFs::ReadDir))
        .map_err(error)?
        .add_rules(path_beneath_rules(
            &read_only,
            AccessFs::from_read(ABI_TESTED),
        ))
        .map_err(error)?
        .add_rules(path_beneath_rules(devices, AccessFs::from_file(ABI_TESTED)))
        .map_err(error)?
        .add_rules(path_beneath_rules(
            &writable,
            AccessFs::from_all(ABI_TESTED),
        ))
        .map_err(error)?
        .restrict_self()
        .map_err(error)?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => format!("ABI {}", effective_abi as i32),
        LandlockStatus::NotEnabled => return Err("Landlock is not enabled in this kernel".into()),
        LandlockStatus::NotImplemented => {
            return Err("Landlock is not built into this kernel".into());
        }
    };
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(abi),
        RulesetStatus::PartiallyEnforced => Ok(format!("{abi}, partly enforced")),
        RulesetStatus::NotEnforced => Err(format!("Landlock rules not enforced ({abi})")),
    }
}
