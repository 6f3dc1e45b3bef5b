//! Operations on a live container through its cgroup: pause/resume (freezer), update
//! (rewrite `linux.resources`), ps (the cgroup's pids) and events (stats and OOM kills).

use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde_json::json;

use crate::cgroups::{self, FreezerState, Host};
use crate::container::{status_of, ContainerError};
use crate::state::{Status, Store};

pub fn pause(store: &Store, id: &str) -> Result<(), ContainerError> {
    let locked = store.open(id)?;
    let record = locked.read()?;
    match status_of(store, &record) {
        Status::Running | Status::Created => {}
        status => {
            return Err(ContainerError::WrongStatus {
                id: id.into(),
                status,
                wanted: "only a running or created container can be paused",
            })
        }
    }
    cgroups::open(&Host::system(), &record.cgroup)?.freeze(FreezerState::Frozen)?;
    Ok(())
}

pub fn resume(store: &Store, id: &str) -> Result<(), ContainerError> {
    let locked = store.open(id)?;
    let record = locked.read()?;
    match status_of(store, &record) {
        Status::Paused => {}
        status => {
            return Err(ContainerError::WrongStatus {
                id: id.into(),
                status,
                wanted: "only a paused container can be resumed",
            })
        }
    }
    cgroups::open(&Host::system(), &record.cgroup)?.freeze(FreezerState::Thawed)?;
    Ok(())
}

/// Every pid in the container's cgroup (host pid namespace), sorted.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>, ContainerError> {
    let record = store.peek(id)?;
    let mut pids = cgroups::open(&Host::system(), &record.cgroup)?.pids()?;
    pids.sort_unstable();
    Ok(pids)
}

/// Overlay `update` onto `current`: fields given in `update` win, the rest stay.
pub fn merge_resources(
    current: &LinuxResources,
    update: &serde_json::Value,
) -> Result<LinuxResources, serde_json::Error> {
    let mut base = serde_json::to_value(current)?;
    merge(&mut base, update);
    serde_json::from_value(base)
}

fn merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Apply new resource limits to a running container and remember them in its state.
/// Device rules are not re-applied (rewriting them would briefly deny every device).
pub fn update(store: &Store, id: &str, patch: &serde_json::Value) -> Result<(), ContainerError> {
    let locked = store.open(id)?;
    let mut record = locked.read()?;
    if status_of(store, &record) == Status::Stopped {
        return Err(ContainerError::NotRunning);
    }
    let current = record
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let merged =
        merge_resources(&current, patch).map_err(|e| ContainerError::Resources(e.to_string()))?;
    let mut to_apply = merged.clone();
    to_apply.set_devices(None);
    cgroups::open(&Host::system(), &record.cgroup)?.apply(&to_apply)?;
    if let Some(linux) = record.spec.linux_mut().as_mut() {
        linux.set_resources(Some(merged));
    }
    locked.write(&record)?;
    Ok(())
}

/// runc's `events --stats` object for one container.
pub fn stats_event(store: &Store, id: &str) -> Result<serde_json::Value, ContainerError> {
    let record = store.peek(id)?;
    let stats = cgroups::open(&Host::system(), &record.cgroup)?.stats()?;
    Ok(json!({"type": "stats", "id": id, "data": stats}))
}

/// Stream events until the container stops: a stats event every `interval`, and an `oom`
/// event whenever the cgroup's OOM-kill count grows. `emit` returns false to stop early.
pub fn events(
    store: &Store,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&serde_json::Value) -> bool,
) -> Result<(), ContainerError> {
    let record = store.peek(id)?;
    let cg = cgroups::open(&Host::system(), &record.cgroup)?;
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let tick = Duration::from_millis(100).min(interval);
    let mut since_stats = interval;
    loop {
        if status_of(store, &record) == Status::Stopped {
            return Ok(());
        }
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            ooms = now;
            if !emit(&json!({"type": "oom", "id": id})) {
                return Ok(());
            }
        }
        if since_stats >= interval {
            since_stats = Duration::ZERO;
            let stats = cg.stats()?;
            if !emit(&json!({"type": "stats", "id": id, "data": stats})) {
                return Ok(());
            }
        }
        std::thread::sleep(tick);
        since_stats += tick;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_overlays_only_the_given_fields() {
        let current: LinuxResources = serde_json::from_value(
            json!({"memory": {"limit": 100, "reservation": 50}, "pids": {"limit": 10}}),
        )
        .unwrap();
        let merged = merge_resources(&current, &json!({"memory": {"limit": 200}})).unwrap();
        let v = serde_json::to_value(&merged).unwrap();
        assert_eq!(v["memory"]["limit"], 200);
        assert_eq!(v["memory"]["reservation"], 50);
        assert_eq!(v["pids"]["limit"], 10);
    }
}
