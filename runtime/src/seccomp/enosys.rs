//! The -ENOSYS stub runc prepends to every filter whose default action refuses syscalls.
//!
//! A profile lists the syscalls its author knew. A newer syscall (say `clone3` under an old
//! profile) would get the default action, typically EPERM, and libc would treat that as a real
//! failure instead of falling back to the older call. runc therefore prepends a few BPF
//! instructions: for each declared architecture, a syscall number above the largest one the
//! profile names gets `ENOSYS`, which libc reads as "not implemented, use the fallback". We
//! generate the same stub (`libcontainer/seccomp/patchbpf`), with the same limits: only the
//! declared `architectures` get a section, and nothing is added when the default action allows
//! (ALLOW, LOG, TRACE) or already returns ENOSYS.

use std::collections::BTreeMap;

use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};

use super::profile::Profile;
use super::SeccompError;

const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
/// x32 syscalls run on the x86_64 audit architecture with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// On s390(x) unknown "large" syscall numbers arrive as syscall 0 (the multiplexer).
const S390_MULTIPLEX_SYSCALL: u32 = 0;
/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// `AUDIT_ARCH_*` value the kernel reports in `seccomp_data.arch` for a libseccomp architecture.
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    Some(match arch {
        ScmpArch::Native => return audit_arch(ScmpArch::native()),
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::X8664 | ScmpArch::X32 => 0xc000_003e,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mips64N32 => 0xa000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mipsel64 => 0xc000_0008,
        ScmpArch::Mipsel64N32 => 0xe000_0008,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xc000_0015,
        ScmpArch::S390 => 0x0000_0016,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Parisc => 0x0000_000f,
        ScmpArch::Parisc64 => 0x8000_000f,
        ScmpArch::Riscv64 => 0xc000_00f3,
        _ => return None,
    })
}

/// Whether runc would prepend the stub for this default action.
fn wants_stub(default: ScmpAction) -> bool {
    !matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) && default != ScmpAction::Errno(libc::ENOSYS)
}

/// Where a stub jump goes; resolved to offsets once the layout is known.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// Instruction `n` of the same section.
    Local(usize),
    /// The first instruction of section `n`.
    Section(usize),
    Enosys,
    /// The first instruction of libseccomp's program.
    Filter,
}

#[derive(Clone, Copy)]
struct Insn {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        k,
        jt: To::Next,
        jf: To::Next,
    }
}

fn jump(code: u16, k: u32, jt: To, jf: To) -> Insn {
    Insn { code, k, jt, jf }
}

/// The stub to put in front of the exported program; empty when runc would not add one.
pub(crate) fn stub(profile: &Profile) -> Result<Vec<libc::sock_filter>, SeccompError> {
    if !wants_stub(profile.default_action) {
        return Ok(Vec::new());
    }
    // Largest syscall number per (audit arch, libseccomp arch), like runc's findLastSyscalls.
    let mut last: BTreeMap<u32, BTreeMap<u32, (ScmpArch, u32)>> = BTreeMap::new();
    for &arch in &profile.arches {
        let arch = if arch == ScmpArch::Native {
            ScmpArch::native()
        } else {
            arch
        };
        let Some(audit) = audit_arch(arch) else {
            continue;
        };
        let max = profile
            .rules
            .iter()
            .filter_map(|r| ScmpSyscall::from_name_by_arch(&r.name, arch).ok())
            .filter_map(|nr| u32::try_from(i32::from(nr)).ok())
            .max()
            .unwrap_or(0);
        if max > 0 {
            let key = u32::from(arch == ScmpArch::X32);
            last.entry(audit).or_default().insert(key, (arch, max));
        }
    }
    if last.is_empty() {
        return Ok(Vec::new());
    }

    let mut sections = Vec::new();
    for by_mode in last.values() {
        let mut section = vec![stmt(LD_W_ABS, OFFSET_NR)];
        let modes: Vec<(ScmpArch, u32)> = by_mode.values().copied().collect();
        match modes.as_slice() {
            [(ScmpArch::X8664, x86_max), (ScmpArch::X32, x32_max)] => section.extend([
                jump(JSET, X32_SYSCALL_BIT, To::Local(4), To::Next),
                jump(JGT, *x86_max, To::Enosys, To::Next),
                jump(JA, 0, To::Filter, To::Filter),
                jump(JGT, *x32_max, To::Enosys, To::Next),
                jump(JA, 0, To::Filter, To::Filter),
            ]),
            [(arch, max)] => {
                match arch {
                    ScmpArch::S390 | ScmpArch::S390X => {
                        section.push(jump(JEQ, S390_MULTIPLEX_SYSCALL, To::Enosys, To::Next))
                    }
                    // Leave the other x86_64 mode to the filter itself.
                    ScmpArch::X8664 => {
                        section.push(jump(JSET, X32_SYSCALL_BIT, To::Filter, To::Next))
                    }
                    ScmpArch::X32 => {
                        section.push(jump(JSET, X32_SYSCALL_BIT, To::Next, To::Filter))
                    }
                    _ => {}
                }
                section.push(jump(JGT, *max, To::Enosys, To::Next));
                section.push(jump(JA, 0, To::Filter, To::Filter));
            }
            _ => {
                return Err(SeccompError::EnosysStub {
                    reason: "unexpected architecture overlap",
                })
            }
        }
        sections.push(section);
    }

    let mut head = vec![stmt(LD_W_ABS, OFFSET_ARCH)];
    for (i, audit) in last.keys().enumerate() {
        head.push(jump(JEQ, *audit, To::Section(i), To::Next));
    }
    head.push(jump(JA, 0, To::Filter, To::Filter));
    assemble(head, sections)
}

/// Lays out `head`, the sections and the ENOSYS return, then resolves every jump.
fn assemble(
    head: Vec<Insn>,
    sections: Vec<Vec<Insn>>,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut starts = Vec::with_capacity(sections.len());
    let mut pos = head.len();
    for section in &sections {
        starts.push(pos);
        pos += section.len();
    }
    let enosys = pos;
    let filter = enosys + 1;

    let mut placed: Vec<(usize, Insn)> = head.into_iter().map(|i| (0, i)).collect();
    for (n, section) in sections.into_iter().enumerate() {
        placed.extend(section.into_iter().map(|i| (starts[n], i)));
    }
    let mut out = Vec::with_capacity(filter);
    for (at, (base, insn)) in placed.into_iter().enumerate() {
        let target = |to: To| match to {
            To::Next => at + 1,
            To::Local(n) => base + n,
            To::Section(n) => starts[n],
            To::Enosys => enosys,
            To::Filter => filter,
        };
        let offset = |to: To| -> Result<usize, SeccompError> {
            target(to)
                .checked_sub(at + 1)
                .ok_or(SeccompError::EnosysStub {
                    reason: "backward jump",
                })
        };
        let (jt, jf, k) = if insn.code == JA {
            (0, 0, u32::try_from(offset(insn.jt)?).unwrap_or(u32::MAX))
        } else if insn.code & 0x07 == libc::BPF_JMP as u16 {
            let short = |to| {
                u8::try_from(offset(to)?).map_err(|_| SeccompError::EnosysStub {
                    reason: "jump longer than 255",
                })
            };
            (short(insn.jt)?, short(insn.jf)?, insn.k)
        } else {
            (0, 0, insn.k)
        };
        out.push(libc::sock_filter {
            code: insn.code,
            jt,
            jf,
            k,
        });
    }
    out.push(libc::sock_filter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: RET_ENOSYS,
    });
    Ok(out)
}
