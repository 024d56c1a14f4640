//! The typed facts of one report, derived once at ingest so that reads never parse payloads:
//! versions, distribution, node groups, accelerators, extensions. A pure function of a
//! validated report (report.rs): no I/O, no database. Reading the payload's shapes is
//! shapes.rs's; the quantity grammar is quantity.rs's.
//!
//! Payloads are hostile, so a fact that is missing, of the wrong type or over its cap is
//! `None` (or left out) and the report is still stored. Caps, so that one report cannot blow
//! up the derived tables:
//!
//! | What | Cap | Beyond it |
//! |---|---|---|
//! | every string fact (versions, nodeInfo fields, cloud provider, extension names and values) | `MAX_TEXT`, 256 bytes | `None` (never truncated); an extension pair is left out |
//! | node groups | `MAX_GROUPS`, 1,000 | nodes that would start another group are counted in one group whose facts are all `None`, so at most 1,001 |
//! | extensions | `MAX_EXTENSIONS`, 64 distinct pairs | later pairs are left out |
//! | accelerator names | `MAX_NODE_ACCELERATORS`, 16 a node; `MAX_ACCELERATOR_NAMES`, 64 a report | later names are left out |
//! | sums (`accelerators`) and counts (`nodes`) | i64 / i32 | saturate |
//!
//! The version rules (`minor_version`, `distribution`) are version.rs's.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::quantity;
use super::shapes::{self, Capacity, RawNode};
use super::version::{distribution, minor_version};

/// String facts longer than this, in bytes, are `None`.
pub const MAX_TEXT: usize = 256;
/// Distinct node groups kept; see the table above.
pub const MAX_GROUPS: usize = 1000;
/// Distinct extension pairs kept.
pub const MAX_EXTENSIONS: usize = 64;
/// Distinct accelerator names read on one node.
pub const MAX_NODE_ACCELERATORS: usize = 16;
/// Distinct accelerator names totalled over a report.
pub const MAX_ACCELERATOR_NAMES: usize = 64;

/// What one report says, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `payload.masterVersion` as sent: the API server's gitVersion, e.g. "v1.29.4-eks-036c24b".
    pub master_version: Option<String>,
    /// "v1.29" from the master version, with or without its leading `v`; `None` if it does not
    /// start with `<major>.<minor>`, numbers of at most three digits (leading zeros dropped).
    pub minor_version: Option<String>,
    /// From version.rs's table: "eks", "gke", ..., "vanilla", "other" or "unknown".
    pub distribution: &'static str,
    /// `metadata.volunteerVersion` (this project's volunteer), else the v1 flat record's
    /// top-level `version` (the Go volunteer).
    pub volunteer_version: Option<String>,
    /// The nodes that are JSON objects, in `payload.nodes`, or in `payload.kubernetesNodes`
    /// (the earlier starter format) when `nodes` is absent.
    pub nodes: i32,
    /// Of those, the nodes with an allow-listed accelerator count above zero.
    pub nodes_with_accelerators: i32,
    /// The nodes grouped by identical facts, sorted by those facts.
    pub groups: Vec<NodeGroup>,
    /// Allow-listed accelerator name and its total count over the nodes, totals above zero
    /// only, sorted by name.
    pub accelerators: Vec<(String, i64)>,
    /// `payload.extensions` as (name, value) pairs, sorted, deduplicated.
    pub extensions: Vec<(String, String)>,
}

/// Nodes with the same facts, and how many there are. Each string comes from the node's
/// `status.nodeInfo` (current and seed formats) or its top level (v1 flat record); each
/// number from its `status.capacity` object or its v1 `capacity` list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct NodeGroup {
    /// `kubeletVersion`, e.g. "v1.29.4".
    pub kubelet_version: Option<String>,
    /// `osImage`, e.g. "Ubuntu 22.04.4 LTS".
    pub os_image: Option<String>,
    /// `kernelVersion`, e.g. "5.15.0-1057-aws".
    pub kernel_version: Option<String>,
    /// `containerRuntimeVersion`, e.g. "containerd://1.7.13".
    pub container_runtime_version: Option<String>,
    /// `operatingSystem`, e.g. "linux".
    pub operating_system: Option<String>,
    /// `architecture`, e.g. "amd64".
    pub architecture: Option<String>,
    /// The node's top-level `cloudProvider`, a providerID scheme such as "aws".
    pub cloud_provider: Option<String>,
    /// Capacity `cpu` in millicores.
    pub cpu_millis: Option<i64>,
    /// Capacity `memory` in bytes.
    pub memory_bytes: Option<i64>,
    /// Capacity `ephemeral-storage` in bytes.
    pub ephemeral_storage_bytes: Option<i64>,
    /// Capacity `pods`.
    pub pods: Option<i64>,
    /// The sum of the node's allow-listed accelerator counts; `None` when it is zero.
    pub accelerators: Option<i64>,
    /// How many nodes have these facts; at least 1.
    pub nodes: i32,
}

