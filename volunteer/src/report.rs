//! THE wire format: the JSON document a volunteer sends to the collector, and how it is built.
//!
//! Every field below says whether it is required, where its value comes from, and what must
//! never go in it. The promise is anonymity: no node name, UID, label, annotation, address,
//! image, taint, pod CIDR, condition message, machineID, systemUUID or bootID ever reaches a
//! report, nor the kube-system UID, nor a providerID beyond a known scheme, nor a capacity name
//! that could name a company. Most of that is enforced upstream, since `objects.rs` does not
//! even decode those fields, and applies the two allow-lists below (`reportable_resource`,
//! `cloud_provider`) while decoding; this file owns those lists and turns what is left into the
//! report. It does not fetch or send anything.
//!
//! Size: a report holds at most `list::MAX_NODES` (15,000) nodes, and is refused (never sent,
//! nor printed by `--dry-run`) when its encoding exceeds `MAX_REPORT_BYTES`, the collector's
//! default body limit. 15,000 typical nodes encode to about 6.6 MiB (bench/volunteer).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids;
use crate::kube::Snapshot;
use crate::shared::Shared;

/// The largest encoded report: the collector's default `--max-body-bytes`, 8 MiB. A larger one
/// would be refused with 413 by a collector that keeps its default.
pub const MAX_REPORT_BYTES: usize = 8 * 1024 * 1024;

/// One report. Serialized as `{"metadata": ..., "payload": ...}`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Required. About the report itself, not the cluster.
    pub metadata: Metadata,
    /// Required. About the cluster.
    pub payload: Payload,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Required. Unix seconds as a decimal string (the seed's format), when the report was built.
    pub timestamp: String,
    /// Required. A random UUID v4, fresh for each report and kept for every retry of its
    /// publication, so the collector can drop duplicates. Never derived from cluster data.
    #[serde(rename = "reportID")]
    pub report_id: String,
    /// Required. This program's version (`spartakus-volunteer --version` without the name).
    pub volunteer_version: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// Required. `--cluster-id` as given, or else `ids::cluster_id`: SHA-256 over
    /// "spartakus cluster id v1", a NUL and the UID of namespace kube-system, shaped as a UUID
    /// v8; with `--cluster-id-key`, HMAC-SHA256 keyed with that file. Stable for the life of
    /// the cluster. Never the raw UID, which other telemetry uses as a cluster id; but without
    /// a key, whoever holds the raw UID can compute the same hash.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// Required. `gitVersion` from the API server's `/version`, e.g. "v1.29.4".
    pub master_version: String,
    /// Required, possibly empty. One entry per node, sorted by `id`.
    pub nodes: Vec<Node>,
    /// Optional, omitted when empty. The operator's `--extensions` pairs, keys sorted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, String>,
}

/// One node, with nothing that identifies it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Required. `ids::node_id(clusterID, node UID)` over the reported clusterID: hex SHA-256,
    /// stable across reports and distinct per node. Never the name or the UID itself.
    pub id: String,
    /// Optional. `cloud_provider(spec.providerID)`: a scheme from `PROVIDER_SCHEMES` ("aws"
    /// from "aws:///us-east-1a/i-0abc"), or "other"; omitted when there is no providerID. Never
    /// the rest of the providerID (account numbers, zones, instance ids), nor a scheme off the
    /// list: a private cloud's own scheme names its owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_provider: Option<&'static str>,
    /// Required.
    pub status: NodeStatus,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Required, possibly empty. The entries of `status.capacity` whose name passes
    /// `reportable_resource`, values as the API's quantity strings ("4", "16Gi", "110"), keys
    /// sorted. Never another extended resource: `acme.example.com/license` names a company.
    pub capacity: BTreeMap<Shared, Shared>,
    /// Required. Six fields of `status.nodeInfo`, each omitted when the API left it out.
    pub node_info: NodeInfo,
}

/// The reportable part of a node's `status.nodeInfo`, decoded from the API by the same struct,
/// so a field not listed here cannot be reported. Never machineID, systemUUID or bootID: they
/// identify the machine. kubeProxyVersion is left out as deprecated and redundant.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// Optional. E.g. "Ubuntu 22.04.4 LTS".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_image: Option<Shared>,
    /// Optional. E.g. "5.15.0-1057-aws".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<Shared>,
    /// Optional. E.g. "v1.29.4".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_version: Option<Shared>,
    /// Optional. E.g. "containerd://1.7.13".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_runtime_version: Option<Shared>,
    /// Optional. E.g. "linux".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<Shared>,
    /// Optional. E.g. "amd64".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Shared>,
}

/// What goes into a report besides the cluster snapshot.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub report_id: String,
    pub timestamp: u64,
    pub version: String,
}

