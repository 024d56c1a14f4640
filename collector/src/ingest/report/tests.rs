//! Table-driven cases for `parse`: one rule each, with the message it must
//! give. properties.rs generates the many documents.

use super::*;

const SEED: &str = r#"{"metadata": {"timestamp": "1437174715"},
 "payload": {"clusterID": "612e0f99-1912-4647-831d-ba4c3d918b66",
   "nodes": [{"status": {"capacity": {"cpu": "1", "memory": "505020Ki", "pods": "40"},
 "nodeInfo": {"osImage": "CoreOS 738.1.0", "kernelVersion": "4.0.7-coreos-r2",
   "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.6.2"}}}]}}"#;

#[test]
fn seed_example_is_stamped_and_kept_verbatim() {
    let r = parse(Format::Current, SEED.as_bytes(), 1437174812, "192.0.2.145").expect("valid");
    assert_eq!(r.cluster_id, "612e0f99-1912-4647-831d-ba4c3d918b66");
    assert_eq!(r.report_id, None);
    assert_eq!(r.metadata["timestamp"], "1437174715");
    assert_eq!(r.metadata["received_at"], "1437174812");
    assert_eq!(r.metadata["received_from"], "192.0.2.145");
    assert!(
        r.payload.starts_with(r#"{"clusterID": "612e0f99"#),
        "{}",
        r.payload
    );
}

#[test]
fn client_cannot_set_the_collectors_fields() {
    let body = r#"{"metadata": {"received_at": "1", "received_from": "10.0.0.1", "reportID": "r1"},
        "payload": {"clusterID": "c"}}"#;
    let r = parse(Format::Current, body.as_bytes(), 99, "192.0.2.1").expect("valid");
    assert_eq!(r.metadata["received_at"], "99");
    assert_eq!(r.metadata["received_from"], "192.0.2.1");
    assert_eq!(r.report_id.as_deref(), Some("r1"));
}

#[test]
fn big_numbers_keep_every_digit() {
    let body = r#"{"payload": {"clusterID": "c", "n": 123456789012345678901234567890}}"#;
    let r = parse(Format::Current, body.as_bytes(), 1, "h").expect("valid");
    assert!(r.payload.contains("123456789012345678901234567890"));
}

