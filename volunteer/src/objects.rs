//! The Kubernetes objects the volunteer decodes, reduced to the fields it keeps.
//!
//! This file is the answer to "what does the volunteer read from my cluster?". serde decodes
//! only the fields declared here, straight from the response stream; everything else in a Node
//! (names, labels, annotations, addresses, images, taints) is skipped while streaming and
//! never exists in memory as a value; the machine id and the Ready condition are reduced at once
//! to what the node election needs (`ballot.rs`). The privacy rules of `report.rs` are
//! applied here too: a capacity name that may not be reported is skipped like those fields,
//! and a providerID is reduced to its reported cloud provider as soon as it is read. The
//! bounds on what one node may hold are here; those on a whole list are in `list.rs`. It does
//! not fetch anything; that is `kube.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::ballot::{self, MachineHash};
use crate::report::{self, NodeInfo};
use crate::shared::Shared;

/// The most bytes in a node's UID, which is hash input only: real ones are 36-byte UUIDs.
pub const MAX_UID_BYTES: usize = 128;

/// The most reportable capacity entries of one node. Real nodes have 6 to 16 (cpu, memory,
/// pods, ephemeral-storage, a few hugepage sizes, GPUs and MIG profiles).
pub const MAX_CAPACITY_ENTRIES: usize = 32;

/// The kept parts of one Node object.
#[derive(Debug)]
pub struct Node {
    /// `metadata.uid`; only ever used as hash input.
    pub uid: String,
    /// `report::cloud_provider` of `spec.providerID`; the providerID itself is not kept.
    pub cloud_provider: Option<&'static str>,
    /// The entries of `status.capacity` that `report::reportable_resource` allows, as quantity
    /// strings. The others are skipped while decoding.
    pub capacity: BTreeMap<Shared, Shared>,
    /// The reportable fields of `status.nodeInfo`.
    pub node_info: NodeInfo,
    /// The hash of `status.nodeInfo.machineID` (`ballot.rs`), for the node election only.
    pub machine: Option<MachineHash>,
    /// Whether the Ready condition is "True", for the node election only.
    pub ready: bool,
}

// The API's own nesting, decoded and then flattened into `Node`.
#[derive(Deserialize)]
struct ApiNode {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ApiNodeSpec,
    #[serde(default)]
    status: ApiNodeStatus,
}

#[derive(Deserialize)]
pub struct ObjectMeta {
    pub uid: String,
}

#[derive(Default, Deserialize)]
struct ApiNodeSpec {
    // Dropped as soon as this node is decoded, in `try_from`.
    #[serde(rename = "providerID")]
    provider_id: Option<String>,
}

#[derive(Default, Deserialize)]
struct ApiNodeStatus {
    #[serde(default, deserialize_with = "reportable_capacity")]
    capacity: BTreeMap<Shared, Shared>,
    #[serde(default, rename = "nodeInfo")]
    node_info: ApiNodeInfo,
    #[serde(default, deserialize_with = "ballot::ready")]
    conditions: bool,
}

// The reportable fields, and the machine id hashed as it is read. Flattened, so the fields
// reported stay exactly those `NodeInfo` declares.
#[derive(Default, Deserialize)]
struct ApiNodeInfo {
    #[serde(default, rename = "machineID", deserialize_with = "ballot::hashed")]
    machine_id: Option<MachineHash>,
    #[serde(flatten)]
    reported: NodeInfo,
}

// By hand, not `#[serde(try_from)]`: serde's derive would tie `'de` to the `'static` of
// `cloud_provider`.
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let n = ApiNode::deserialize(deserializer)?;
        let uid = n.metadata.uid;
        if uid.is_empty() || uid.len() > MAX_UID_BYTES {
            return Err(de::Error::custom(format!(
                "a node's metadata.uid must be 1 to {MAX_UID_BYTES} bytes, not {}",
                uid.len()
            )));
        }
        Ok(Node {
            uid,
            cloud_provider: n
                .spec
                .provider_id
                .as_deref()
                .and_then(report::cloud_provider),
            capacity: n.status.capacity,
            node_info: n.status.node_info.reported,
            machine: n.status.node_info.machine_id,
            ready: n.status.conditions,
        })
    }
}

