//! `linux.seccomp` (OCI) → classic BPF, compiled with `seccompiler` before any fork and
//! installed by the container's process as its last set-up step.
//!
//! seccompiler gives one filter a single "match" action. A profile with several actions
//! (allow, `ERRNO(EPERM)` by default, `ERRNO(ENOSYS)` for `clone3`, ...) becomes a stack:
//!
//! - one filter per action other than allow and the default ("overlays"): the syscalls of
//!   that action (with their argument conditions) answer it, everything else is allowed;
//! - the main filter: the allowed syscalls **and every overlay's syscalls** answer allow,
//!   everything else the default action.
//!
//! The kernel runs every filter and keeps the most restrictive answer, so a syscall in an
//! overlay gets the overlay's action whatever the main filter says, and a syscall nobody
//! names gets the default. The main filter is installed last: it may deny `seccomp` itself.
//!
//! Names this table does not know are skipped (docker does the same with names libseccomp
//! does not know). Only the native architecture is compiled; a syscall made through another
//! ABI (i386 `int 0x80`) kills the process, stricter than docker, which allows x86 and x32.

#[cfg(target_arch = "x86_64")]
mod x86_64;

use crate::{Error, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::{BTreeMap, BTreeSet};

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64::SYSCALLS;

#[cfg(not(target_arch = "x86_64"))]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(not(target_arch = "x86_64"))]
const SYSCALLS: &[(&str, i64)] = &[];

/// The number of a syscall of the native architecture, by name.
pub fn syscall_nr(name: &str) -> Option<i64> {
    SYSCALLS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| SYSCALLS[i].1)
}

/// A compiled profile: BPF programs in the order they are installed.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    programs: Vec<BpfProgram>,
}

impl Filters {
    /// Number of stacked filters.
    pub fn len(&self) -> usize {
        self.programs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    /// BPF instructions of each filter (the kernel takes at most 4096 per filter).
    pub fn instructions(&self) -> Vec<usize> {
        self.programs.iter().map(Vec::len).collect()
    }

    /// Installs the filters on the calling thread. Without `CAP_SYS_ADMIN` the kernel wants
    /// `no_new_privs` first; the caller sets it (or holds the capability).
    pub(crate) fn install(&self) -> Result<()> {
        for p in &self.programs {
            let prog = libc::sock_fprog {
                len: p.len() as u16,
                filter: p.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: the kernel copies the program; `prog` points into `p`, alive here.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                )
            };
            if r != 0 {
                return Err(crate::sys::last_err("install seccomp filter"));
            }
        }
        Ok(())
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction> {
    use LinuxSeccompAction::*;
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        ScmpActAllow => SeccompAction::Allow,
        ScmpActErrno => SeccompAction::Errno(errno),
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActLog => SeccompAction::Log,
        ScmpActTrace => SeccompAction::Trace(errno),
        ScmpActNotify => {
            return Err(Error::Spec(
                "seccomp: SCMP_ACT_NOTIFY is not supported".into(),
            ))
        }
    })
}

fn conditions(sc: &LinuxSyscall) -> Result<Option<SeccompRule>> {
    let args = sc.args().as_deref().unwrap_or(&[]);
    if args.is_empty() {
        return Ok(None);
    }
    let bad = |e: seccompiler::BackendError| Error::Spec(format!("seccomp: {e}"));
    let mut conds = Vec::with_capacity(args.len());
    for a in args {
        let index = u8::try_from(a.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| Error::Spec(format!("seccomp: argument index {}", a.index())))?;
        let (op, value) = match a.op() {
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
            // libseccomp's (arg & value) == valueTwo
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().unwrap_or(0),
            ),
        };
        conds.push(SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(bad)?);
    }
    Ok(Some(SeccompRule::new(conds).map_err(bad)?))
}

/// The syscalls of one action: unconditional ones, and rule chains (ORed) for the others.
#[derive(Default)]
struct Group {
    always: BTreeSet<i64>,
    rules: BTreeMap<i64, Vec<SeccompRule>>,
}