/// The facts of a report that report.rs has accepted: `payload` is a JSON object. Anything
/// else gives the facts of an empty payload.
/// A node group's value for one of summary's breakdowns.
type NodeField = fn(&NodeGroup) -> &Option<String>;

/// summary's breakdowns by node, with their keys.
const NODE_FACETS: [(&str, NodeField); 6] = [
    ("kubelet_version", |g| &g.kubelet_version),
    ("os_image", |g| &g.os_image),
    ("container_runtime_version", |g| {
        &g.container_runtime_version
    }),
    ("architecture", |g| &g.architecture),
    ("operating_system", |g| &g.operating_system),
    ("cloud_provider", |g| &g.cloud_provider),
];

impl Facts {
    /// What `summary` counts for this cluster, as (breakdown, value, nodes):
    /// one entry per distinct value of each breakdown (None: not reported),
    /// with this cluster's nodes that have it (for accelerators, the devices
    /// counted). Kept with the cluster's latest state, so that the fleet's
    /// figures are one pass over the clusters (clusters.facet_*).
    pub fn facets(&self) -> Vec<(&'static str, Option<Cow<'_, str>>, i64)> {
        let nodes = i64::from(self.nodes);
        fn cluster(v: &Option<String>) -> Option<Cow<'_, str>> {
            v.as_deref().map(Cow::Borrowed)
        }
        let mut out = vec![
            (
                "distribution",
                Some(Cow::Borrowed(self.distribution)),
                nodes,
            ),
            ("minor_version", cluster(&self.minor_version), nodes),
            ("master_version", cluster(&self.master_version), nodes),
            ("volunteer_version", cluster(&self.volunteer_version), nodes),
        ];
        for (key, field) in NODE_FACETS {
            let mut values: BTreeMap<Option<&str>, i64> = BTreeMap::new();
            for g in &self.groups {
                let n = values.entry(field(g).as_deref()).or_default();
                *n = n.saturating_add(i64::from(g.nodes));
            }
            out.extend(
                values
                    .into_iter()
                    .map(|(v, n)| (key, v.map(Cow::Borrowed), n)),
            );
        }
        let accelerators = self.accelerators.iter();
        out.extend(
            accelerators
                .map(|(name, count)| ("accelerators", Some(Cow::Borrowed(name.as_str())), *count)),
        );
        let extensions = self.extensions.iter();
        out.extend(
            extensions.map(|(k, v)| ("extensions", Some(Cow::Owned(format!("{k}={v}"))), nodes)),
        );
        out
    }
}

pub fn derive(metadata: &BTreeMap<String, String>, payload: &str) -> Facts {
    let p = shapes::read(payload);
    let list = p.nodes.or(p.kubernetes_nodes).unwrap_or_default();
    let mut groups: Vec<NodeGroup> = list
        .groups
        .into_iter()
        .map(|(key, nodes)| key.into_group(nodes))
        .collect();
    groups.sort_unstable();
    let master_version = p.master_version.map(Cow::into_owned);
    let volunteer_version = match metadata.get("volunteerVersion") {
        Some(v) => (v.len() <= MAX_TEXT).then(|| v.clone()),
        None => p.version.map(Cow::into_owned),
    };
    Facts {
        minor_version: master_version.as_deref().and_then(minor_version),
        distribution: distribution(master_version.as_deref(), &groups),
        master_version,
        volunteer_version,
        nodes: list.nodes,
        nodes_with_accelerators: list.with_accelerators,
        groups,
        accelerators: list
            .accelerators
            .into_iter()
            .map(|(name, n)| (name.into_owned(), n))
            .collect(),
        extensions: p.extensions.into_iter().collect(),
    }
}

/// A node list's facts so far, borrowing from the payload.
#[derive(Debug, Default)]
pub(super) struct Nodes<'de> {
    groups: HashMap<GroupKey<'de>, i32>,
    nodes: i32,
    with_accelerators: i32,
    accelerators: BTreeMap<Cow<'de, str>, i64>,
}

/// A node's facts, as the key of its group: the strings and numbers of `NodeGroup`, in its
/// order.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct GroupKey<'de> {
    text: [Option<Cow<'de, str>>; 7],
    numbers: [Option<i64>; 5],
}

