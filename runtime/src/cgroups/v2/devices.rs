//! v2 device control: generate the eBPF filter for the rules, attach it to the cgroup
//! directory, then detach whatever filters were attached before (so re-applying replaces).

use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use crate::cgroups::devicefilter::{device_filter_program, LICENSE};
use crate::cgroups::CgroupError;
use crate::sys::bpf;

pub(super) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let program: Vec<[u8; 8]> = device_filter_program(rules)?
        .iter()
        .map(|i| i.encode())
        .collect();
    let cgroup = std::fs::File::open(dir).map_err(|source| CgroupError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let bpf_err = |step: &'static str| {
        move |source| CgroupError::Bpf {
            step,
            path: dir.to_path_buf(),
            source,
        }
    };
    let old = bpf::attached_cgroup_device_programs(cgroup.as_fd())
        .map_err(bpf_err("listing attached device filters"))?;
    let prog = bpf::load_cgroup_device_program(&program, LICENSE)
        .map_err(bpf_err("loading the device filter"))?;
    bpf::attach_cgroup_device_program(cgroup.as_fd(), prog.as_fd())
        .map_err(bpf_err("attaching the device filter"))?;
    for p in old {
        bpf::detach_cgroup_device_program(cgroup.as_fd(), p.as_fd())
            .map_err(bpf_err("detaching the previous device filter"))?;
    }
    Ok(())
}
