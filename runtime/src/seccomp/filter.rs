//! Builds the libseccomp filter context for a [`Profile`] and exports it as classic BPF.
//!
//! libseccomp only runs in the parent: the exported `sock_filter` array is all the child needs,
//! so the child makes a single seccomp(2) call and never touches libseccomp's allocator.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{ScmpFilterContext, ScmpSyscall};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use super::profile::{Profile, Rule};
use super::SeccompError;

/// runc enables libseccomp's binary-tree syscall lookup above this many rules.
const BINARY_TREE_THRESHOLD: usize = 32;

/// Size of one `struct sock_filter` as libseccomp writes it (host byte order).
const INSN_SIZE: usize = 8;

/// Creates the libseccomp context: default action, architectures, then one rule per syscall name
/// (runc's `InitSeccomp` + `matchCall`).
pub(crate) fn build(profile: &Profile) -> Result<ScmpFilterContext, SeccompError> {
    let mut ctx = ScmpFilterContext::new_filter(profile.default_action).map_err(libseccomp_err(
        "linux.seccomp.defaultAction",
        "creating the filter",
    ))?;
    // The native architecture is always part of a new context, as in runc.
    for (i, arch) in profile.arches.iter().enumerate() {
        let field = format!("linux.seccomp.architectures[{i}]");
        ctx.add_arch(*arch)
            .map_err(libseccomp_err(&field, "adding the architecture"))?;
    }
    if profile.rules.len() > BINARY_TREE_THRESHOLD {
        // Not fatal (runc only logs): the filter is correct without the optimisation.
        let _ = ctx.set_ctl_optimize(2);
    }
    for rule in &profile.rules {
        add_rule(&mut ctx, rule, profile)?;
    }
    Ok(ctx)
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &Rule,
    profile: &Profile,
) -> Result<(), SeccompError> {
    // libseccomp rejects a rule whose action is the default action; runc skips it silently.
    if rule.action == profile.default_action {
        return Ok(());
    }
    // Like runc, a name libseccomp does not know is not an error: the profile may list syscalls
    // newer than this libseccomp, or from another architecture.
    let Ok(syscall) = ScmpSyscall::from_name(&rule.name) else {
        return Ok(());
    };
    let step = || format!("adding the rule for syscall {:?}", rule.name);
    if rule.conditions.is_empty() {
        return ctx
            .add_rule(rule.action, syscall)
            .map_err(libseccomp_err(&rule.field, &step()));
    }
    // libseccomp ANDs the conditions of one rule and refuses two on the same argument; runc then
    // falls back to one rule per condition (which ORs them).
    let mut seen = [false; 6];
    let repeated = rule
        .arg_indexes
        .iter()
        .any(|&i| std::mem::replace(&mut seen[i], true));
    if repeated {
        for cond in &rule.conditions {
            ctx.add_rule_conditional(rule.action, syscall, std::slice::from_ref(cond))
                .map_err(libseccomp_err(&rule.field, &step()))?;
        }
        Ok(())
    } else {
        ctx.add_rule_conditional(rule.action, syscall, &rule.conditions)
            .map_err(libseccomp_err(&rule.field, &step()))
    }
}

/// Exports the context's BPF program (seccomp_export_bpf) through a memfd and parses it.
pub(crate) fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let io_err = |step: &'static str| move |source| SeccompError::Export { step, source };
    let fd = memfd_create(c"husk-seccomp-bpf", MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|errno| io_err("creating a memfd")(std::io::Error::from(errno)))?;
    let mut file = File::from(fd);
    ctx.export_bpf(&mut file)
        .map_err(libseccomp_err("linux.seccomp", "exporting the BPF program"))?;
    file.seek(SeekFrom::Start(0))
        .map_err(io_err("rewinding the memfd"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io_err("reading the memfd"))?;
    parse(&bytes)
}

/// Splits libseccomp's output into instructions (`u16 code, u8 jt, u8 jf, u32 k`, host order).
fn parse(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let chunks = bytes.chunks_exact(INSN_SIZE);
    if !chunks.remainder().is_empty() {
        return Err(SeccompError::Truncated { len: bytes.len() });
    }
    Ok(chunks
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

fn libseccomp_err<'a>(
    field: &'a str,
    step: &'a str,
) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError + 'a {
    move |source| SeccompError::Libseccomp {
        field: field.to_owned(),
        step: step.to_owned(),
        source,
    }
}
