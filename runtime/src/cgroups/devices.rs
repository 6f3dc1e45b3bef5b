//! Device access rules: conversion from `linux.resources.devices`, runc's default allow list,
//! and an emulator of the v1 devices controller.
//!
//! The emulator (after runc's `devices_emulator.go`) folds the ordered rule list into what the
//! kernel would end up with: a default policy plus exceptions. v1 uses it to compute the
//! writes that take a cgroup from its current `devices.list` to the target; v2 uses the same
//! folded rules to generate the eBPF filter, so both hierarchies behave alike.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use super::CgroupError;

/// Device node type of a rule; `All` is the `a` wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DevType {
    All,
    Block,
    Char,
}

impl DevType {
    fn letter(self) -> char {
        match self {
            DevType::All => 'a',
            DevType::Block => 'b',
            DevType::Char => 'c',
        }
    }
}

/// Access bits, as the kernel's `ACC_MKNOD | ACC_READ | ACC_WRITE`.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

pub(crate) fn access_string(a: u8) -> String {
    let mut s = String::new();
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

/// One device rule; `None` major/minor is the `*` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
    pub allow: bool,
}

impl Rule {
    /// The line written to `devices.allow`/`devices.deny`, e.g. `c 1:3 rwm`, `a *:* rwm`.
    pub(crate) fn cgroup_string(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.typ.letter(),
            n(self.major),
            n(self.minor),
            access_string(self.access)
        )
    }
}

/// Converts the spec's rules, validating each like runc's `CreateCgroupConfig`.
pub(crate) fn from_spec(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = || format!("linux.resources.devices[{i}]");
            let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => DevType::All,
                LinuxDeviceType::B => DevType::Block,
                LinuxDeviceType::C => DevType::Char,
                other => {
                    return Err(CgroupError::InvalidResource {
                        field: format!("{}.type", field()),
                        reason: format!(
                            "invalid cgroup device type {:?} (want a, b or c)",
                            other.as_str()
                        ),
                    })
                }
            };
            let num = |v: Option<i64>, name: &str| -> Result<Option<u32>, CgroupError> {
                match v {
                    None => Ok(None),
                    Some(v) if v < 0 => Ok(None),
                    Some(v) => {
                        u32::try_from(v)
                            .map(Some)
                            .map_err(|_| CgroupError::InvalidResource {
                                field: format!("{}.{name}", field()),
                                reason: format!("{v} does not fit a device number"),
                            })
                    }
                }
            };
            let access_text = d.access().clone().unwrap_or_default();
            if access_text.is_empty() {
                return Err(CgroupError::InvalidResource {
                    field: format!("{}.access", field()),
                    reason: "cannot be empty".into(),
                });
            }
            let mut access = 0;
            for ch in access_text.chars() {
                access |= match ch {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => {
                        return Err(CgroupError::InvalidResource {
                            field: format!("{}.access", field()),
                            reason: format!("{access_text:?} has a letter other than r, w, m"),
                        })
                    }
                };
            }
            Ok(Rule {
                typ,
                major: num(d.major(), "major")?,
                minor: num(d.minor(), "minor")?,
                access,
                allow: d.allow(),
            })
        })
        .collect()
}

/// runc's `specconv.AllowedDevices`: the rules every container gets (callers append them
/// after the spec's own rules, as runc does).
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build()
            .expect("every field of a LinuxDeviceCgroup has a default")
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),            // mknod of any char device
        rule(B, None, None, "m"),            // mknod of any block device
        rule(C, Some(1), Some(3), "rwm"),    // /dev/null
        rule(C, Some(1), Some(8), "rwm"),    // /dev/random
        rule(C, Some(1), Some(7), "rwm"),    // /dev/full
        rule(C, Some(5), Some(0), "rwm"),    // /dev/tty
        rule(C, Some(1), Some(5), "rwm"),    // /dev/zero
        rule(C, Some(1), Some(9), "rwm"),    // /dev/urandom
        rule(C, Some(136), None, "rwm"),     // /dev/pts/*
        rule(C, Some(5), Some(2), "rwm"),    // /dev/ptmx
        rule(C, Some(10), Some(200), "rwm"), // /dev/net/tun
    ]
}

/// Match part of an exception: (major, minor, type) so that ordering is runc's
/// (major, minor, type) with the wildcard (-1 in runc, `None` here) first.
type Meta = (Option<u32>, Option<u32>, DevType);

/// The state of a v1 devices cgroup: a default policy plus exceptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Emulator {
    pub default_allow: bool,
    pub exceptions: BTreeMap<Meta, u8>,
    /// The exceptions in the order the rules first named them: [`Emulator::transition`] adds
    /// them in that order, so `devices.list` lists the spec's rules in the spec's order
    /// ("the runtime MUST apply entries in the listed order"; runtime-tools checks it).
    order: Vec<Meta>,
}

