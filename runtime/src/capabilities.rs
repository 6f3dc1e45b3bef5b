//! Capabilities: the five sets of `process.capabilities`, applied as runc does — bounding set
//! first (while we still hold CAP_SETPCAP), then, after the uid switch (with keep-caps),
//! effective, permitted, inheritable and ambient.

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("process.capabilities: {cap:?} is not known to this kernel or to husk")]
    Unknown { cap: String },
    #[error("drop {cap} from the bounding set")]
    Bounding {
        cap: String,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("set the {set} capability set")]
    Set {
        set: &'static str,
        #[source]
        source: caps::errors::CapsError,
    },
}

/// The capability sets resolved to the `caps` crate's type, computed in the parent.
#[derive(Debug, Clone, Default)]
pub struct Sets {
    pub bounding: Option<CapsHashSet>,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn convert(set: &Option<Capabilities>) -> Result<CapsHashSet, CapabilityError> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = cap_name(c);
        let cap: Cap = name
            .parse()
            .map_err(|_| CapabilityError::Unknown { cap: name.clone() })?;
        out.insert(cap);
    }
    Ok(out)
}

/// "CAP_SYS_ADMIN" for oci-spec's `Capability::SysAdmin`.
pub fn cap_name(c: &Capability) -> String {
    format!("CAP_{c}")
}

impl Sets {
    /// Resolve `process.capabilities`. Capabilities newer than the running kernel are dropped
    /// from the request (runc warns and ignores them too).
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Result<Sets, CapabilityError> {
        let Some(c) = caps else {
            // No capabilities object: the process gets none (runc's behaviour).
            return Ok(Sets {
                bounding: Some(HashSet::new()),
                ..Default::default()
            });
        };
        let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
        let keep = |s: CapsHashSet| -> CapsHashSet { s.intersection(&known).copied().collect() };
        Ok(Sets {
            bounding: Some(keep(convert(c.bounding())?)),
            effective: keep(convert(c.effective())?),
            permitted: keep(convert(c.permitted())?),
            inheritable: keep(convert(c.inheritable())?),
            ambient: keep(convert(c.ambient())?),
        })
    }

    /// Drop every capability not in the bounding set (needs CAP_SETPCAP: before the uid switch).
    pub fn apply_bounding(&self) -> Result<(), CapabilityError> {
        let Some(bounding) = &self.bounding else {
            return Ok(());
        };
        let current = caps::read(None, CapSet::Bounding).unwrap_or_default();
        for cap in current.difference(bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|source| {
                CapabilityError::Bounding {
                    cap: cap.to_string(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Set effective, permitted, inheritable and ambient (after the uid switch).
    pub fn apply_rest(&self) -> Result<(), CapabilityError> {
        // Raise permitted/inheritable first (effective must be a subset of permitted, ambient of
        // both); then effective; ambient last.
        let set = |which: CapSet, name: &'static str, value: &CapsHashSet| {
            caps::set(None, which, value)
                .map_err(|source| CapabilityError::Set { set: name, source })
        };
        set(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        // Effective first to a subset of the new permitted, so shrinking permitted is allowed.
        let eff_now: CapsHashSet = self
            .effective
            .intersection(&self.permitted)
            .copied()
            .collect();
        set(CapSet::Effective, "effective", &eff_now)?;
        set(CapSet::Permitted, "permitted", &self.permitted)?;
        set(CapSet::Effective, "effective", &self.effective)?;
        caps::clear(None, CapSet::Ambient).map_err(|source| CapabilityError::Set {
            set: "ambient",
            source,
        })?;
        for cap in &self.ambient {
            // The kernel only allows an ambient capability that is also permitted and
            // inheritable; runc warns and goes on (its default spec lists ambient caps with no
            // inheritable set), so an impossible ambient cap is skipped, not fatal.
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap).map_err(|source| {
                    CapabilityError::Set {
                        set: "ambient",
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }
}

/// Every capability name husk knows, for `features`.
pub fn known_names() -> Vec<String> {
    let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_names_map_onto_kernel_capabilities() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_NET_BIND_SERVICE"],"effective":["CAP_CHOWN"]}"#,
        )
        .unwrap();
        let s = Sets::from_spec(Some(&c)).unwrap();
        assert!(s
            .bounding
            .as_ref()
            .unwrap()
            .contains(&Cap::CAP_NET_BIND_SERVICE));
        assert!(s.effective.contains(&Cap::CAP_CHOWN));
        assert!(s.permitted.is_empty());
    }
}