#[test]
fn bad_shapes_name_the_field() {
    let cases = [
        ("", "body: invalid JSON"),
        ("{", "body: invalid JSON"),
        ("[]", "body: must be a JSON object"),
        (
            r#"{"payload": {"clusterID": "c"}, "extra": 1}"#,
            "extra: unknown field",
        ),
        (r#"{"metadata": {}}"#, "payload: required"),
        (
            r#"{"payload": []}"#,
            "payload: invalid type: sequence, expected an object",
        ),
        (r#"{"payload": {}}"#, "payload.clusterID: required"),
        (
            r#"{"payload": {"clusterID": ""}}"#,
            "payload.clusterID: required",
        ),
        (
            r#"{"payload": {"clusterID": 7}}"#,
            "payload.clusterID: required",
        ),
        (
            r#"{"metadata": [], "payload": {"clusterID": "c"}}"#,
            "metadata: must be an object",
        ),
        (
            r#"{"metadata": {"a": 1}, "payload": {"clusterID": "c"}}"#,
            "metadata.a: must be a string",
        ),
        // serde_json's Value would take this object for the string "x".
        (
            r#"{"metadata": {"a": {"$serde_json::private::RawValue": "\"x\""}}, "payload": {"clusterID": "c"}}"#,
            "metadata.a: must be a string",
        ),
        (
            r#"{"metadata": {"a": "\u0000"}, "payload": {"clusterID": "c"}}"#,
            "metadata.a: contains a NUL",
        ),
        (
            r#"{"payload": {"clusterID": "c", "x": ["\u0000"]}}"#,
            "payload: contains a NUL",
        ),
        (
            r#"{"metadata": {"reportID": ""}, "payload": {"clusterID": "c"}}"#,
            "metadata.reportID: must be",
        ),
        (
            r#"{"payload": {"clusterID": "c", "n": 1e400}}"#,
            "body: invalid JSON",
        ),
    ];
    for (body, want) in cases {
        let got = parse(Format::Current, body.as_bytes(), 1, "h").expect_err(body);
        assert!(
            got.starts_with(want),
            "body {body}: want {want:?}, got {got:?}"
        );
    }
    let deep = "[".repeat(100_000);
    let got = parse(Format::Current, deep.as_bytes(), 1, "h").expect_err("deep");
    assert!(got.starts_with("body: must be a JSON object"), "{got}");
    let deep = format!(
        r#"{{"payload": {{"clusterID": "c", "x": {deep}{}}}}}"#,
        "]".repeat(100_000)
    );
    let got = parse(Format::Current, deep.as_bytes(), 1, "h").expect_err("deep");
    assert!(got.contains("recursion limit exceeded"), "{got}");
    let got = parse(
        Format::Current,
        b"{\"payload\": {\"clusterID\": \"\xff\"}}",
        1,
        "h",
    );
    assert!(got.expect_err("utf8").starts_with("body: invalid JSON"));
}

#[test]
fn each_cap_takes_its_limit_and_refuses_one_byte_more() {
    let current = |id: &str, report_id: &str, pad: &str| {
        format!(
            r#"{{"metadata": {{"reportID": "{report_id}", "pad": "{pad}"}}, "payload": {{"clusterID": "{id}"}}}}"#
        )
    };
    let metadata = |n: usize| {
        current(
            "c",
            "r",
            &"m".repeat(n - r#"{"reportID": "r", "pad": ""}"#.len()),
        )
    };
    let payload = |n: usize| {
        let pad = "p".repeat(n - r#"{"clusterID": "c", "pad": ""}"#.len());
        format!(r#"{{"payload": {{"clusterID": "c", "pad": "{pad}"}}}}"#)
    };
    let v1 = |id: &str, t: &str| format!(r#"{{"clusterID": "{id}", "timestamp": "{t}"}}"#);
    // A body whose capped value is `n` bytes long.
    type Body<'a> = &'a dyn Fn(usize) -> String;
    let cases: [(Format, Body, usize, &str); 6] = [
        (
            Format::Current,
            &|n| current(&"c".repeat(n), "r", ""),
            256,
            "payload.clusterID: at most 256 bytes",
        ),
        (
            Format::Current,
            &|n| current("c", &"r".repeat(n), ""),
            256,
            "metadata.reportID: must be 1 to 256 bytes",
        ),
        (
            Format::Current,
            &metadata,
            65536,
            "metadata: at most 65536 bytes",
        ),
        (
            Format::Current,
            &payload,
            32 << 20,
            "payload: at most 33554432 bytes",
        ),
        (
            Format::V1,
            &|n| v1(&"c".repeat(n), "1"),
            256,
            "clusterID: at most 256 bytes",
        ),
        (
            Format::V1,
            &|n| v1("c", &"1".repeat(n)),
            64,
            "timestamp: at most 64 bytes",
        ),
    ];
    for (format, body, cap, want) in cases {
        let at_cap = body(cap);
        assert!(
            parse(format, at_cap.as_bytes(), 1, "h").is_ok(),
            "{want}: the cap itself"
        );
        let over = body(cap + 1);
        let got = parse(format, over.as_bytes(), 1, "h").expect_err(want);
        assert_eq!(got, want);
    }
    let v1_body = format!(r#"{{"clusterID": "c", "pad": "{}"}}"#, "p".repeat(32 << 20));
    let got = parse(Format::V1, v1_body.as_bytes(), 1, "h").expect_err("v1 body");
    assert_eq!(got, "body: at most 33554432 bytes");
}

#[test]
fn numbers_numeric_cannot_hold_are_refused() {
    let fraction = |n: usize| format!("0.{}1", "0".repeat(n - 1));
    let ok = [
        "1E-16383",
        "-0e-16383",
        "0.5e-16382",
        "0e1073741822",
        "1.5e+300",
        "1e308",
        &fraction(16383),
    ];
    let refused = [
        "1e-16384",
        "1.0e-16383",
        "0e1073741823",
        "0e-1073741823",
        "1e-99999999999999999999",
        &fraction(16384),
    ];
    for (number, fits) in ok
        .iter()
        .map(|n| (n, true))
        .chain(refused.iter().map(|n| (n, false)))
    {
        for (format, body) in [
            (
                Format::Current,
                format!(r#"{{"payload": {{"clusterID": "c", "n": [{number}]}}}}"#),
            ),
            (
                Format::V1,
                format!(r#"{{"n": {{"m": {number}}}, "clusterID": "c"}}"#),
            ),
        ] {
            let got = parse(format, body.as_bytes(), 1, "h");
            match fits {
                true => assert!(got.is_ok(), "{number}: {got:?}"),
                false => assert!(
                    got.as_ref()
                        .expect_err(number)
                        .ends_with(&format!(": {NUMERIC}")),
                    "{number}: {got:?}"
                ),
            }
        }
    }
    // Number characters inside strings, escaped quotes included, are text.
    let body =
        r#"{"payload": {"clusterID": "1e-99999", "s\"1e-99999": "\\", "t": "x\"1e-99999\""}}"#;
    assert!(parse(Format::Current, body.as_bytes(), 1, "h").is_ok());
}

#[test]
fn the_collectors_own_values_are_checked_too() {
    let body = br#"{"payload": {"clusterID": "c"}}"#;
    let at = |t| parse(Format::Current, body, t, "h");
    assert!(at(0).is_ok() && at(MAX_RECEIVED_AT).is_ok());
    for t in [-1, MAX_RECEIVED_AT + 1, i64::MAX] {
        assert!(at(t).expect_err("clock").starts_with("received_at: "));
    }
    let from = |f: &str| parse(Format::Current, body, 1, f);
    assert!(from(&"f".repeat(64)).is_ok());
    assert_eq!(
        from(&"f".repeat(65)).expect_err("received_from"),
        "received_from: at most 64 bytes"
    );
}

#[test]
fn v1_record_is_the_payload() {
    let body = r#"{"version": "v1.0.0", "timestamp": "1437174715", "clusterID": "c1",
        "masterVersion": "v1.2.0", "nodes": [{"id": "n"}], "extensions": [{"name": "a", "value": "b"}]}"#;
    let r = parse(Format::V1, body.as_bytes(), 5, "h").expect("valid");
    assert_eq!(r.cluster_id, "c1");
    assert_eq!(r.metadata["timestamp"], "1437174715");
    assert_eq!(r.payload, body);
    let r = parse(
        Format::V1,
        br#"{"clusterID": "c", "timestamp": 17}"#,
        5,
        "h",
    )
    .expect("valid");
    assert_eq!(r.metadata["timestamp"], "17");
    for (body, want) in [
        (r#"{"timestamp": "1"}"#, "clusterID: required"),
        (
            r#"{"clusterID": "c", "timestamp": [1]}"#,
            "timestamp: must be unix seconds",
        ),
        (
            r#""x""#,
            "body: invalid type: string \"x\", expected an object",
        ),
    ] {
        let got = parse(Format::V1, body.as_bytes(), 1, "h").expect_err(body);
        assert!(
            got.starts_with(want),
            "body {body}: want {want:?}, got {got:?}"
        );
    }
}

#[test]
fn top_level_names_match_in_any_case_as_the_seed_go_collector_read_them() {
    for (metadata, payload) in [
        ("metadata", "payload"),
        ("Metadata", "Payload"),
        ("mEtAdAtA", "PAYLOAD"),
        ("METADATA", "pAyLoAd"),
    ] {
        let body = format!(
            r#"{{"{metadata}": {{"timestamp": "1437174715"}}, "{payload}": {{"clusterID": "c", "n": 1.50}}}}"#
        );
        let r = parse(Format::Current, body.as_bytes(), 1, "h").expect(&body);
        assert_eq!(r.metadata["timestamp"], "1437174715", "{body}");
        assert_eq!(r.payload, r#"{"clusterID": "c", "n": 1.50}"#, "{body}");
    }
}

#[test]
fn two_keys_naming_one_field_are_refused_naming_both() {
    let cases = [
        (
            r#"{"payload": {"clusterID": "a"}, "Payload": {"clusterID": "b"}}"#,
            "Payload: repeats payload, as field names match in any case; send it once",
        ),
        (
            r#"{"payload": {"clusterID": "a"}, "payload": {"clusterID": "b"}}"#,
            "payload: repeats payload, as field names match in any case; send it once",
        ),
        (
            r#"{"METADATA": {}, "payload": {"clusterID": "a"}, "metadata": null}"#,
            "metadata: repeats METADATA, as field names match in any case; send it once",
        ),
        (
            r#"{"accountSecret": "s", "AccountSecret": "t", "payload": {"clusterID": "a"}}"#,
            "AccountSecret: repeats accountSecret, as field names match in any case; send it once",
        ),
        (
            r#"{"payload": {"clusterID": "a"}, "Payloads": {}}"#,
            "Payloads: unknown field; a report has only metadata and payload",
        ),
        (
            r#"{"payload": {"clusterID": "a"}, "accountID": 7}"#,
            "accountID: must be a string",
        ),
        (
            r#"{"payload": {"clusterID": "a"}, "AccountSecret": {"s": "t"}}"#,
            "accountSecret: must be a string",
        ),
    ];
    for (body, want) in cases {
        let got = parse(Format::Current, body.as_bytes(), 1, "h").expect_err(body);
        assert_eq!(got, want, "{body}");
    }
}

#[test]
fn names_folds_case_as_go_does_and_nothing_else() {
    let cases = [
        ("accountSecret", true),
        ("ACCOUNTSECRET", true),
        ("accountsecret", true),
        // Long s and, for a k, the Kelvin sign fold to ASCII in Go.
        ("account\u{17F}ecret", true),
        ("accountSecre", false),
        ("accountSecrets", false),
        ("accountSecret\0", false),
        ("\u{FF41}ccountSecret", false),
        ("", false),
    ];
    for (key, want) in cases {
        assert_eq!(names(key, SECRET), want, "{key:?}");
    }
    assert!(names("\u{212A}ey", "key") && !names("key", "kez"));
}

/// The secret each case sends; it must not be stored anywhere.
const CANARY: &str = "s3cr3t-canary";

#[test]
fn account_secret_is_cut_from_the_payload_and_the_rest_kept_byte_exact() {
    let c = CANARY;
    // (payload as sent, as stored)
    let cases = [
        (
            format!(r#"{{"clusterID": "c", "accountSecret": "{c}"}}"#),
            r#"{"clusterID": "c"}"#,
        ),
        (
            format!(r#"{{"accountSecret":"{c}","clusterID":"c","n":1.50}}"#),
            r#"{"clusterID":"c","n":1.50}"#,
        ),
        (
            format!("{{\n  \"a\": [1, 2],\n  \"accountSecret\" :\t\"{c}\" ,\n  \"clusterID\": \"c\"\n}}"),
            "{\n  \"a\": [1, 2],\n  \"clusterID\": \"c\"\n}",
        ),
        // Escaped, in other cases, repeated, beside each other.
        (
            format!(r#"{{"account\u0053ecret": "{c}", "clusterID": "c", "ACCOUNTSECRET": "{c}", "accountsecret": "{c}"}}"#),
            r#"{"clusterID": "c"}"#,
        ),
        (
            format!("{{\"clusterID\": \"c\", \"account\u{17F}ecret\": \"{c}\", \"n\": 123456789012345678901234567890}}"),
            r#"{"clusterID": "c", "n": 123456789012345678901234567890}"#,
        ),
        // A value that is not a string, with brackets, commas and quotes in
        // its strings.
        (
            format!(r#"{{"accountSecret": {{"k": "}},\"[{c}", "l": [1, {{"m": "]"}}], "n": -1e5}}, "clusterID": "c"}}"#),
            r#"{"clusterID": "c"}"#,
        ),
        (
            format!(r#"{{"clusterID": "c", "accountSecret": -1.5e-7, "x": {{"accountSecret": "{c}"}}}}"#),
            // Deeper keys are the payload's own: no volunteer put one there.
            r#"{"clusterID": "c", "x": {"accountSecret": "s3cr3t-canary"}}"#,
        ),
        (
            r#"{"clusterID": "c", "accountSecret": null, "kubernetesNodes": [{"status": {"capacity": {"cpu": "1"}}}]}"#.to_string(),
            r#"{"clusterID": "c", "kubernetesNodes": [{"status": {"capacity": {"cpu": "1"}}}]}"#,
        ),
    ];
    for (payload, want) in &cases {
        let body = format!(r#"{{"payload": {payload}}}"#);
        let r = parse(Format::Current, body.as_bytes(), 1, "h").expect(&body);
        assert_eq!(r.payload, *want, "sent {payload}");
        // The flat v1 record is a payload too.
        let r = parse(Format::V1, payload.as_bytes(), 1, "h").expect(payload);
        assert_eq!(r.payload, *want, "v1, sent {payload}");
    }
}

#[test]
fn the_starter_format_is_stored_without_its_account_secret() {
    // The starter's README: the account beside metadata and payload, the
    // nodes under kubernetesNodes, and metadata generated_at.
    let body = format!(
        r#"{{"accountID": "238dcbc5-4562-4fe3-9d8b-dc67911a7376", "accountSecret": "{CANARY}",
  "metadata": {{"generated_at": "1437174715", "AccountSecret": "{CANARY}"}},
  "payload": {{"clusterID": "612e0f99", "accountSecret": "{CANARY}", "kubernetesNodes": [{{"status":
    {{"capacity": {{"cpu": "1", "memory": "505020Ki", "pods": "40"}},
     "nodeInfo": {{"osImage": "CoreOS 738.1.0", "kubeletVersion": "v1.0.3"}}}}}}]}}}}"#
    );
    let r = parse(Format::Current, body.as_bytes(), 1, "h").expect("starter format");
    assert_eq!(r.cluster_id, "612e0f99");
    assert_eq!(r.metadata["generated_at"], "1437174715");
    assert_eq!(r.metadata.len(), 3, "{:?}", r.metadata);
    let stored = format!("{:?}", r);
    assert!(!stored.contains(CANARY), "{stored}");
    assert!(r
        .payload
        .starts_with(r#"{"clusterID": "612e0f99", "kubernetesNodes": [{"status":"#));
}

#[test]
fn the_seed_go_volunteers_capitalised_record_is_read() {
    // What json.Marshal made of a report.Record value: the field names,
    // since MarshalJSON had a pointer receiver and was never called.
    let payload = r#"{"clusterID":"c1","nodes":[{"status":{"capacity":{"cpu":"1"},"nodeInfo":{"osImage":"CoreOS"}}}]}"#;
    let body = format!(
        r#"{{"AccountID":"a1","AccountSecret":"{CANARY}","Metadata":{{"timestamp":"1437174715"}},"Payload":{payload}}}"#
    );
    let r = parse(Format::Current, body.as_bytes(), 1, "h").expect("seed record");
    assert_eq!(r.cluster_id, "c1");
    assert_eq!(r.metadata["timestamp"], "1437174715");
    assert_eq!(r.payload, payload);
    assert!(!format!("{r:?}").contains(CANARY));
}
