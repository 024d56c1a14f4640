//! Reads what facts.rs needs out of a payload's JSON text in one serde pass, borrowing its
//! strings and skipping everything else (`IgnoredAny`); no `serde_json::Value` is built, and
//! nodes are counted into their groups as they are read, so memory follows the groups, not
//! the nodes. Owns the payload's shapes; the rules about what they mean are facts.rs's.
//!
//! Every value is read leniently (lenient.rs): a value of another type than expected (a
//! number for a string, a list for an object) reads as absent and costs nothing else. A key
//! repeated in an object: the last one counts, as in jsonb; a resource repeated in a v1
//! capacity list: the first one counts, as the first release's node_facts read it.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess};

use super::facts::{self, Nodes, MAX_EXTENSIONS, MAX_NODE_ACCELERATORS};
use super::lenient::{each_key, text, Lenient, Shape, Text};

/// The top level of a payload.
#[derive(Debug, Default)]
pub(super) struct Payload<'de> {
    pub master_version: Text<'de>,
    /// The v1 flat record's volunteer version.
    pub version: Text<'de>,
    /// `Some` when the key is present, whatever its value.
    pub nodes: Option<Nodes<'de>>,
    /// The starter format's node list, read only when `nodes` comes after it or not at all.
    pub kubernetes_nodes: Option<Nodes<'de>>,
    pub extensions: BTreeSet<(String, String)>,
}

/// One node, both shapes read; facts.rs picks.
#[derive(Debug, Default)]
pub(super) struct RawNode<'de> {
    pub cloud_provider: Text<'de>,
    /// nodeInfo fields at the node's top level (v1 flat record).
    pub flat: Info<'de>,
    /// `Some` when `status` is an object (current and seed formats).
    pub status: Option<Status<'de>>,
    /// `Some` when the top-level `capacity` is a list (v1 flat record).
    pub flat_capacity: Option<Capacity<'de>>,
}

#[derive(Debug, Default)]
pub(super) struct Status<'de> {
    pub info: Info<'de>,
    pub capacity: Capacity<'de>,
}

#[derive(Debug, Default)]
pub(super) struct Info<'de> {
    pub kubelet_version: Text<'de>,
    pub os_image: Text<'de>,
    pub kernel_version: Text<'de>,
    pub container_runtime_version: Text<'de>,
    pub operating_system: Text<'de>,
    pub architecture: Text<'de>,
}

impl<'de> Info<'de> {
    fn field(&mut self, key: &str) -> Option<&mut Text<'de>> {
        Some(match key {
            "kubeletVersion" => &mut self.kubelet_version,
            "osImage" => &mut self.os_image,
            "kernelVersion" => &mut self.kernel_version,
            "containerRuntimeVersion" => &mut self.container_runtime_version,
            "operatingSystem" => &mut self.operating_system,
            "architecture" => &mut self.architecture,
            _ => return None,
        })
    }
}

/// The capacity entries facts reads, as quantity strings.
#[derive(Debug, Default)]
pub(super) struct Capacity<'de> {
    pub cpu: Text<'de>,
    pub memory: Text<'de>,
    pub ephemeral_storage: Text<'de>,
    pub pods: Text<'de>,
    /// Allow-listed names only, at most `MAX_NODE_ACCELERATORS`.
    pub accelerators: Vec<(Cow<'de, str>, Text<'de>)>,
}

impl<'de> Capacity<'de> {
    fn set(&mut self, name: Cow<'de, str>, value: Text<'de>, keep_first: bool) {
        let slot = match &*name {
            "cpu" => &mut self.cpu,
            "memory" => &mut self.memory,
            "ephemeral-storage" => &mut self.ephemeral_storage,
            "pods" => &mut self.pods,
            n if facts::accelerator(n) => {
                let known = self
                    .accelerators
                    .iter()
                    .position(|(known, _)| *known == name);
                match known {
                    Some(i) => &mut self.accelerators[i].1,
                    None if self.accelerators.len() < MAX_NODE_ACCELERATORS => {
                        self.accelerators.push((name, value));
                        return;
                    }
                    None => return,
                }
            }
            _ => return,
        };
        if !(keep_first && slot.is_some()) {
            *slot = value;
        }
    }
}

/// Reads a payload; text that is not JSON reads as an empty payload.
pub(super) fn read(payload: &str) -> Payload<'_> {
    let mut de = serde_json::Deserializer::from_str(payload);
    Lenient(PayloadShape)
        .deserialize(&mut de)
        .unwrap_or_default()
}

struct PayloadShape;

