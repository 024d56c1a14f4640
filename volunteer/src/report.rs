//! THE wire format: the JSON document a volunteer sends to the collector, and how it is built.
//!
//! Every field below says whether it is required, where its value comes from, and what must
//! never go in it. The promise is anonymity: no node name, UID, label, annotation, address,
//! image, taint, pod CIDR, condition message, machineID, systemUUID or bootID ever reaches a
//! report, nor a providerID beyond its scheme. Most of that is enforced upstream, since
//! `kube.rs` does not even decode those fields; this file turns what is left into the report.
//! It does not fetch or send anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids;
use crate::kube::Snapshot;
use crate::objects::Shared;

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
    /// Required. `--cluster-id`, or else the UID of namespace kube-system: random, stable for
    /// the life of the cluster, and meaningless outside it.
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
    /// Required. `ids::node_id(clusterID, node UID)`: hex SHA-256, stable across reports and
    /// distinct per node. Never the name or the UID itself.
    pub id: String,
    /// Optional. Only the scheme of `spec.providerID` ("aws" from "aws:///us-east-1a/i-0abc"),
    /// omitted when there is no providerID or its scheme does not look like one. Never the rest
    /// of the providerID: it holds account numbers, zones and instance ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_provider: Option<String>,
    /// Required.
    pub status: NodeStatus,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Required, possibly empty. Every entry of `status.capacity`, values as the API's quantity
    /// strings ("4", "16Gi", "110"), keys sorted.
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
            cloud_provider: n.provider_id.as_deref().and_then(cloud_provider),
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

/// The scheme of a providerID, if it has one that looks like a scheme: 1 to 32 characters of
/// `[a-z0-9.+-]`. Anything else is dropped rather than cleaned, since it might be an identifier.
pub fn cloud_provider(provider_id: &str) -> Option<String> {
    let (scheme, _) = provider_id.split_once("://")?;
    let valid =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-');
    if scheme.is_empty() || scheme.len() > 32 || !scheme.bytes().all(valid) {
        return None;
    }
    Some(scheme.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_provider_keeps_only_a_plausible_scheme() {
        let cases = [
            ("aws:///us-east-1a/i-0abc", Some("aws")),
            ("gce://project/zone/name", Some("gce")),
            ("kind://docker/kind/kind-control-plane", Some("kind")),
            ("azure:///subscriptions/x", Some("azure")),
            ("vsphere+x.y-z://abc", Some("vsphere+x.y-z")),
            ("i-0abc", None),
            ("://x", None),
            ("AWS://x", None),
            ("my secret host://x", None),
            ("a/b://x", None),
        ];
        for (input, want) in cases {
            assert_eq!(cloud_provider(input).as_deref(), want, "{input}");
        }
        assert_eq!(cloud_provider(&format!("{}://x", "a".repeat(33))), None);
    }
}
