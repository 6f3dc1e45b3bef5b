//! Runtime options containerd attaches to Create (`containerd.runc.v1.Options`).
//!
//! The shim honours what maps onto husk (BinaryName, Root) and refuses, with the
//! field named, what it cannot (systemd cgroups, CRIU paths, a shim cgroup, an I/O
//! uid/gid), rather than silently running the container differently.

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options;

use crate::error::ShimError;

/// What the shim takes from the options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub binary_name: String,
    pub root: String,
}

const TYPE_URLS: [&str; 2] = [
    "containerd.runc.v1.Options",
    "io.containerd.runc.v1.Options",
];

pub fn parse(any: Option<&Any>) -> Result<RuntimeOptions, ShimError> {
    let Some(any) = any.filter(|a| !a.type_url.is_empty()) else {
        return Ok(RuntimeOptions::default());
    };
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if !TYPE_URLS.contains(&name) {
        return Err(ShimError::Options(format!(
            "options of type {:?} are not understood (expected containerd.runc.v1.Options)",
            any.type_url
        )));
    }
    let o = Options::parse_from_bytes(&any.value)
        .map_err(|e| ShimError::Options(format!("decode {}: {e}", any.type_url)))?;
    let refuse = |field: &str| {
        Err(ShimError::Options(format!(
            "{field} is not supported by the husk shim"
        )))
    };
    if o.systemd_cgroup {
        return refuse("SystemdCgroup = true");
    }
    if !o.criu_path.is_empty() || !o.criu_image_path.is_empty() || !o.criu_work_path.is_empty() {
        return refuse("CRIU (checkpoint/restore) paths");
    }
    if !o.shim_cgroup.is_empty() {
        return refuse("ShimCgroup");
    }
    if o.io_uid != 0 || o.io_gid != 0 {
        return refuse("IoUid/IoGid");
    }
    if o.no_pivot_root {
        return refuse("NoPivotRoot");
    }
    Ok(RuntimeOptions {
        binary_name: o.binary_name,
        root: o.root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(o: &Options, url: &str) -> Any {
        Any {
            type_url: url.to_string(),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn binary_name_and_root_are_read_from_both_type_urls() {
        let o = Options {
            binary_name: "/opt/husk".into(),
            root: "/run/h".into(),
            ..Default::default()
        };
        for url in TYPE_URLS {
            let got = parse(Some(&any(&o, url))).unwrap();
            assert_eq!(
                got,
                RuntimeOptions {
                    binary_name: "/opt/husk".into(),
                    root: "/run/h".into()
                }
            );
        }
    }

    #[test]
    fn systemd_cgroup_is_refused_by_name() {
        let o = Options {
            systemd_cgroup: true,
            ..Default::default()
        };
        let err = parse(Some(&any(&o, "containerd.runc.v1.Options")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SystemdCgroup"), "{err}");
    }

    #[test]
    fn unknown_option_type_is_refused() {
        let a = Any {
            type_url: "foo.Bar".into(),
            ..Default::default()
        };
        assert!(parse(Some(&a)).is_err());
        assert_eq!(parse(None).unwrap(), RuntimeOptions::default());
    }
}