impl<'de> Shape<'de> for PayloadShape {
    type Out = Payload<'de>;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Payload<'de>, A::Error> {
        let mut p = Payload::default();
        each_key(map, |key, map| {
            match &*key {
                "masterVersion" => p.master_version = text(map)?,
                "version" => p.version = text(map)?,
                "nodes" => p.nodes = Some(map.next_value_seed(Lenient(NodeList))?),
                "kubernetesNodes" if p.nodes.is_none() => {
                    p.kubernetes_nodes = Some(map.next_value_seed(Lenient(NodeList))?)
                }
                "extensions" => p.extensions = map.next_value_seed(Lenient(Extensions))?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(p)
    }
}

/// A list of nodes, each object counted into `Nodes` as soon as it is read.
struct NodeList;

impl<'de> Shape<'de> for NodeList {
    type Out = Nodes<'de>;
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nodes<'de>, A::Error> {
        let mut nodes = Nodes::default();
        while let Some(node) = seq.next_element_seed(Lenient(NodeShape))? {
            if let Some(node) = node {
                nodes.add(node);
            }
        }
        Ok(nodes)
    }
}

struct NodeShape;

impl<'de> Shape<'de> for NodeShape {
    type Out = Option<RawNode<'de>>;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error> {
        let mut node = RawNode::default();
        each_key(map, |key, map| {
            match &*key {
                "cloudProvider" => node.cloud_provider = text(map)?,
                "status" => node.status = map.next_value_seed(Lenient(StatusShape))?,
                "capacity" => node.flat_capacity = map.next_value_seed(Lenient(CapacityList))?,
                k => match node.flat.field(k) {
                    Some(slot) => *slot = text(map)?,
                    None => return Ok(false),
                },
            }
            Ok(true)
        })?;
        Ok(Some(node))
    }
}

struct StatusShape;

impl<'de> Shape<'de> for StatusShape {
    type Out = Option<Status<'de>>;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error> {
        let mut status = Status::default();
        each_key(map, |key, map| {
            match &*key {
                "nodeInfo" => status.info = map.next_value_seed(Lenient(InfoShape))?,
                "capacity" => status.capacity = map.next_value_seed(Lenient(CapacityMap))?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(Some(status))
    }
}

struct InfoShape;

impl<'de> Shape<'de> for InfoShape {
    type Out = Info<'de>;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Info<'de>, A::Error> {
        let mut info = Info::default();
        each_key(map, |key, map| match info.field(&key) {
            Some(slot) => Ok({
                *slot = text(map)?;
                true
            }),
            None => Ok(false),
        })?;
        Ok(info)
    }
}

/// `status.capacity`: resource name to quantity string.
struct CapacityMap;

impl<'de> Shape<'de> for CapacityMap {
    type Out = Capacity<'de>;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Capacity<'de>, A::Error> {
        let mut capacity = Capacity::default();
        each_key(map, |name, map| {
            capacity.set(name, text(map)?, false);
            Ok(true)
        })?;
        Ok(capacity)
    }
}

/// The v1 `capacity`: a list of `{"resource": name, "value": quantity}`.
struct CapacityList;

impl<'de> Shape<'de> for CapacityList {
    type Out = Option<Capacity<'de>>;
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        let mut capacity = Capacity::default();
        while let Some((name, value)) = seq.next_element_seed(Lenient(Pair("resource", "value")))? {
            if let Some(name) = name {
                capacity.set(name, value, true);
            }
        }
        Ok(Some(capacity))
    }
}

/// An object's two string fields by these names, such as `{"name": .., "value": ..}`.
struct Pair(&'static str, &'static str);

impl<'de> Shape<'de> for Pair {
    type Out = (Text<'de>, Text<'de>);
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error> {
        let mut pair = (None, None);
        each_key(map, |key, map| {
            match &*key {
                k if k == self.0 => pair.0 = text(map)?,
                k if k == self.1 => pair.1 = text(map)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(pair)
    }
}

/// `extensions`: an object of strings (this project's volunteer) or a list of
/// `{"name", "value"}` (the Go v1 volunteer). At most `MAX_EXTENSIONS` distinct pairs.
struct Extensions;

impl Extensions {
    fn add(set: &mut BTreeSet<(String, String)>, name: Text, value: Text) {
        if let (Some(name), Some(value)) = (name, value) {
            if set.len() < MAX_EXTENSIONS {
                set.insert((name.into_owned(), value.into_owned()));
            }
        }
    }
}

impl<'de> Shape<'de> for Extensions {
    type Out = BTreeSet<(String, String)>;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error> {
        let mut set = BTreeSet::new();
        each_key(map, |name, map| {
            Extensions::add(&mut set, Some(name), text(map)?);
            Ok(true)
        })?;
        Ok(set)
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        let mut set = BTreeSet::new();
        while let Some((name, value)) = seq.next_element_seed(Lenient(Pair("name", "value")))? {
            Extensions::add(&mut set, name, value);
        }
        Ok(set)
    }
}
