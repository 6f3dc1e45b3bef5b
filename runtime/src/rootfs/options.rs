//! fstab-style mount options (`mounts[].options`) → `mount(2)` flags, propagation changes,
//! recursive `mount_setattr(2)` attributes and the filesystem data string, the way runc's
//! `parseMountOptions` splits them.

use nix::mount::MsFlags;

use crate::sys::mount::MountAttr;

/// `MS_NOSYMFOLLOW` (Linux 5.10); nix 0.29 has no name for it.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// One mount entry's options, split by how they reach the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the `mount(2)` call (`ro`, `nosuid`, `bind`, ...).
    pub flags: MsFlags,
    /// Flags the user explicitly asked to be clear (`rw`, `suid`, `exec`, ...): a bind mount
    /// must be remounted to clear them even when no flag is set.
    pub cleared: MsFlags,
    /// Propagation changes (`rslave`, `private`, ...) applied by extra `mount(2)` calls, in order.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes (`rro`, `rnosuid`, ...) applied with `mount_setattr(AT_RECURSIVE)`.
    pub recursive: Option<MountAttr>,
    /// Everything else, comma-joined: the filesystem-specific data string.
    pub data: String,
    /// `tmpcopyup`: copy the directory's content into a new tmpfs mounted over it.
    pub tmpcopyup: bool,
    /// `idmap` (`Some(false)`) or `ridmap` (`Some(true)`): an id-mapped mount was requested.
    pub idmap: Option<bool>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            recursive: None,
            data: String::new(),
            tmpcopyup: false,
            idmap: None,
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// `(set?, flag)` for each plain `mount(2)` option, as in runc's `mountFlags` table.
fn mount_flag(option: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match option {
        "acl" => (true, F::MS_POSIXACL),
        "noacl" => (false, F::MS_POSIXACL),
        "async" => (false, F::MS_SYNCHRONOUS),
        "sync" => (true, F::MS_SYNCHRONOUS),
        "atime" => (false, F::MS_NOATIME),
        "noatime" => (true, F::MS_NOATIME),
        "bind" => (true, F::MS_BIND),
        "rbind" => (true, F::MS_BIND | F::MS_REC),
        "dev" => (false, F::MS_NODEV),
        "nodev" => (true, F::MS_NODEV),
        "diratime" => (false, F::MS_NODIRATIME),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "dirsync" => (true, F::MS_DIRSYNC),
        "exec" => (false, F::MS_NOEXEC),
        "noexec" => (true, F::MS_NOEXEC),
        "iversion" => (true, F::MS_I_VERSION),
        "noiversion" => (false, F::MS_I_VERSION),
        "lazytime" => (true, F::MS_LAZYTIME),
        "nolazytime" => (false, F::MS_LAZYTIME),
        "loud" => (false, F::MS_SILENT),
        "silent" => (true, F::MS_SILENT),
        "mand" => (true, F::MS_MANDLOCK),
        "nomand" => (false, F::MS_MANDLOCK),
        "relatime" => (true, F::MS_RELATIME),
        "norelatime" => (false, F::MS_RELATIME),
        "strictatime" => (true, F::MS_STRICTATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "remount" => (true, F::MS_REMOUNT),
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "suid" => (false, F::MS_NOSUID),
        "nosuid" => (true, F::MS_NOSUID),
        "nosymfollow" => (true, MS_NOSYMFOLLOW),
        "symfollow" => (false, MS_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Propagation options; also the values of `linux.rootfsPropagation`.
pub fn propagation_flag(option: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match option {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

/// `(set?, MOUNT_ATTR_*)` for the recursive `r*` options (runc's `recAttrFlags`).
fn recursive_attr(option: &str) -> Option<(bool, u64)> {
    Some(match option {
        "rro" => (true, libc::MOUNT_ATTR_RDONLY),
        "rrw" => (false, libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, libc::MOUNT_ATTR_NOSUID),
        "rsuid" => (false, libc::MOUNT_ATTR_NOSUID),
        "rnodev" => (true, libc::MOUNT_ATTR_NODEV),
        "rdev" => (false, libc::MOUNT_ATTR_NODEV),
        "rnoexec" => (true, libc::MOUNT_ATTR_NOEXEC),
        "rexec" => (false, libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (true, libc::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, libc::MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (true, libc::MOUNT_ATTR_RELATIME),
        "rnorelatime" => (false, libc::MOUNT_ATTR_RELATIME),
        "rnoatime" => (true, libc::MOUNT_ATTR_NOATIME),
        "ratime" => (false, libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => (true, libc::MOUNT_ATTR_STRICTATIME),
        "rnostrictatime" => (false, libc::MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (true, libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, libc::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Splits `options` like runc's `parseMountOptions`; later options override earlier ones.
/// `defaults` is accepted and means nothing (mount(8) semantics).
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    let (mut rec_set, mut rec_clr) = (0u64, 0u64);
    for option in options {
        let option = option.as_str();
        if option == "defaults" {
            continue;
        }
        if let Some((set, flag)) = mount_flag(option) {
            if set {
                out.flags |= flag;
                out.cleared &= !flag;
            } else {
                out.flags &= !flag;
                out.cleared |= flag;
            }
        } else if let Some(flag) = propagation_flag(option) {
            out.propagation.push(flag);
        } else if let Some((set, attr)) = recursive_attr(option) {
            if set {
                rec_set |= attr;
                rec_clr &= !attr;
                // The atime "enum" must be cleared as a whole before setting one of its values
                // (mount_setattr(2)); relatime is the value 0, so it is caught here too.
                if attr & libc::MOUNT_ATTR__ATIME == attr {
                    rec_clr |= libc::MOUNT_ATTR__ATIME;
                }
            } else {
                rec_clr |= attr;
                rec_set &= !attr;
            }
        } else if option == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if option == "idmap" || option == "ridmap" {
            out.idmap = Some(option == "ridmap");
        } else {
            data.push(option);
        }
    }
    out.data = data.join(",");
    if rec_set != 0 || rec_clr != 0 {
        out.recursive = Some(MountAttr {
            set: rec_set,
            clear: rec_clr,
            propagation: 0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use MsFlags as F;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn every_setting_flag_option_sets_its_flag() {
        let cases: &[(&str, MsFlags)] = &[
            ("ro", F::MS_RDONLY),
            ("nosuid", F::MS_NOSUID),
            ("nodev", F::MS_NODEV),
            ("noexec", F::MS_NOEXEC),
            ("sync", F::MS_SYNCHRONOUS),
            ("dirsync", F::MS_DIRSYNC),
            ("remount", F::MS_REMOUNT),
            ("mand", F::MS_MANDLOCK),
            ("noatime", F::MS_NOATIME),
            ("nodiratime", F::MS_NODIRATIME),
            ("relatime", F::MS_RELATIME),
            ("strictatime", F::MS_STRICTATIME),
            ("bind", F::MS_BIND),
            ("rbind", F::MS_BIND | F::MS_REC),
            ("acl", F::MS_POSIXACL),
            ("iversion", F::MS_I_VERSION),
            ("lazytime", F::MS_LAZYTIME),
            ("silent", F::MS_SILENT),
            ("nosymfollow", MS_NOSYMFOLLOW),
        ];
        for (opt, flag) in cases {
            let o = p(&[opt]);
            assert_eq!(o.flags, *flag, "option {opt}");
            assert!(o.cleared.is_empty(), "option {opt}");
            assert!(o.data.is_empty(), "option {opt} leaked into data");
        }
    }

    #[test]
    fn every_clearing_option_clears_and_records_its_flag() {
        let cases: &[(&str, &str, MsFlags)] = &[
            ("ro", "rw", F::MS_RDONLY),
            ("nosuid", "suid", F::MS_NOSUID),
            ("nodev", "dev", F::MS_NODEV),
            ("noexec", "exec", F::MS_NOEXEC),
            ("sync", "async", F::MS_SYNCHRONOUS),
            ("mand", "nomand", F::MS_MANDLOCK),
            ("noatime", "atime", F::MS_NOATIME),
            ("nodiratime", "diratime", F::MS_NODIRATIME),
            ("relatime", "norelatime", F::MS_RELATIME),
            ("strictatime", "nostrictatime", F::MS_STRICTATIME),
            ("acl", "noacl", F::MS_POSIXACL),
            ("iversion", "noiversion", F::MS_I_VERSION),
            ("lazytime", "nolazytime", F::MS_LAZYTIME),
            ("silent", "loud", F::MS_SILENT),
            ("nosymfollow", "symfollow", MS_NOSYMFOLLOW),
        ];
        for (set, clear, flag) in cases {
            let o = p(&[set, clear]);
            assert!(!o.flags.intersects(*flag), "{set},{clear}");
            assert_eq!(o.cleared, *flag, "{set},{clear}");
            // And the last one wins the other way round.
            let o = p(&[clear, set]);
            assert_eq!(o.flags, *flag, "{clear},{set}");
            assert!(o.cleared.is_empty(), "{clear},{set}");
        }
    }

    #[test]
    fn propagation_options_are_kept_in_order_apart_from_flags() {
        let o = p(&[
            "rbind",
            "rprivate",
            "shared",
            "slave",
            "rslave",
            "private",
            "rshared",
            "unbindable",
            "runbindable",
        ]);
        assert_eq!(o.flags, F::MS_BIND | F::MS_REC);
        assert_eq!(
            o.propagation,
            vec![
                F::MS_PRIVATE | F::MS_REC,
                F::MS_SHARED,
                F::MS_SLAVE,
                F::MS_SLAVE | F::MS_REC,
                F::MS_PRIVATE,
                F::MS_SHARED | F::MS_REC,
                F::MS_UNBINDABLE,
                F::MS_UNBINDABLE | F::MS_REC,
            ]
        );
    }

    #[test]
    fn unknown_options_become_the_data_string_in_order() {
        let o = p(&[
            "nosuid",
            "mode=755",
            "size=65536k",
            "newinstance",
            "ptmxmode=0666",
            "gid=5",
        ]);
        assert_eq!(o.flags, F::MS_NOSUID);
        assert_eq!(
            o.data,
            "mode=755,size=65536k,newinstance,ptmxmode=0666,gid=5"
        );
    }

    #[test]
    fn defaults_is_accepted_and_means_nothing() {
        let o = p(&["defaults"]);
        assert_eq!(o, MountOptions::default());
    }

    #[test]
    fn recursive_attributes_go_to_mount_setattr() {
        let o = p(&[
            "rbind",
            "rro",
            "rnosuid",
            "rnodev",
            "rnoexec",
            "rnodiratime",
            "rnosymfollow",
        ]);
        let attr = o.recursive.unwrap();
        assert_eq!(
            attr.set,
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC
                | libc::MOUNT_ATTR_NODIRATIME
                | libc::MOUNT_ATTR_NOSYMFOLLOW
        );
        assert_eq!(attr.clear, 0);
        assert_eq!(o.flags, F::MS_BIND | F::MS_REC);

        let o = p(&[
            "rro",
            "rrw",
            "rsuid",
            "rdev",
            "rexec",
            "rdiratime",
            "rsymfollow",
        ]);
        let attr = o.recursive.unwrap();
        assert_eq!(attr.set, 0);
        assert_eq!(
            attr.clear,
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC
                | libc::MOUNT_ATTR_NODIRATIME
                | libc::MOUNT_ATTR_NOSYMFOLLOW
        );
    }

    #[test]
    fn recursive_atime_values_clear_the_whole_atime_field() {
        for (opt, value) in [
            ("rnoatime", libc::MOUNT_ATTR_NOATIME),
            ("rstrictatime", libc::MOUNT_ATTR_STRICTATIME),
            ("rrelatime", libc::MOUNT_ATTR_RELATIME),
        ] {
            let attr = p(&[opt]).recursive.unwrap_or_default();
            assert_eq!(attr.set, value, "{opt}");
            assert_eq!(attr.clear, libc::MOUNT_ATTR__ATIME, "{opt}");
        }
        let attr = p(&["ratime"]).recursive.unwrap();
        assert_eq!((attr.set, attr.clear), (0, libc::MOUNT_ATTR_NOATIME));
    }

    #[test]
    fn extensions_are_recognised_not_passed_as_data() {
        let o = p(&["tmpcopyup", "mode=1777"]);
        assert!(o.tmpcopyup);
        assert_eq!(o.data, "mode=1777");
        assert_eq!(p(&["bind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["rbind", "ridmap"]).idmap, Some(true));
        assert_eq!(p(&["bind"]).idmap, None);
    }
}
