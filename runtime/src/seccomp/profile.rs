//! Reads `linux.seccomp` as plain strings and turns every name into a libseccomp value.
//!
//! The profile is read from JSON rather than from oci-spec's typed enums so that an unknown
//! action, operator, architecture or flag is reported with the JSON field that holds it (and so
//! that names oci-spec 0.8 lacks, such as `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` or
//! `SCMP_ARCH_PARISC`, still work). The mapping follows runc's `libcontainer/seccomp`.

use std::path::PathBuf;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp};
use serde::Deserialize;

use super::SeccompError;
use crate::sys::seccomp as sys;

/// Linux system calls take at most six arguments.
const MAX_ARGS: usize = 6;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<RawSyscall>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSyscall {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<RawArg>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: String,
}

/// One syscall name of one `syscalls[]` entry, resolved to libseccomp values.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// `linux.seccomp.syscalls[i].names[j]`, for error messages.
    pub field: String,
    pub name: String,
    pub action: ScmpAction,
    /// Argument index of each condition, parallel to `conditions`.
    pub arg_indexes: Vec<usize>,
    pub conditions: Vec<ScmpArgCompare>,
}

/// A validated profile: everything the filter builder needs, no strings left to interpret.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub default_action: ScmpAction,
    /// Declared `architectures`, in order (`SCMP_ARCH_NATIVE` already resolved).
    pub arches: Vec<ScmpArch>,
    /// seccomp(2) flags requested by `flags` (without `NEW_LISTENER`, see `uses_notify`).
    pub flags: u32,
    pub uses_notify: bool,
    /// Every name of every entry, including rules later skipped as redundant.
    pub rules: Vec<Rule>,
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: Option<String>,
}

impl Profile {
    /// Parses the JSON form of `linux.seccomp`.
    pub(crate) fn from_json(value: &serde_json::Value) -> Result<Self, SeccompError> {
        let raw = RawProfile::deserialize(value).map_err(SeccompError::Json)?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawProfile) -> Result<Self, SeccompError> {
        let default_action = action(
            &raw.default_action,
            raw.default_errno_ret,
            "linux.seccomp.defaultAction",
            "linux.seccomp.defaultErrnoRet",
        )?;
        if default_action == ScmpAction::Notify {
            return Err(SeccompError::NotifyDefault);
        }

        let mut arches = Vec::new();
        for (i, name) in raw.architectures.iter().flatten().enumerate() {
            arches.push(arch(name, &format!("linux.seccomp.architectures[{i}]"))?);
        }

        let mut rules = Vec::new();
        for (i, call) in raw.syscalls.iter().flatten().enumerate() {
            let field = format!("linux.seccomp.syscalls[{i}]");
            let action = action(
                &call.action,
                call.errno_ret,
                &format!("{field}.action"),
                &format!("{field}.errnoRet"),
            )?;
            let mut arg_indexes = Vec::new();
            let mut conditions = Vec::new();
            for (j, arg) in call.args.iter().flatten().enumerate() {
                conditions.push(condition(arg, &format!("{field}.args[{j}]"))?);
                arg_indexes.push(arg.index);
            }
            for (j, name) in call.names.iter().enumerate() {
                let field = format!("{field}.names[{j}]");
                if name.is_empty() {
                    return Err(SeccompError::EmptyName { field });
                }
                // runc: init reports the listener fd to its parent with write(2), so a notify
                // rule on write would hang the container's start.
                if action == ScmpAction::Notify && name == "write" {
                    return Err(SeccompError::NotifyWrite { field });
                }
                rules.push(Rule {
                    field,
                    name: name.clone(),
                    action,
                    arg_indexes: arg_indexes.clone(),
                    conditions: conditions.clone(),
                });
            }
        }
        let uses_notify = rules.iter().any(|r| r.action == ScmpAction::Notify);
        let no_listener = match raw.listener_path.as_deref() {
            Some(path) => path.as_os_str().is_empty(),
            None => true,
        };
        if uses_notify && no_listener {
            return Err(SeccompError::MissingListenerPath);
        }

        let mut flags = 0;
        for (i, name) in raw.flags.iter().flatten().enumerate() {
            let field = format!("linux.seccomp.flags[{i}]");
            let bit = flag(name, &field)?;
            if bit == sys::FLAG_WAIT_KILLABLE_RECV && !uses_notify {
                return Err(SeccompError::WaitKillableWithoutNotify { field });
            }
            flags |= bit;
        }

        Ok(Self {
            default_action,
            arches,
            flags,
            uses_notify,
            rules,
            listener_path: raw.listener_path,
            listener_metadata: raw.listener_metadata,
        })
    }
}

