//! The seccomp filter: system calls agent code never needs fail with
//! `EPERM` (tracing other processes, mounting, new namespaces, kernel
//! modules and keyrings, BPF, perf, io_uring, which would bypass the rest);
//! without the network, every socket family but `AF_UNIX` fails with
//! `EAFNOSUPPORT`; with it, raw and packet sockets still fail.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Denied whatever their arguments.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_bpf,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// `clone` flags that make namespaces; `clone` with any of them is denied.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

/// `SOCK_RAW`, and the mask of the type argument that holds it.
const SOCK_TYPE_MASK: u64 = 0xf;

/// Installs the filters on this process (inherited by the worker).
pub(crate) fn install(network: bool) -> Result<String, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| format!("seccomp: no filter for this architecture: {e}"))?;
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&n| (n, Vec::new())).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| rule(0, SeccompCmpOp::MaskedEq(flag_bits(flag)), flag_bits(flag)))
        .collect::<Result<Vec<_>, _>>()?;
    denied.insert(libc::SYS_clone, clone_rules);
    if network {
        // Raw and packet sockets read and forge traffic of the whole host.
        denied.insert(
            libc::SYS_socket,
            vec![
                rule(0, SeccompCmpOp::Eq, flag_bits(libc::AF_PACKET))?,
                rule(
                    1,
                    SeccompCmpOp::MaskedEq(SOCK_TYPE_MASK),
                    flag_bits(libc::SOCK_RAW),
                )?,
            ],
        );
    }
    let mut filters = vec![filter(denied, arch, libc::EPERM)?];
    // `clone3` takes its flags in memory, out of a filter's sight: `ENOSYS`
    // makes the C library fall back to `clone`, which the filter above sees.
    filters.push(filter(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        arch,
        libc::ENOSYS,
    )?);
    if !network {
        let unix = flag_bits(libc::AF_UNIX);
        filters.push(filter(
            BTreeMap::from([
                (libc::SYS_socket, vec![rule(0, SeccompCmpOp::Ne, unix)?]),
                (libc::SYS_socketpair, vec![rule(0, SeccompCmpOp::Ne, unix)?]),
            ]),
            arch,
            libc::EAFNOSUPPORT,
        )?);
    }
    for program in &filters {
        seccompiler::apply_filter(program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(if network {
        "namespaces, mounts, tracing, kernel and raw sockets denied".to_owned()
    } else {
        "namespaces, mounts, tracing, kernel and every socket but AF_UNIX denied".to_owned()
    })
}

fn flag_bits(flag: libc::c_int) -> u64 {
    u64::from(flag.unsigned_abs())
}

fn rule(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule, String> {
    let condition = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
        .map_err(|e| format!("seccomp: {e}"))?;
    SeccompRule::new(vec![condition]).map_err(|e| format!("seccomp: {e}"))
}

fn filter(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    arch: TargetArch,
    errno: libc::c_int,
) -> Result<BpfProgram, String> {
    let errno = u32::try_from(errno).map_err(|e| e.to_string())?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    filter.try_into().map_err(|e| format!("seccomp: {e}"))
}