impl Group {
    fn add(&mut self, nr: i64, rule: &Option<SeccompRule>) {
        match rule {
            None => {
                self.always.insert(nr);
            }
            Some(r) => self.rules.entry(nr).or_default().push(r.clone()),
        }
    }

    fn merge(&mut self, other: &Group) {
        self.always.extend(other.always.iter().copied());
        for (nr, rs) in &other.rules {
            self.rules
                .entry(*nr)
                .or_default()
                .extend(rs.iter().cloned());
        }
    }

    /// seccompiler's map: an empty chain matches unconditionally.
    fn into_map(self) -> BTreeMap<i64, Vec<SeccompRule>> {
        let mut m = self.rules;
        for nr in self.always {
            m.insert(nr, Vec::new());
        }
        m
    }
}

// classic BPF opcodes (linux/bpf_common.h): BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JGT|BPF_K,
// BPF_JMP|BPF_JGE|BPF_K, BPF_RET|BPF_K
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JGT_K: u16 = 0x25;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
/// `__X32_SYSCALL_BIT`: x32 calls share x86_64's audit arch, numbered from here
const X32_BIT: u32 = 0x4000_0000;

/// Syscalls newer than any the profile names answer `ENOSYS` instead of the default errno
/// (as runc does): a libc that tries a new call (`fchmodat2`, `clone3`...) then falls back
/// to the old one, where `EPERM` would be taken as a real refusal. Patched into the main
/// filter right after it loads the syscall number (seccompiler's layout: 3 instructions of
/// arch check, then that load); every later jump is relative and lies after the insertion.
fn enosys_above(p: &mut BpfProgram, newest: i64) {
    let loads_nr = p.get(3).is_some_and(|i| i.code == BPF_LD_W_ABS && i.k == 0);
    let Ok(newest) = u32::try_from(newest) else {
        return;
    };
    if !loads_nr {
        return;
    }
    let ins = |code, k, jt, jf| sock_filter { code, jt, jf, k };
    let patch = [
        // x32 numbers: leave them to the rules (default answer)
        ins(BPF_JMP_JGE_K, X32_BIT, 2, 0),
        ins(BPF_JMP_JGT_K, newest, 0, 1),
        ins(
            BPF_RET_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            0,
            0,
        ),
    ];
    p.splice(4..4, patch);
}