/// `SCMP_ACT_*` → libseccomp action; `errno_ret` is the return value of ERRNO and the message
/// of TRACE, EPERM when absent (runc's `getAction`).
fn action(
    name: &str,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<ScmpAction, SeccompError> {
    let ret = || -> Result<u16, SeccompError> {
        let value = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(value).map_err(|_| SeccompError::ErrnoRetRange {
            field: errno_field.to_owned(),
            value,
        })
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(i32::from(ret()?)),
        // runc maps the deprecated SCMP_ACT_KILL to KILL_THREAD, as libseccomp does.
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(ret()?),
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        _ => {
            return Err(SeccompError::UnknownAction {
                field: field.to_owned(),
                value: name.to_owned(),
            })
        }
    })
}

/// `SCMP_ARCH_*` → libseccomp architecture token.
fn arch(name: &str, field: &str) -> Result<ScmpArch, SeccompError> {
    Ok(match name {
        "SCMP_ARCH_NATIVE" => ScmpArch::native(),
        "SCMP_ARCH_X86" => ScmpArch::X86,
        "SCMP_ARCH_X86_64" => ScmpArch::X8664,
        "SCMP_ARCH_X32" => ScmpArch::X32,
        "SCMP_ARCH_ARM" => ScmpArch::Arm,
        "SCMP_ARCH_AARCH64" => ScmpArch::Aarch64,
        "SCMP_ARCH_MIPS" => ScmpArch::Mips,
        "SCMP_ARCH_MIPS64" => ScmpArch::Mips64,
        "SCMP_ARCH_MIPS64N32" => ScmpArch::Mips64N32,
        "SCMP_ARCH_MIPSEL" => ScmpArch::Mipsel,
        "SCMP_ARCH_MIPSEL64" => ScmpArch::Mipsel64,
        "SCMP_ARCH_MIPSEL64N32" => ScmpArch::Mipsel64N32,
        "SCMP_ARCH_PPC" => ScmpArch::Ppc,
        "SCMP_ARCH_PPC64" => ScmpArch::Ppc64,
        "SCMP_ARCH_PPC64LE" => ScmpArch::Ppc64Le,
        "SCMP_ARCH_S390" => ScmpArch::S390,
        "SCMP_ARCH_S390X" => ScmpArch::S390X,
        "SCMP_ARCH_PARISC" => ScmpArch::Parisc,
        "SCMP_ARCH_PARISC64" => ScmpArch::Parisc64,
        "SCMP_ARCH_RISCV64" => ScmpArch::Riscv64,
        // SCMP_ARCH_LOONGARCH64 needs libseccomp 2.5.5; we link 2.5.4.
        _ => {
            return Err(SeccompError::UnknownArch {
                field: field.to_owned(),
                value: name.to_owned(),
            })
        }
    })
}

/// `SECCOMP_FILTER_FLAG_*` → seccomp(2) flag bit. TSYNC is accepted and ignored like runc does:
/// init is single-threaded when it loads the filter, and TSYNC cannot be combined with
/// `NEW_LISTENER`.
fn flag(name: &str, field: &str) -> Result<u32, SeccompError> {
    Ok(match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => 0,
        "SECCOMP_FILTER_FLAG_LOG" => sys::FLAG_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => sys::FLAG_SPEC_ALLOW,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => sys::FLAG_WAIT_KILLABLE_RECV,
        _ => {
            return Err(SeccompError::UnknownFlag {
                field: field.to_owned(),
                value: name.to_owned(),
            })
        }
    })
}

/// One `args[]` entry → libseccomp comparison. For `SCMP_CMP_MASKED_EQ`, `value` is the mask and
/// `valueTwo` the expected result (runc's `MakeCondition(index, op, value, valueTwo)`).
fn condition(arg: &RawArg, field: &str) -> Result<ScmpArgCompare, SeccompError> {
    if arg.index >= MAX_ARGS {
        return Err(SeccompError::ArgIndex {
            field: format!("{field}.index"),
            index: arg.index,
        });
    }
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(arg.value),
        other => {
            return Err(SeccompError::UnknownOperator {
                field: format!("{field}.op"),
                value: other.to_owned(),
            })
        }
    };
    let datum = match op {
        ScmpCompareOp::MaskedEqual(_) => arg.value_two.unwrap_or(0),
        _ => arg.value,
    };
    // The index was checked against MAX_ARGS above, so it fits in u32.
    Ok(ScmpArgCompare::new(arg.index as u32, op, datum))
}
