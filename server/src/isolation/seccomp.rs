//! The seccomp filter every jailed command runs under, in the spirit of the default profiles of
//! container runtimes: a deny-list of the syscalls that reach kernel surface a sandbox never needs
//! (keys, BPF, perf, mounts, namespaces, modules, kexec, swap, reboot, ...), answered with EPERM so
//! programs see an ordinary refusal rather than a crash.
//!
//! Two programs are loaded (bwrap `--add-seccomp-fd`, twice), because one seccompiler filter has a
//! single match action: the deny-list (EPERM), and `clone3` answered with ENOSYS, which makes libc
//! fall back to `clone`, whose flags a filter can see (`clone3` passes them in memory). With both
//! loaded the kernel applies the strictest answer, so the two never conflict.
//!
//! Architecture: each program first checks `seccomp_data.arch` and kills the process on any other
//! architecture (a 32-bit `int 0x80` call on x86_64 would otherwise use other syscall numbers).
//! On x86_64, x32 calls (number bit 30 set, same arch value) are refused too.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// Namespace flags of clone(2): a new user namespace is the one an unprivileged process may
/// create, and with it comes a fresh set of capabilities over new kernel surface.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// Syscalls refused outright with EPERM.
fn denied() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_setns,
        libc::SYS_unshare,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_syslog,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_lookup_dcookie,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_iopl, libc::SYS_ioperm]);
    v
}

fn target_arch() -> Result<TargetArch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else if cfg!(target_arch = "riscv64") {
        Ok(TargetArch::riscv64)
    } else {
        Err(format!(
            "no seccomp filter for the {} architecture",
            std::env::consts::ARCH
        ))
    }
}

/// The two compiled programs, as the raw bytes bwrap reads from its seccomp descriptors.
pub fn programs() -> Result<Vec<Vec<u8>>, String> {
    let arch = target_arch()?;
    let err = |e: seccompiler::BackendError| format!("building the seccomp filter failed: {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied().into_iter().map(|nr| (nr, Vec::new())).collect();
    let clone_rules = CLONE_NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            SeccompRule::new(vec![cond])
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(err)?;
    let mut out = Vec::new();
    for f in [deny, clone3] {
        let prog: BpfProgram = f.try_into().map_err(err)?;
        out.push(to_bytes(&x32_guard(prog)));
    }
    Ok(out)
}

/// The filter slirp4netns runs under (besides its own): no signal to any process and no reading
/// of another's memory, answered with EPERM. It keeps euid 0, in the host's pid namespace, so a
/// bug in libslirp must not reach the host's root processes through `kill`. It signals nothing
/// itself (an `abort` still ends it: glibc falls back to a fault).
pub fn slirp_program() -> Result<BpfProgram, String> {
    let arch = target_arch()?;
    let err = |e: seccompiler::BackendError| format!("building the slirp4netns filter failed: {e}");
    let rules: BTreeMap<i64, Vec<SeccompRule>> = [
        libc::SYS_kill,
        libc::SYS_tkill,
        libc::SYS_tgkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
        libc::SYS_pidfd_send_signal,
        libc::SYS_pidfd_open,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
    ]
    .into_iter()
    .map(|nr| (nr, Vec::new()))
    .collect();
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    let prog: BpfProgram = f.try_into().map_err(err)?;
    Ok(x32_guard(prog))
}

/// On x86_64, prepends a refusal of x32 syscalls (numbers with bit 30 set share the x86_64 arch
/// value, so the deny-list alone would not see them). Prepending keeps every relative jump of the
/// compiled program valid.
fn x32_guard(prog: BpfProgram) -> BpfProgram {
    if !cfg!(target_arch = "x86_64") {
        return prog;
    }
    // BPF_LD | BPF_W | BPF_ABS (0x00 | 0x00 | 0x20).
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x05 | 0x30;
    const RET_K: u16 = 0x06;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let mut out = vec![
        // seccomp_data.nr is at offset 0.
        ins(LD_W_ABS, 0, 0, 0),
        ins(JGE_K, 0, 1, 0x4000_0000),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ];
    out.extend(prog);
    out
}

fn to_bytes(prog: &[sock_filter]) -> Vec<u8> {
    let mut b = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        b.extend_from_slice(&i.code.to_ne_bytes());
        b.push(i.jt);
        b.push(i.jf);
        b.extend_from_slice(&i.k.to_ne_bytes());
    }
    b
}

/// A close-on-exec memory file holding `bytes`, positioned at its start: what bwrap reads the
/// filter from. A fresh one per jail, since the file offset is shared with the child.
pub fn memfd_with(bytes: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: memfd_create with a static NUL-terminated name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"tl-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    std::io::Write::write_all(&mut file, bytes)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    let _ = file.as_raw_fd();
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slirp_filter_refuses_a_signal_to_another_process() {
        let prog = slirp_program().unwrap();
        // SAFETY: the forked child only makes raw syscalls on memory prepared before the fork,
        // then _exits.
        unsafe {
            let parent = libc::getpid();
            let pid = libc::fork();
            if pid == 0 {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let fprog = libc::sock_fprog {
                    len: prog.len() as u16,
                    filter: prog.as_ptr() as *mut libc::sock_filter,
                };
                if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog) != 0 {
                    libc::_exit(2);
                }
                let refused = libc::kill(parent, 0) == -1 && *libc::__errno_location() == libc::EPERM;
                libc::_exit(if refused { 0 } else { 1 });
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            assert!(libc::WIFEXITED(status), "{status}");
            assert_eq!(libc::WEXITSTATUS(status), 0, "kill(parent, 0) was not refused");
        }
    }

    #[test]
    fn both_programs_compile_to_whole_instructions() {
        let p = programs().unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|b| !b.is_empty() && b.len() % 8 == 0));
    }
}
