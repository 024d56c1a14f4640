//! The Kubernetes objects the volunteer decodes, reduced to the fields it keeps.
//!
//! This file is the answer to "what does the volunteer read from my cluster?". serde decodes
//! only the fields declared here, straight from the response stream; everything else in a Node
//! (names, labels, annotations, addresses, images, taints, conditions, machine ids) is skipped
//! while streaming and never exists in memory as a value. It does not fetch anything; that is
//! `kube.rs`.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::report::NodeInfo;

/// The kept parts of one Node object.
#[derive(Debug, Deserialize)]
#[serde(from = "ApiNode")]
pub struct Node {
    /// `metadata.uid`; only ever used as hash input.
    pub uid: String,
    /// `spec.providerID`; only its scheme is reported.
    pub provider_id: Option<String>,
    /// `status.capacity`, as quantity strings.
    pub capacity: BTreeMap<Shared, Shared>,
    /// The reportable fields of `status.nodeInfo`.
    pub node_info: NodeInfo,
}

// The API's own nesting, decoded and then flattened into `Node`. Every other field of a Node
// (names, labels, annotations, addresses, images, taints, conditions, ...) is skipped by serde
// while streaming and never exists in memory as a value.
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
    #[serde(rename = "providerID")]
    provider_id: Option<String>,
}

#[derive(Default, Deserialize)]
struct ApiNodeStatus {
    #[serde(default)]
    capacity: BTreeMap<Shared, Shared>,
    #[serde(default, rename = "nodeInfo")]
    node_info: NodeInfo,
}

impl From<ApiNode> for Node {
    fn from(n: ApiNode) -> Node {
        Node {
            uid: n.metadata.uid,
            provider_id: n.spec.provider_id,
            capacity: n.status.capacity,
            node_info: n.status.node_info,
        }
    }
}

/// One page of `GET /api/v1/nodes`.
#[derive(Deserialize)]
pub struct NodeList {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default)]
    pub items: Vec<Node>,
}

#[derive(Default, Deserialize)]
pub struct ListMeta {
    /// Set while the list goes on; opaque, and must be URL-encoded when sent back.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// `GET /version`.
#[derive(Deserialize)]
pub struct Version {
    #[serde(rename = "gitVersion")]
    pub git_version: String,
}

/// `GET /api/v1/namespaces/kube-system`.
#[derive(Deserialize)]
pub struct Namespace {
    pub metadata: ObjectMeta,
}

/// The body of an API error answer.
#[derive(Deserialize)]
pub struct Status {
    pub message: Option<String>,
}

/// A string from a Node that many nodes are likely to share ("cpu", "110", "linux", the same
/// OS image and kernel): decoded once per distinct value and shared by reference counting.
///
/// In a cluster of 5000 nodes this takes the kept data from ~8 MB to ~3 MB, which is what keeps
/// the volunteer's peak memory within 16 MiB. The sharing happens through a per-thread pool
/// that `forget_shared()` empties after each list, so it never outlives one report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shared(Arc<str>);

thread_local! {
    static POOL: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

impl Shared {
    fn pooled(text: &str) -> Shared {
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if let Some(known) = pool.get(text) {
                return Shared(Arc::clone(known));
            }
            let fresh: Arc<str> = Arc::from(text);
            pool.insert(Arc::clone(&fresh));
            Shared(fresh)
        })
    }
}

/// Empties this thread's pool. Values already decoded keep their own references.
pub fn forget_shared() {
    POOL.with(|pool| *pool.borrow_mut() = HashSet::new());
}

impl Deref for Shared {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Shared {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Shared {
    fn from(text: &str) -> Shared {
        Shared(Arc::from(text))
    }
}

impl Serialize for Shared {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Shared {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shared, D::Error> {
        struct SharedVisitor;
        impl Visitor<'_> for SharedVisitor {
            type Value = Shared;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            // A borrowed &str: no allocation at all when the value is already pooled.
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Shared, E> {
                Ok(Shared::pooled(text))
            }
        }
        deserializer.deserialize_str(SharedVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn only_kept_fields_are_decoded_from_a_fixture_page() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/nodes-page-1-of-4.json"
        );
        let file = std::fs::File::open(path).expect("fixture nodes-page-1-of-4.json");
        let page: NodeList = serde_json::from_reader(BufReader::new(file)).expect("decodes");
        assert_eq!(
            page.metadata.continue_token.as_deref(),
            Some("eyJvZmZzZXQiOjJ9")
        );
        assert_eq!(page.items.len(), 2);
        let first = &page.items[0];
        assert_eq!(first.uid, "00-0000-4a1b-8c2d-000000000000");
        assert_eq!(first.capacity.get("cpu").map(|v| &**v), Some("2"));
        assert_eq!(first.node_info.architecture.as_deref(), Some("amd64"));
        let second = &page.items[1];
        let (a, b) = (&first.capacity["pods"], &second.capacity["pods"]);
        assert!(Arc::ptr_eq(&a.0, &b.0), "equal values are shared");
        forget_shared();
    }
}