/// Two states are equal when they allow the same accesses, whatever the order.
impl PartialEq for Emulator {
    fn eq(&self, other: &Self) -> bool {
        self.default_allow == other.default_allow && self.exceptions == other.exceptions
    }
}

impl Eq for Emulator {}

impl Emulator {
    /// Applies `rules` in order to a deny-all cgroup (what the target of a container is).
    pub(crate) fn from_rules(rules: &[Rule]) -> Result<Self, CgroupError> {
        let mut e = Emulator::default();
        for (i, r) in rules.iter().enumerate() {
            e.apply(r).map_err(|reason| CgroupError::InvalidResource {
                field: format!("linux.resources.devices[{i}]"),
                reason,
            })?;
        }
        Ok(e)
    }

    /// Reads a `devices.list` (an allow list; `a *:* rwm` means allow-all).
    pub(crate) fn from_list(text: &str) -> Result<Self, String> {
        let mut e = Emulator::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split([' ', ':']).collect();
            if f.len() != 4 {
                return Err(format!("malformed devices.list line {line:?}"));
            }
            let typ = match f[0] {
                "a" => DevType::All,
                "b" => DevType::Block,
                "c" => DevType::Char,
                t => return Err(format!("unknown device type {t:?} in devices.list")),
            };
            let num = |s: &str| -> Result<Option<u32>, String> {
                if s == "*" {
                    Ok(None)
                } else {
                    s.parse()
                        .map(Some)
                        .map_err(|e| format!("bad device number {s:?}: {e}"))
                }
            };
            let mut access = 0;
            for ch in f[3].chars() {
                access |= match ch {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => return Err(format!("bad access {:?} in devices.list", f[3])),
                };
            }
            e.apply(&Rule {
                typ,
                major: num(f[1])?,
                minor: num(f[2])?,
                access,
                allow: true,
            })?;
        }
        Ok(e)
    }

    fn apply(&mut self, r: &Rule) -> Result<(), String> {
        if r.typ == DevType::All {
            // `a` resets the cgroup to allow-all or deny-all.
            *self = Emulator {
                default_allow: r.allow,
                ..Emulator::default()
            };
            return Ok(());
        }
        let meta = (r.major, r.minor, r.typ);
        // An allow on a deny-all cgroup (or a deny on an allow-all one) adds an exception;
        // the opposite removes access from an exception.
        if r.allow != self.default_allow {
            if !self.exceptions.contains_key(&meta) {
                self.order.push(meta);
            }
            *self.exceptions.entry(meta).or_insert(0) |= r.access;
            return Ok(());
        }
        // Removing access that a partially matching wildcard exception grants would be
        // silently ignored by v1; refuse it (as runc does) rather than mislead.
        for partial in [
            (None, r.minor, r.typ),
            (r.major, None, r.typ),
            (None, None, r.typ),
        ] {
            if partial == meta {
                continue;
            }
            if let Some(p) = self.exceptions.get(&partial) {
                if p & r.access != 0 {
                    return Err(format!(
                        "rule {} cannot punch a hole in the wildcard rule {} (not supported by the devices controller)",
                        r.cgroup_string(),
                        Rule { typ: r.typ, major: partial.0, minor: partial.1, access: *p, allow: !r.allow }.cgroup_string()
                    ));
                }
            }
        }
        if let Some(p) = self.exceptions.get_mut(&meta) {
            *p &= !r.access;
            if *p == 0 {
                self.exceptions.remove(&meta);
                self.order.retain(|m| *m != meta);
            }
        }
        Ok(())
    }

    /// The rules that take a cgroup in state `self` to `target` (runc's `Transition`): a
    /// disruptive `a` rule when the default changes or the source is allow-all (whose deny
    /// exceptions `devices.list` cannot show), then removals, then additions.
    pub(crate) fn transition(&self, target: &Emulator) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut old = &self.exceptions;
        let empty = BTreeMap::new();
        if self.default_allow || self.default_allow != target.default_allow {
            out.push(Rule {
                typ: DevType::All,
                major: None,
                minor: None,
                access: ACC_ALL,
                allow: target.default_allow,
            });
            old = &empty;
        }
        for (meta, perms) in old {
            let dropped = perms & !target.exceptions.get(meta).copied().unwrap_or(0);
            if dropped != 0 {
                out.push(Rule {
                    typ: meta.2,
                    major: meta.0,
                    minor: meta.1,
                    access: dropped,
                    allow: target.default_allow,
                });
            }
        }
        for meta in target.ordered() {
            let perms = target.exceptions.get(&meta).copied().unwrap_or(0);
            let gained = perms & !old.get(&meta).copied().unwrap_or(0);
            if gained != 0 {
                out.push(Rule {
                    typ: meta.2,
                    major: meta.0,
                    minor: meta.1,
                    access: gained,
                    allow: !target.default_allow,
                });
            }
        }
        out
    }

    /// The exceptions' keys, in the order the rules named them.
    fn ordered(&self) -> Vec<Meta> {
        let mut keys: Vec<Meta> = self
            .order
            .iter()
            .filter(|m| self.exceptions.contains_key(m))
            .copied()
            .collect();
        keys.extend(
            self.exceptions
                .keys()
                .filter(|m| !self.order.contains(m))
                .copied(),
        );
        keys
    }

    /// The exception rules of this state, in runc's (major, minor, type) order (what the eBPF
    /// filter checks; the order does not change what it allows).
    pub(crate) fn exception_rules(&self) -> Vec<Rule> {
        self.exceptions
            .iter()
            .map(|(meta, perms)| Rule {
                typ: meta.2,
                major: meta.0,
                minor: meta.1,
                access: *perms,
                allow: !self.default_allow,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(typ: DevType, major: Option<u32>, minor: Option<u32>, access: u8, allow: bool) -> Rule {
        Rule {
            typ,
            major,
            minor,
            access,
            allow,
        }
    }

    #[test]
    fn default_rules_are_runcs_allowed_devices() {
        let lines: Vec<String> = from_spec(&default_device_rules())
            .unwrap()
            .iter()
            .map(Rule::cgroup_string)
            .collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm"
            ]
        );
    }

    #[test]
    fn spec_rules_are_validated() {
        let bad = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::U)
            .access("rwm")
            .build()
            .unwrap();
        let err = from_spec(&[bad]).unwrap_err().to_string();
        assert!(err.contains("linux.resources.devices[0].type"), "{err}");
        let empty = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .build()
            .unwrap();
        let err = from_spec(&[empty]).unwrap_err().to_string();
        assert!(err.contains("devices[0].access: cannot be empty"), "{err}");
        let no_type = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(
            from_spec(&[no_type]).unwrap()[0].cgroup_string(),
            "a *:* rwm"
        );
    }

    #[test]
    fn new_v1_cgroup_gets_deny_all_then_each_allow() {
        let mut rules = vec![rule(DevType::All, None, None, ACC_ALL, false)];
        rules.extend(from_spec(&default_device_rules()).unwrap());
        let target = Emulator::from_rules(&rules).unwrap();
        let source = Emulator::from_list("a *:* rwm\n").unwrap();
        let t: Vec<(bool, String)> = source
            .transition(&target)
            .iter()
            .map(|r| (r.allow, r.cgroup_string()))
            .collect();
        assert_eq!(t[0], (false, "a *:* rwm".to_string()));
        assert!(t[1..].iter().all(|(allow, _)| *allow));
        assert_eq!(t.len(), 12);
        // Additions follow the rules' order (runc sorts them; runtime-tools checks the order).
        assert_eq!(t[1].1, "c *:* m");
        assert_eq!(t[2].1, "b *:* m");
        assert_eq!(t.last().unwrap().1, "c 10:200 rwm");
    }

    #[test]
    fn reapplying_the_same_rules_writes_nothing() {
        let rules = vec![
            rule(DevType::All, None, None, ACC_ALL, false),
            rule(DevType::Char, Some(1), Some(3), ACC_ALL, true),
        ];
        let target = Emulator::from_rules(&rules).unwrap();
        let source = Emulator::from_list("c 1:3 rwm\n").unwrap();
        assert!(source.transition(&target).is_empty());
        let source = Emulator::from_list("c 1:3 rwm\nc 1:5 rw\n").unwrap();
        let t: Vec<String> = source
            .transition(&target)
            .iter()
            .map(|r| format!("{} {}", r.allow, r.cgroup_string()))
            .collect();
        assert_eq!(t, ["false c 1:5 rw"]);
    }

    #[test]
    fn punching_a_hole_in_a_wildcard_is_refused() {
        let rules = vec![
            rule(DevType::All, None, None, ACC_ALL, false),
            rule(DevType::Char, Some(1), None, ACC_ALL, true),
            rule(DevType::Char, Some(1), Some(3), ACC_READ, false),
        ];
        let err = Emulator::from_rules(&rules).unwrap_err().to_string();
        assert!(
            err.contains("devices[2]") && err.contains("punch a hole"),
            "{err}"
        );
    }
}
