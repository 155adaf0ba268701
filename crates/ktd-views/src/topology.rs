//! The join of both sides: which democratic-csi PVs exist, which parent datasets belong to
//! the observed cluster, and the indexes the rules look things up in.
//!
//! Ownership (PRODUCT.md): a volume parent belongs to the cluster when configured, or when
//! it holds a managed dataset named after the `volumeHandle` of one of the cluster's
//! democratic-csi PVs. A detached-snapshot parent belongs to it when configured, or when it
//! holds a container named after such a volume handle that holds a managed detached
//! snapshot. Managed datasets anywhere else belong to someone we do not observe.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ktd_model::kube::{PersistentVolume, VolumeSnapshotContent};
use ktd_model::truenas::{Dataset, HasUserProperties, props};

use crate::config::FindingsConfig;
use crate::inventory::Inventory;

/// The parent of a dataset name (`""` for a pool root).
pub fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(p, _)| p)
}

/// The last component of a dataset name.
pub fn leaf(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(_, l)| l)
}

/// Whether a dataset is a democratic-csi detached snapshot (its own CSI snapshot name).
pub fn is_detached_snapshot(d: &Dataset) -> bool {
    d.is_managed() && d.own_prop(props::CSI_SNAPSHOT_NAME).is_some()
}

/// The join, rebuilt before each evaluation.
pub struct Topology<'a> {
    /// democratic-csi PVs (with `volumeAttributes.provisioner_driver`) by volume handle.
    pub pv_by_handle: HashMap<&'a str, &'a PersistentVolume>,
    /// Every PV name (any driver).
    pub pv_names: HashSet<&'a str>,
    /// Owned volume parents.
    pub volume_parents: BTreeSet<String>,
    /// Owned detached-snapshot parents.
    pub detached_parents: BTreeSet<String>,
    /// Owned volume parents in which each CSI driver's PVs were found.
    pub driver_parents: BTreeMap<&'a str, BTreeSet<String>>,
    /// Every dataset's `origin` (a full snapshot name).
    pub origins: HashMap<&'a str, Vec<&'a str>>,
    /// VolumeSnapshotContents by snapshot handle.
    pub contents_by_handle: HashMap<&'a str, Vec<&'a VolumeSnapshotContent>>,
}

/// Whether a PV was provisioned by democratic-csi.
pub fn is_dcsi(pv: &PersistentVolume) -> bool {
    pv.csi
        .as_ref()
        .is_some_and(|c| c.volume_attributes.contains_key("provisioner_driver"))
}

impl<'a> Topology<'a> {
    /// Joins the inventory.
    pub fn build(inv: &'a Inventory, cfg: &FindingsConfig) -> Topology<'a> {
        let mut pv_by_handle = HashMap::new();
        let mut pv_names = HashSet::new();
        for pv in inv.pvs() {
            pv_names.insert(pv.meta.name.as_str());
            if let Some(csi) = pv.csi.as_ref().filter(|_| is_dcsi(pv)) {
                pv_by_handle.insert(csi.volume_handle.as_str(), pv);
            }
        }

        let mut volume_parents: BTreeSet<String> = cfg.volume_parents.iter().cloned().collect();
        let mut detached_parents: BTreeSet<String> =
            cfg.detached_snapshot_parents.iter().cloned().collect();
        let mut driver_parents: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut origins: HashMap<&str, Vec<&str>> = HashMap::new();
        for d in inv.datasets().values() {
            if let Some(origin) = d.origin.as_deref() {
                origins.entry(origin).or_default().push(d.name.as_str());
            }
            if !d.is_managed() {
                continue;
            }
            if let Some(pv) = pv_by_handle.get(d.leaf()) {
                let p = parent(&d.name).to_owned();
                if let Some(csi) = &pv.csi {
                    driver_parents
                        .entry(csi.driver.as_str())
                        .or_default()
                        .insert(p.clone());
                }
                volume_parents.insert(p);
            }
            if is_detached_snapshot(d) {
                let container = parent(&d.name);
                if pv_by_handle.contains_key(leaf(container)) {
                    detached_parents.insert(parent(container).to_owned());
                }
            }
        }
        // Configured parents serve every driver whose PVs were not found elsewhere.
        for pv in pv_by_handle.values() {
            if let Some(csi) = &pv.csi {
                for p in &cfg.volume_parents {
                    if inv
                        .datasets()
                        .contains_key(&format!("{p}/{}", csi.volume_handle))
                    {
                        driver_parents
                            .entry(csi.driver.as_str())
                            .or_default()
                            .insert(p.clone());
                    }
                }
            }
        }

        let mut contents_by_handle: HashMap<&str, Vec<&VolumeSnapshotContent>> = HashMap::new();
        for c in inv.snapshot_contents() {
            if let Some(h) = c.handle() {
                contents_by_handle.entry(h).or_default().push(c);
            }
        }

        Topology {
            pv_by_handle,
            pv_names,
            volume_parents,
            detached_parents,
            driver_parents,
            origins,
            contents_by_handle,
        }
    }

    /// Whether `name` is a direct child of an owned volume parent.
    pub fn in_volume_parent(&self, name: &str) -> bool {
        self.volume_parents.contains(parent(name))
    }

    /// Whether `name` lies (at any depth) below an owned detached-snapshot parent.
    pub fn under_detached_parent(&self, name: &str) -> bool {
        let mut p = parent(name);
        while !p.is_empty() {
            if self.detached_parents.contains(p) {
                return true;
            }
            p = parent(p);
        }
        false
    }

    /// Whether `name` is a detached snapshot position: `<owned detached parent>/<vol>/<snap>`.
    pub fn is_detached_position(&self, name: &str) -> bool {
        self.detached_parents.contains(parent(parent(name)))
    }

    /// The snapshot handle a managed ZFS snapshot or detached snapshot dataset would have
    /// in a VolumeSnapshotContent: `<vol>@<snap>` or `<vol>/<snap>`.
    pub fn handle_of(name: &str) -> String {
        match name.split_once('@') {
            Some((dataset, snap)) => format!("{}@{snap}", leaf(dataset)),
            None => format!("{}/{}", leaf(parent(name)), leaf(name)),
        }
    }

    /// The dataset of an owned volume parent named `handle`, if it exists.
    pub fn volume_dataset<'i>(&self, inv: &'i Inventory, handle: &str) -> Option<&'i Dataset> {
        self.volume_parents
            .iter()
            .find_map(|p| inv.datasets().get(&format!("{p}/{handle}")))
    }

    /// Whether a driver's PVs live on the observed NAS (at least one was found there).
    pub fn driver_on_nas(&self, driver: &str) -> bool {
        self.driver_parents.contains_key(driver)
    }

    /// Managed datasets under parents nobody observed owns (not judged).
    pub fn unowned<'i>(&self, inv: &'i Inventory) -> Vec<&'i Dataset> {
        inv.datasets()
            .values()
            .filter(|d| d.is_managed())
            .filter(|d| {
                !self.in_volume_parent(&d.name)
                    && !self.under_detached_parent(&d.name)
                    && !self.volume_parents.contains(&d.name)
            })
            .collect()
    }
}
