//! Decoding node pages: only kept fields, the room of a page, the bounds of one node.

use super::*;
use crate::shared;
use std::io::BufReader;

fn decode(room: usize, json: &str) -> Result<NodeList, serde_json::Error> {
    Page { room }.deserialize(&mut serde_json::Deserializer::from_str(json))
}

#[test]
fn only_kept_fields_are_decoded_from_a_fixture_page() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nodes-page-1-of-4.json"
    );
    let file = std::fs::File::open(path).expect("fixture nodes-page-1-of-4.json");
    let mut json = serde_json::Deserializer::from_reader(BufReader::new(file));
    let page = Page { room: 10 }.deserialize(&mut json).expect("decodes");
    assert_eq!(
        page.metadata.continue_token.as_deref(),
        Some("eyJvZmZzZXQiOjJ9")
    );
    assert_eq!((page.items.len(), page.beyond), (2, 0));
    let first = &page.items[0];
    assert_eq!(first.uid, "00-0000-4a1b-8c2d-000000000000");
    assert_eq!(first.cloud_provider, Some("aws"));
    assert_eq!(first.capacity.get("cpu").map(|v| &**v), Some("2"));
    assert_eq!(first.node_info.architecture.as_deref(), Some("amd64"));
    let second = &page.items[1];
    assert!(first.capacity["pods"].same(&second.capacity["pods"]));
    shared::forget();
}

#[test]
fn nodes_past_the_room_are_counted_not_kept() {
    let node = r#"{"metadata": {"uid": "u"}}"#;
    let json = format!(r#"{{"items": [{node}, {node}, {node}], "kind": "NodeList"}}"#);
    let page = decode(1, &json).expect("decodes");
    assert_eq!((page.items.len(), page.beyond), (1, 2));
    let e = decode(9, r#"{"items": [], "items": []}"#).expect_err("two item lists");
    assert!(e.to_string().contains("duplicate field `items`"), "{e}");
}

#[test]
fn capacity_keeps_only_reportable_names_and_a_bounded_count() {
    let capacity = r#"{"cpu": "4", "acme.example.com/license": "1", "nvidia.com/gpu": "2"}"#;
    let json = format!(
        r#"{{"items": [{{"metadata": {{"uid": "u"}},
        "status": {{"capacity": {capacity}}}}}]}}"#
    );
    let page = decode(9, &json).expect("decodes");
    let names: Vec<&str> = page.items[0].capacity.keys().map(|k| &**k).collect();
    assert_eq!(names, ["cpu", "nvidia.com/gpu"]);

    let many: Vec<String> = (0..=MAX_CAPACITY_ENTRIES)
        .map(|i| format!(r#""hugepages-{i}Mi": "0""#))
        .collect();
    let json = format!(
        r#"{{"items": [{{"metadata": {{"uid": "u"}}, "status": {{"capacity": {{{}}}}}}}]}}"#,
        many.join(",")
    );
    let e = decode(9, &json).expect_err("too many entries");
    assert!(e.to_string().contains("more than 32 reportable"), "{e}");
    shared::forget();
}

#[test]
fn a_node_uid_must_be_short_and_present() {
    for uid in [String::new(), "u".repeat(MAX_UID_BYTES + 1)] {
        let json = format!(r#"{{"items": [{{"metadata": {{"uid": "{uid}"}}}}]}}"#);
        let e = decode(9, &json).expect_err("a bad uid");
        assert!(
            e.to_string().contains("metadata.uid must be 1 to 128"),
            "{e}"
        );
    }
}
