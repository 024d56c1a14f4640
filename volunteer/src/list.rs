//! The bounds of one node list, and the bookkeeping that holds a list to them page by page.
//!
//! A list ends when a page has no continue token, so an API server decides how long it goes
//! on. Against one that never ends it (a continue token that repeats, endless empty pages,
//! endless pages, endless bytes, or more nodes than any real cluster has), every rule here
//! stops the list with a one-line error, and the report is not built. It does not do HTTP:
//! `kube.rs` fetches each page and hands it here; `objects.rs` bounds what one node holds.

use std::collections::HashSet;

use ring::digest::{digest, SHA256};

use crate::answer::{Limit, MAX_ANSWER_BYTES};
use crate::objects::{Node, NodeList, Page};

/// Nodes asked for per page. At ~11 KB a node, a page of 250 is ~3 MB of JSON: few round
/// trips, cheap for the API server, far from `MAX_ANSWER_BYTES`.
pub const PAGE_SIZE: u32 = 250;

/// The most nodes in a report: the largest cluster Kubernetes supports (15,000 nodes on GKE;
/// upstream tests 5,000). 15,000 typical nodes encode to about 6.6 MiB (bench/volunteer),
/// within the collector's default body limit of 8 MiB (`report::MAX_REPORT_BYTES`). Counted
/// while decoding, so a page of a million nodes stops costing memory at this many.
pub const MAX_NODES: usize = 15_000;

/// The most pages of one list: 15,000 nodes in pages of at least 15.
pub const MAX_PAGES: u32 = 1_000;

/// The most bytes of one list, all pages together: 15,000 nodes of ~70 KB each, six times the
/// size of a typical node. It bounds time, not memory: pages are decoded as they stream.
pub const MAX_LIST_BYTES: u64 = 1024 * 1024 * 1024;

/// The most pages in a row with no nodes but a continue token. Kubernetes may send a short
/// page, but a run of empty ones is a list that is not going anywhere.
pub const MAX_EMPTY_PAGES: u32 = 10;

/// The longest continue token: real ones are base64 of a resource version and a node name,
/// under 1 KiB, and each is sent back in a URL.
pub const MAX_CONTINUE_BYTES: usize = 4096;

/// One node list in progress. A list restarted after a 410 Gone starts a new `List`, so the
/// bounds hold for each of its (at most two) attempts.
#[derive(Default)]
pub struct List {
    nodes: Vec<Node>,
    pages: u32,
    bytes: u64,
    empty_in_a_row: u32,
    /// SHA-256 of every continue token so far: 32 bytes each, at most `MAX_PAGES` of them.
    tokens: HashSet<Vec<u8>>,
}

impl List {
    /// How to decode the next page: with room for the nodes still allowed.
    pub fn page(&self) -> Page {
        Page {
            room: MAX_NODES.saturating_sub(self.nodes.len()),
        }
    }

    /// The most bytes the next page may take: one answer's bound, or what is left of the list's.
    pub fn byte_limit(&self) -> Limit {
        let left = MAX_LIST_BYTES.saturating_sub(self.bytes);
        if left >= MAX_ANSWER_BYTES {
            return Limit::answer();
        }
        Limit {
            bytes: left,
            rule: format!(
                "the list is larger than {} MiB in all",
                MAX_LIST_BYTES >> 20
            ),
        }
    }

    /// Takes one page of `bytes` bytes. `Ok(Some(token))`: fetch the next page with it;
    /// `Ok(None)`: the list is complete. The error is the broken rule.
    pub fn take(&mut self, page: NodeList, bytes: u64) -> Result<Option<String>, String> {
        self.pages += 1;
        self.bytes += bytes;
        if page.beyond > 0 {
            return Err(format!(
                "the cluster has more than {MAX_NODES} nodes, more than one report holds"
            ));
        }
        let empty = page.items.is_empty();
        self.nodes.extend(page.items);
        let Some(token) = page.metadata.continue_token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if token.len() > MAX_CONTINUE_BYTES {
            return Err(format!(
                "a continue token of {} bytes, over the {MAX_CONTINUE_BYTES} allowed",
                token.len()
            ));
        }
        if !self
            .tokens
            .insert(digest(&SHA256, token.as_bytes()).as_ref().to_vec())
        {
            return Err(format!(
                "the continue token of page {} repeats an earlier one: the list would never end",
                self.pages
            ));
        }
        self.empty_in_a_row = if empty { self.empty_in_a_row + 1 } else { 0 };
        if self.empty_in_a_row >= MAX_EMPTY_PAGES {
            return Err(format!(
                "{MAX_EMPTY_PAGES} empty pages in a row, each with a continue token"
            ));
        }
        if self.pages >= MAX_PAGES {
            return Err(format!("the list did not end after {MAX_PAGES} pages"));
        }
        Ok(Some(token))
    }

    /// The nodes of a complete list.
    pub fn into_nodes(self) -> Vec<Node> {
        self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::ListMeta;

    fn page(token: Option<&str>) -> NodeList {
        NodeList {
            metadata: ListMeta {
                continue_token: token.map(str::to_string),
            },
            items: Vec::new(),
            beyond: 0,
        }
    }

    #[test]
    fn the_list_byte_bound_shrinks_the_last_pages() {
        let mut list = List::default();
        assert_eq!(list.byte_limit().bytes, MAX_ANSWER_BYTES);
        let almost = MAX_LIST_BYTES - MAX_ANSWER_BYTES / 2;
        assert_eq!(list.take(page(Some("a")), almost), Ok(Some("a".into())));
        let limit = list.byte_limit();
        assert_eq!(limit.bytes, MAX_ANSWER_BYTES / 2);
        assert_eq!(limit.rule, "the list is larger than 1024 MiB in all");
        assert_eq!(list.take(page(None), limit.bytes), Ok(None));
        assert_eq!(list.byte_limit().bytes, 0, "nothing left for another page");
    }

    #[test]
    fn a_page_past_the_node_bound_fails_the_list() {
        let mut list = List::default();
        assert_eq!(list.page().room, MAX_NODES);
        let mut over = page(None);
        over.beyond = 1;
        let e = list.take(over, 100).expect_err("over the node bound");
        assert!(
            e.starts_with("the cluster has more than 15000 nodes"),
            "{e}"
        );
    }
}