/// Decodes `status.capacity`, keeping only reportable names, at most `MAX_CAPACITY_ENTRIES`.
fn reportable_capacity<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<Shared, Shared>, D::Error> {
    struct Capacity;
    impl<'de> Visitor<'de> for Capacity {
        type Value = BTreeMap<Shared, Shared>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of resource names to quantities")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(ResourceName(name)) = map.next_key()? {
                let Some(name) = name else {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                };
                kept.insert(name, map.next_value()?);
                if kept.len() > MAX_CAPACITY_ENTRIES {
                    return Err(de::Error::custom(format!(
                        "a node has more than {MAX_CAPACITY_ENTRIES} reportable capacity entries"
                    )));
                }
            }
            Ok(kept)
        }
    }
    deserializer.deserialize_map(Capacity)
}

/// A capacity key: the name if `report::reportable_resource` allows it, else `None`; a name
/// that is not reported is never copied out of the decoder's buffer.
struct ResourceName(Option<Shared>);

impl<'de> Deserialize<'de> for ResourceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ResourceName, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = ResourceName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resource name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<ResourceName, E> {
                if !report::reportable_resource(name) {
                    return Ok(ResourceName(None));
                }
                Shared::pooled(name)
                    .map(|n| ResourceName(Some(n)))
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// One page of `GET /api/v1/nodes`, decoded through `Page`.
#[derive(Debug)]
pub struct NodeList {
    pub metadata: ListMeta,
    /// At most the `room` of the `Page` it was decoded with.
    pub items: Vec<Node>,
    /// How many items came after `room` was full: counted and skipped, never decoded.
    pub beyond: usize,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListMeta {
    /// Set while the list goes on; opaque, and must be URL-encoded when sent back.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// Decodes one `NodeList`, keeping at most `room` nodes: a page of a million nodes costs the
/// memory of `room` nodes and the time to skip the rest.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub room: usize,
}

impl<'de> DeserializeSeed<'de> for Page {
    type Value = NodeList;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeList, D::Error> {
        deserializer.deserialize_map(self)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ListField {
    Metadata,
    Items,
    #[serde(other)]
    Other,
}

impl<'de> Visitor<'de> for Page {
    type Value = NodeList;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a NodeList")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeList, A::Error> {
        let mut metadata = None;
        let mut items = None;
        while let Some(field) = map.next_key()? {
            match field {
                // A second "items" would double the room; a second "metadata" could
                // overwrite the continue token.
                ListField::Metadata if metadata.is_some() => {
                    return Err(de::Error::duplicate_field("metadata"))
                }
                ListField::Items if items.is_some() => {
                    return Err(de::Error::duplicate_field("items"))
                }
                ListField::Metadata => metadata = Some(map.next_value()?),
                ListField::Items => items = Some(map.next_value_seed(Items(self.room))?),
                ListField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (items, beyond) = items.unwrap_or_default();
        Ok(NodeList {
            metadata: metadata.unwrap_or_default(),
            items,
            beyond,
        })
    }
}

/// The `items` of a `NodeList`: up to `.0` nodes kept, and the count of those skipped.
struct Items(usize);

impl<'de> DeserializeSeed<'de> for Items {
    type Value = (Vec<Node>, usize);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items {
    type Value = (Vec<Node>, usize);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of Nodes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while items.len() < self.0 {
            match seq.next_element()? {
                Some(node) => items.push(node),
                None => return Ok((items, 0)),
            }
        }
        let mut beyond = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            beyond += 1;
        }
        Ok((items, beyond))
    }
}

/// `GET /version`.
#[derive(Deserialize)]
pub struct Version {
    #[serde(rename = "gitVersion")]
    pub git_version: String,
}

/// `GET /api/v1/namespaces/kube-system`, or `.../default/services/kubernetes`: only the UID.
#[derive(Deserialize)]
pub struct Namespace {
    pub metadata: ObjectMeta,
}

/// The body of an API error answer.
#[derive(Deserialize)]
pub struct Status {
    pub message: Option<String>,
}

#[cfg(test)]
mod tests;