/// Builds the report. Consumes the snapshot so each node's strings are moved, not copied:
/// in a cluster of thousands of nodes that halves the peak memory.
pub fn build(snapshot: Snapshot, extensions: BTreeMap<String, String>, stamp: Stamp) -> Report {
    let cluster_id = snapshot.cluster_id;
    let mut nodes: Vec<Node> = snapshot
        .nodes
        .into_iter()
        .map(|n| Node {
            id: ids::node_id(&cluster_id, &n.uid),
            cloud_provider: n.cloud_provider,
            status: NodeStatus {
                capacity: n.capacity,
                node_info: n.node_info,
            },
        })
        .collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Report {
        metadata: Metadata {
            timestamp: stamp.timestamp.to_string(),
            report_id: stamp.report_id,
            volunteer_version: stamp.version,
        },
        payload: Payload {
            cluster_id,
            master_version: snapshot.master_version,
            nodes,
            extensions,
        },
    }
}

/// Fails when the encoded report is over `MAX_REPORT_BYTES`; counts without keeping the bytes.
pub fn check_size(report: &Report) -> Result<(), Error> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, report)
        .map_err(|e| Error::Publish(format!("report: cannot encode it: {e}")))?;
    if count.0 > MAX_REPORT_BYTES {
        return Err(Error::Publish(format!(
            "report: {} bytes with {} nodes, over the {MAX_REPORT_BYTES} bytes a collector \
             accepts by default (--max-body-bytes); not sent",
            count.0,
            report.payload.nodes.len()
        )));
    }
    Ok(())
}

/// Extended resources reported by name: well-known accelerators, named by their vendors'
/// device plugins. Any other name with a domain prefix stays in the cluster. Not here: FPGA
/// resources (`xilinx.com/fpga-<shell>-<timestamp>`, `fpga.intel.com/af-<id>`), whose names
/// carry the id of a shell or bitstream an operator may have built, and renamed or shared GPU
/// resources other than the device plugin's default `nvidia.com/gpu.shared`.
pub const ACCELERATORS: &[&str] = &[
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

/// Whether a capacity entry may be reported: Kubernetes' own names (no domain prefix, or
/// `kubernetes.io/`, and then only letters, digits and `-`, as in `cpu`, `hugepages-2Mi`,
/// `attachable-volumes-aws-ebs`), `ACCELERATORS`, and NVIDIA MIG profiles
/// (`nvidia.com/mig-1g.5gb`, `nvidia.com/mig-1c.2g.10gb`, `nvidia.com/mig-1g.10gb+me`).
pub fn reportable_resource(name: &str) -> bool {
    let own = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    match name.split_once('/') {
        None => own(name),
        Some(("kubernetes.io", rest)) => own(rest),
        Some(("nvidia.com", rest)) if rest.strip_prefix("mig-").is_some_and(mig_profile) => true,
        Some(_) => ACCELERATORS.contains(&name),
    }
}

/// A MIG profile as NVIDIA's device plugin names it: `[<n>c.]<n>g.<n>gb[+me]`, numbers of at
/// most three digits. Nothing else fits, so nothing of the operator's can hide in one.
fn mig_profile(profile: &str) -> bool {
    let number = |n: &str| (1..=3).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit());
    let unit = |part: &str, unit: &str| part.strip_suffix(unit).is_some_and(number);
    let profile = profile.strip_suffix("+me").unwrap_or(profile);
    let parts: Vec<&str> = profile.split('.').collect();
    match parts[..] {
        [g, gb] => unit(g, "g") && unit(gb, "gb"),
        [c, g, gb] => unit(c, "c") && unit(g, "g") && unit(gb, "gb"),
        _ => false,
    }
}

/// providerID schemes reported as such: public clouds, virtualization and bare-metal
/// providers, and local or simulated clusters. Sorted, for `binary_search`.
pub const PROVIDER_SCHEMES: &[&str] = &[
    "alicloud",
    "aws",
    "azure",
    "civo",
    "cloudstack",
    "digitalocean",
    "docker",
    "equinixmetal",
    "exoscale",
    "fake",
    "gce",
    "hcloud",
    "ibm",
    "k3s",
    "kind",
    "kubevirt",
    "kwok",
    "linode",
    "metal3",
    "nutanix",
    "oci",
    "openstack",
    "ovhcloud",
    "packet",
    "proxmox",
    "rke2",
    "scaleway",
    "vsphere",
    "vultr",
];

/// The reported cloud provider of a providerID: its scheme when `PROVIDER_SCHEMES` has it
/// ("aws" from "aws:///us-east-1a/i-0abc"), else "other" (`acmecorp://...` names its owner).
/// `None` for an empty providerID, which Kubernetes treats as none.
pub fn cloud_provider(provider_id: &str) -> Option<&'static str> {
    if provider_id.is_empty() {
        return None;
    }
    let known = provider_id
        .split_once("://")
        .and_then(|(scheme, _)| PROVIDER_SCHEMES.binary_search(&scheme).ok())
        .map(|i| PROVIDER_SCHEMES[i]);
    Some(known.unwrap_or("other"))
}

#[cfg(test)]
mod tests;