impl GroupKey<'_> {
    fn into_group(self, nodes: i32) -> NodeGroup {
        let [kubelet, os, kernel, runtime, system, arch, cloud] =
            self.text.map(|t| t.map(Cow::into_owned));
        let [cpu_millis, memory_bytes, ephemeral_storage_bytes, pods, accelerators] = self.numbers;
        NodeGroup {
            kubelet_version: kubelet,
            os_image: os,
            kernel_version: kernel,
            container_runtime_version: runtime,
            operating_system: system,
            architecture: arch,
            cloud_provider: cloud,
            cpu_millis,
            memory_bytes,
            ephemeral_storage_bytes,
            pods,
            accelerators,
            nodes,
        }
    }
}

impl<'de> Nodes<'de> {
    /// Counts one node into its group; `shapes` calls this for each object in the list.
    pub(super) fn add(&mut self, node: RawNode<'de>) {
        // Which shape, as the first release's node_facts view told them apart: nodeInfo under an
        // object `status`, else at the top level; capacity a top-level list, else the
        // object under `status`.
        let (info, capacity) = match node.status {
            Some(status) => (status.info, status.capacity),
            None => (node.flat, Capacity::default()),
        };
        let capacity = node.flat_capacity.unwrap_or(capacity);
        let mut sum: Option<i64> = None;
        for (name, count) in capacity.accelerators {
            let Some(count) = count
                .as_deref()
                .and_then(quantity::value)
                .filter(|&n| n > 0)
            else {
                continue;
            };
            sum = Some(sum.unwrap_or(0).saturating_add(count));
            if let Some(total) = self.accelerators.get_mut(&*name) {
                *total = total.saturating_add(count);
            } else if self.accelerators.len() < MAX_ACCELERATOR_NAMES {
                self.accelerators.insert(name, count);
            }
        }
        let read = |q: Option<Cow<str>>, unit: fn(&str) -> Option<i64>| q.as_deref().and_then(unit);
        let key = GroupKey {
            text: [
                info.kubelet_version,
                info.os_image,
                info.kernel_version,
                info.container_runtime_version,
                info.operating_system,
                info.architecture,
                node.cloud_provider,
            ],
            numbers: [
                read(capacity.cpu, quantity::milli_value),
                read(capacity.memory, quantity::value),
                read(capacity.ephemeral_storage, quantity::value),
                read(capacity.pods, quantity::value),
                sum,
            ],
        };
        self.nodes = self.nodes.saturating_add(1);
        self.with_accelerators = self
            .with_accelerators
            .saturating_add(i32::from(sum.is_some()));
        // One hash a node below the cap.
        let key = match self.groups.len() < MAX_GROUPS || self.groups.contains_key(&key) {
            true => key,
            false => GroupKey::default(),
        };
        let count = self.groups.entry(key).or_insert(0);
        *count = count.saturating_add(1);
    }
}

/// Whether a capacity name is an accelerator counted in facts: the volunteer's allow-list
/// (volunteer/src/report.rs, `ACCELERATORS` and the MIG profile rule), copied because Go
/// volunteers send every capacity entry, and a custom resource name could name a company.
pub(super) fn accelerator(name: &str) -> bool {
    match name.strip_prefix("nvidia.com/mig-") {
        Some(profile) => mig_profile(profile),
        None => ACCELERATORS.contains(&name),
    }
}

/// The volunteer's `ACCELERATORS`.
const ACCELERATORS: &[&str] = &[
    "amd.com/gpu",
    "aws.amazon.com/neuron",
    "aws.amazon.com/neuroncore",
    "aws.amazon.com/neurondevice",
    "google.com/tpu",
    "gpu.intel.com/i915",
    "gpu.intel.com/xe",
    "habana.ai/gaudi",
    "nvidia.com/gpu",
    "nvidia.com/gpu.shared",
];

/// A MIG profile as NVIDIA's device plugin names it: `[<n>c.]<n>g.<n>gb[+me]`, numbers of at
/// most three digits; the volunteer's rule.
fn mig_profile(profile: &str) -> bool {
    let number = |n: &str| (1..=3).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit());
    let unit = |part: Option<&str>, unit: &str| {
        part.and_then(|p| p.strip_suffix(unit)).is_some_and(number)
    };
    let profile = profile.strip_suffix("+me").unwrap_or(profile);
    let mut parts = profile.split('.');
    let (first, second, third, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (third, rest) {
        (None, _) => unit(first, "g") && unit(second, "gb"),
        (Some(_), None) => unit(first, "c") && unit(second, "g") && unit(third, "gb"),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
