//! Node mode (`--machine-id-file`): of all the machines that run the volunteer, only the day's
//! chosen node reports, so a unit installed on every node still reports the cluster once.
//!
//! It owns the election and its verdicts. Every volunteer reads the same node list, so each can
//! work out the same winner alone, with no lock or lease to write: among the Ready nodes whose
//! machine id is unique in the list, the one with the lowest SHA-256 over "spartakus elect v1",
//! a NUL, the UTC day and its machine id's hash. It rotates daily, and when the winner is not
//! Ready the next one takes over. A volunteer reports only if the winner is its own node,
//! matched by the hash of this machine's `/etc/machine-id` (`ballot.rs`); the machine id is
//! never sent nor logged. It does not read the cluster; `kube.rs` does.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest::{digest, SHA256};

use crate::ballot::{self, MachineHash, MAX_MACHINE_ID_BYTES};
use crate::error::Error;
use crate::kube::{Snapshot, Source};
use crate::objects::Node;

/// Prefixed to the day and a machine id's hash, so the ranking is a hash of its own.
const ELECT_DOMAIN: &[u8] = b"spartakus elect v1\0";

/// What the election says about this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// This node is the day's chosen one: report.
    Chosen,
    /// Another Ready node is the day's chosen one.
    NotChosen,
    /// This node is listed but not Ready, so it stands aside.
    NotReady,
    /// No node of the cluster has this machine id.
    NoMatch,
    /// This many nodes share this machine id (a cloned image): this node cannot tell itself
    /// apart, so neither of them reports.
    Shared(usize),
}

impl Verdict {
    /// One line for the log saying why this node does not report; never the machine id.
    pub fn reason(self) -> String {
        match self {
            Verdict::Chosen => "this node is today's chosen one".into(),
            Verdict::NotChosen => "another Ready node reports for the cluster today".into(),
            Verdict::NotReady => "this node is not Ready; a Ready node reports today".into(),
            Verdict::NoMatch => "no node of the cluster has this machine's --machine-id-file \
                                 (is this machine a node of that cluster?)"
                .into(),
            Verdict::Shared(n) => format!(
                "{n} nodes share this machine's --machine-id-file (a cloned image?): they \
                 cannot tell themselves apart and none of them reports; give each machine \
                 its own /etc/machine-id"
            ),
        }
    }
}

/// Reads this machine's id (`--machine-id-file`) and keeps only its hash. Errors name the
/// file, never its content.
pub fn read_machine_id(path: &Path) -> Result<MachineHash, String> {
    let shown = path.display();
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(MAX_MACHINE_ID_BYTES as u64 + 1)
                .read_to_end(&mut raw)
        })
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let text = std::str::from_utf8(&raw).map_err(|_| format!("{shown} is not text"))?;
    ballot::machine_hash(text)
        .ok_or_else(|| format!("{shown} is empty or longer than {MAX_MACHINE_ID_BYTES} bytes"))
}

/// A `Source` for node mode: the inner snapshot if this node is the day's chosen one, else
/// `Error::Standby` with the reason.
pub struct Elected<'a> {
    pub inner: &'a dyn Source,
    pub own: MachineHash,
}

impl Source for Elected<'_> {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        let snapshot = self.inner.snapshot()?;
        // A clock before 1970 is broken; day 0 still elects one node.
        let day = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        match elect(&snapshot.nodes, &self.own, day) {
            Verdict::Chosen => Ok(snapshot),
            other => Err(Error::Standby(other.reason())),
        }
    }
}

/// The election for `day` (days since 1970, UTC) among `nodes`, as seen by the machine `own`.
pub fn elect(nodes: &[Node], own: &MachineHash, day: u64) -> Verdict {
    let mut counts: HashMap<&MachineHash, usize> = HashMap::new();
    for machine in nodes.iter().filter_map(|n| n.machine.as_ref()) {
        *counts.entry(machine).or_default() += 1;
    }
    match counts.get(own).copied().unwrap_or(0) {
        0 => return Verdict::NoMatch,
        1 => {}
        n => return Verdict::Shared(n),
    }
    if !nodes
        .iter()
        .any(|n| n.ready && n.machine.as_ref() == Some(own))
    {
        return Verdict::NotReady;
    }
    let chosen = nodes
        .iter()
        .filter(|n| n.ready)
        .filter_map(|n| n.machine.as_ref())
        .filter(|m| counts.get(m) == Some(&1))
        .min_by_key(|m| rank(m, day));
    match chosen == Some(own) {
        true => Verdict::Chosen,
        false => Verdict::NotChosen,
    }
}

/// A machine's place in the day's order: lowest wins.
fn rank(machine: &MachineHash, day: u64) -> [u8; 32] {
    let mut input = Vec::with_capacity(ELECT_DOMAIN.len() + 8 + 32);
    input.extend_from_slice(ELECT_DOMAIN);
    input.extend_from_slice(&day.to_be_bytes());
    input.extend_from_slice(&machine.0);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, &input).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NodeInfo;
    use std::collections::BTreeMap;

    fn node(machine: &str, ready: bool) -> Node {
        Node {
            uid: format!("uid-{machine}"),
            cloud_provider: None,
            capacity: BTreeMap::new(),
            node_info: NodeInfo::default(),
            machine: ballot::machine_hash(machine),
            ready,
        }
    }

    fn hash(machine: &str) -> MachineHash {
        ballot::machine_hash(machine).expect("a machine id")
    }

    fn chosen(nodes: &[Node], day: u64) -> Vec<String> {
        (0..nodes.len())
            .map(|i| format!("m{i}"))
            .filter(|m| elect(nodes, &hash(m), day) == Verdict::Chosen)
            .collect()
    }

    #[test]
    fn exactly_one_ready_node_is_chosen_and_it_rotates_by_day() {
        let nodes: Vec<Node> = (0..7).map(|i| node(&format!("m{i}"), true)).collect();
        let mut winners = std::collections::BTreeSet::new();
        for day in 20_000..20_030 {
            let won = chosen(&nodes, day);
            assert_eq!(won.len(), 1, "day {day}: {won:?}");
            winners.extend(won);
        }
        assert!(winners.len() > 3, "the choice rotates: {winners:?}");
    }

    #[test]
    fn a_not_ready_winner_hands_over_and_stands_aside() {
        let mut nodes: Vec<Node> = (0..5).map(|i| node(&format!("m{i}"), true)).collect();
        let first = chosen(&nodes, 20_000).remove(0);
        let at = nodes
            .iter()
            .position(|n| n.machine == Some(hash(&first)))
            .expect("the winner is listed");
        nodes[at].ready = false;
        assert_eq!(elect(&nodes, &hash(&first), 20_000), Verdict::NotReady);
        let next = chosen(&nodes, 20_000);
        assert_eq!(next.len(), 1);
        assert_ne!(next[0], first);
    }

    #[test]
    fn a_shared_or_unknown_machine_id_never_reports() {
        let mut nodes: Vec<Node> = (0..4).map(|i| node(&format!("m{i}"), true)).collect();
        nodes.push(node("m0", true));
        assert_eq!(elect(&nodes, &hash("m0"), 20_000), Verdict::Shared(2));
        assert_eq!(elect(&nodes, &hash("other"), 20_000), Verdict::NoMatch);
        for day in 20_000..20_020 {
            assert_eq!(chosen(&nodes, day).len(), 1, "the others still elect one");
        }
        assert!(!Verdict::Shared(2).reason().contains("m0"));
    }
}