/// Compiles `linux.seccomp` for the native architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filters> {
    if profile.listener_path().is_some() {
        return Err(Error::Spec(
            "seccomp: a notify listener is not supported".into(),
        ));
    }
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut allow = Group::default();
    // the highest syscall number the profile names (any action)
    let mut newest = 0;
    // overlays in the order their action first appears
    let mut overlays: Vec<(SeccompAction, Group)> = Vec::new();
    for sc in profile.syscalls().as_deref().unwrap_or(&[]) {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == default {
            continue;
        }
        let rule = conditions(sc)?;
        let group = if act == SeccompAction::Allow {
            &mut allow
        } else {
            match overlays.iter().position(|(a, _)| *a == act) {
                Some(i) => &mut overlays[i].1,
                None => {
                    overlays.push((act.clone(), Group::default()));
                    &mut overlays.last_mut().expect("just pushed").1
                }
            }
        };
        for name in sc.names() {
            if let Some(nr) = syscall_nr(name) {
                group.add(nr, &rule);
                newest = newest.max(nr);
            }
        }
    }
    let bad = |e: seccompiler::BackendError| Error::Spec(format!("seccomp: {e}"));
    let mut programs = Vec::with_capacity(overlays.len() + 1);
    for (act, g) in &overlays {
        allow.merge(g);
        let map = Group {
            always: g.always.clone(),
            rules: g.rules.clone(),
        }
        .into_map();
        let f = SeccompFilter::new(map, SeccompAction::Allow, act.clone(), ARCH).map_err(bad)?;
        programs.push(BpfProgram::try_from(f).map_err(bad)?);
    }
    if default != SeccompAction::Allow {
        let errno_default = matches!(default, SeccompAction::Errno(_));
        let f = SeccompFilter::new(allow.into_map(), default, SeccompAction::Allow, ARCH)
            .map_err(bad)?;
        let mut main = BpfProgram::try_from(f).map_err(bad)?;
        if errno_default && newest > 0 {
            enosys_above(&mut main, newest);
        }
        programs.push(main);
    }
    Ok(Filters { programs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("valid OCI seccomp")
    }

    #[test]
    fn table_is_sorted_and_knows_the_usual_calls() {
        assert!(SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(syscall_nr("read"), Some(0));
            assert_eq!(syscall_nr("clone3"), Some(435));
            assert_eq!(syscall_nr("unshare"), Some(272));
            assert_eq!(syscall_nr("no_such_call"), None);
        }
    }

    #[test]
    fn errno_overlays_are_installed_before_the_main_filter() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write", "nosuchcall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]
        })))
        .unwrap();
        assert_eq!(f.len(), 2);
        // overlay: arch check (3) + load nr + clone3 (4) + default ret
        let n = f.instructions();
        assert!(n[0] < 12, "{n:?}");
        assert!(n[1] > n[0], "{n:?}");
    }

    #[test]
    fn default_allow_gives_only_overlays() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        })))
        .unwrap();
        assert_eq!(f.len(), 1);
    }

    /// Installs `f` in a forked child (with no_new_privs, so no root needed), makes the
    /// calls and returns their errnos (0 = success).
    #[cfg(target_arch = "x86_64")]
    fn errnos_under(f: &Filters, calls: &[(i64, [u64; 2])]) -> Vec<i32> {
        let mut fds = [0; 2];
        // SAFETY: pipe, fork, and in the child only syscalls and _exit (no allocation).
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if f.install().is_err() {
                    libc::_exit(3);
                }
                for (nr, a) in calls {
                    let r = libc::syscall(*nr, a[0], a[1], 0, 0, 0);
                    let e: i32 = if r < 0 { *libc::__errno_location() } else { 0 };
                    if r == 0 && (*nr == libc::SYS_clone || *nr == libc::SYS_clone3) {
                        libc::_exit(0); // a child made by the probe itself
                    }
                    libc::write(fds[1], &e as *const i32 as *const libc::c_void, 4);
                }
                libc::_exit(0);
            }
            libc::close(fds[1]);
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
            assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st}");
            let mut out = Vec::new();
            let mut e = 0i32;
            while libc::read(fds[0], &mut e as *mut i32 as *mut libc::c_void, 4) == 4 {
                out.push(e);
            }
            libc::close(fds[0]);
            out
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn filters_answer_as_the_profile_says() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "syscalls": [
                {"names": ["read", "write", "close", "exit", "exit_group", "getpid",
                           "unshare", "wait4"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}
            ]
        })))
        .unwrap();
        let got = errnos_under(
            &f,
            &[
                (libc::SYS_getpid, [0, 0]),
                (libc::SYS_clone3, [0, 0]),
                // CLONE_NEWUSER: the errno overlay (EACCES) wins over the allow rule
                (libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0]),
                // no flags: allowed
                (libc::SYS_unshare, [0, 0]),
                (libc::SYS_personality, [0xffff_ffff, 0]),
                (libc::SYS_personality, [4, 0]),
                (libc::SYS_mkdir, [0, 0]),
                // newer than anything the profile names: ENOSYS
                (452, [0, 0]),
            ],
        );
        assert_eq!(
            got,
            vec![
                0,
                libc::ENOSYS,
                libc::EACCES,
                0,
                0,
                libc::EPERM,
                libc::EPERM,
                libc::ENOSYS
            ]
        );
    }

    #[test]
    fn notify_and_bad_indexes_are_refused() {
        let bad = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]
        }));
        assert!(compile(&bad).is_err());
        let notify = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(compile(&notify).is_err());
    }
}
