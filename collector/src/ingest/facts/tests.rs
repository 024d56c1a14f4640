//! facts.rs and shapes.rs, rule by rule and shape by shape.

use super::*;

fn facts(payload: &str) -> Facts {
    derive(&BTreeMap::new(), payload)
}

/// One group of `nodes` nodes with these strings and no numbers.
fn group(cloud: Option<&str>, os: Option<&str>) -> NodeGroup {
    NodeGroup {
        os_image: os.map(str::to_string),
        cloud_provider: cloud.map(str::to_string),
        nodes: 1,
        ..NodeGroup::default()
    }
}

/// masterVersion, a node's cloudProvider and osImage, and the distribution they make.
type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);

#[test]
fn distribution_follows_the_table() {
    let rhcos = "Red Hat Enterprise Linux CoreOS 415.92.202402201450-0 (Plow)";
    let cases: &[Case] = &[
        (None, Some("aws"), None, "unknown"),
        (Some("v1.29.3-eks-adc7111"), Some("aws"), None, "eks"),
        (Some("v1.29.1-gke.1589018"), Some("gce"), None, "gke"),
        (Some("v1.29.3+k3s1"), None, None, "k3s"),
        (Some("v1.29.3+rke2r1"), None, None, "rke2"),
        (Some("v1.29.2+k0s"), None, None, "k0s"),
        (Some("v1.27.10+c79e5e2"), None, Some(rhcos), "openshift"),
        (
            Some("v1.27.6+f67aeb3"),
            Some("aws"),
            Some("RHCOS 4.14"),
            "openshift",
        ),
        (
            Some("v1.28.2+1234567"),
            None,
            Some("CentOS Stream CoreOS 414.9"),
            "openshift",
        ),
        (
            Some("v1.27.6+f67aeb3"),
            None,
            Some("Ubuntu 22.04.4 LTS"),
            "other",
        ),
        (Some("v1.27.6+F67AEB3"), None, Some(rhcos), "other"),
        (Some("v1.27.6+f67ae"), None, Some(rhcos), "other"),
        (
            Some("v1.20.5-34+40f5951bd9888a"),
            None,
            Some("Ubuntu 20.04 LTS"),
            "microk8s",
        ),
        (Some("v1.29.3+IKS"), Some("ibm"), None, "other"),
        (Some("v1.29.4-dirty"), None, None, "other"),
        (Some("nonsense"), None, None, "other"),
        (Some(""), None, None, "other"),
        (
            Some("v1.29.2"),
            Some("kind"),
            Some("Debian GNU/Linux 12 (bookworm)"),
            "kind",
        ),
        (
            Some("v1.28.3"),
            None,
            Some("Buildroot 2021.02.12"),
            "minikube",
        ),
        (
            Some("v1.29.2"),
            None,
            Some("Docker Desktop"),
            "docker-desktop",
        ),
        (Some("v1.29.3"), None, Some("Talos (v1.7.0)"), "talos"),
        (
            Some("v1.29.2"),
            Some("azure"),
            Some("Ubuntu 22.04.4 LTS"),
            "aks",
        ),
        (Some("v1.29.2"), None, Some("CBL-Mariner/Linux"), "aks"),
        (
            Some("v1.30.0"),
            None,
            Some("Microsoft Azure Linux 3.0"),
            "aks",
        ),
        (
            Some("v1.29.4"),
            Some("aws"),
            Some("Ubuntu 22.04.4 LTS"),
            "vanilla",
        ),
        (Some("1.29.4"), None, None, "vanilla"),
        (Some("v1.31.0-rc.1"), None, None, "vanilla"),
        (Some("v1.0.3"), None, Some("CoreOS 738.1.0"), "vanilla"),
    ];
    for &(version, cloud, os, want) in cases {
        let got = distribution(version, &[group(cloud, os)]);
        assert_eq!(got, want, "{version:?} on {cloud:?}, {os:?}");
    }
    // One node of many is enough for a hint; no nodes is none.
    let kind = [group(None, None), group(Some("kind"), None)];
    assert_eq!(distribution(Some("v1.29.2"), &kind), "kind");
    assert_eq!(distribution(Some("v1.29.2"), &[]), "vanilla");
}

#[test]
fn distribution_reads_the_nodes_of_the_payload() {
    let p = r#"{"clusterID": "c", "masterVersion": "v1.29.2", "nodes": [
        {"cloudProvider": "azure", "status": {"nodeInfo": {"osImage": "Ubuntu 22.04.4 LTS"}}}]}"#;
    assert_eq!(facts(p).distribution, "aks");
    let v1 = r#"{"clusterID": "c", "masterVersion": "v1.27.10+c79e5e2", "nodes": [
        {"osImage": "Red Hat Enterprise Linux CoreOS 415.92", "capacity": []}]}"#;
    assert_eq!(facts(v1).distribution, "openshift");
}

#[test]
fn minor_version_is_major_and_minor() {
    let long = format!("v1.29.{}", "9".repeat(300));
    let cases = [
        ("v1.29.4-eks-036c24b", Some("v1.29")),
        ("v1.29.1-gke.1589018", Some("v1.29")),
        ("v1.29.3+k3s1", Some("v1.29")),
        ("v1.27.10+c79e5e2", Some("v1.27")),
        ("1.29.4", Some("v1.29")),
        ("v1.29", Some("v1.29")),
        ("v1.029.0", Some("v1.29")),
        ("v1.30.0-rc.1", Some("v1.30")),
        ("v1.5+", Some("v1.5")),
        (long.as_str(), Some("v1.29")),
        ("v1.2345.0", None),
        ("v1234.1.0", None),
        ("v1", None),
        ("v1.", None),
        ("v.1.29", None),
        ("V1.29.4", None),
        ("vv1.29", None),
        ("", None),
        ("v１.29", None),
    ];
    for (version, want) in cases {
        assert_eq!(minor_version(version).as_deref(), want, "{version:?}");
    }
    assert_eq!(facts(r#"{"clusterID": "c"}"#).minor_version, None);
}

#[test]
fn current_format_nodes_are_grouped() {
    let node = |kubelet: &str, cpu: &str| {
        format!(
            r#"{{"id": "x", "cloudProvider": "aws", "status": {{
            "capacity": {{"cpu": "{cpu}", "memory": "16Gi", "ephemeral-storage": "100Gi", "pods": "110",
                "nvidia.com/gpu": "8", "hugepages-2Mi": "0"}},
            "nodeInfo": {{"osImage": "Ubuntu 22.04.4 LTS", "kernelVersion": "5.15.0-1057-aws",
                "kubeletVersion": "{kubelet}", "containerRuntimeVersion": "containerd://1.7.13",
                "operatingSystem": "linux", "architecture": "amd64", "machineID": "m"}}}}}}"#
        )
    };
    let p = format!(
        r#"{{"clusterID": "c", "masterVersion": "v1.29.4-eks-036c24b", "nodes": [{}, {}, {}]}}"#,
        node("v1.29.4", "4"),
        node("v1.29.4", "4"),
        node("v1.28.2", "500m")
    );
    let f = facts(&p);
    let full = |kubelet: &str, cpu_millis, nodes| NodeGroup {
        kubelet_version: Some(kubelet.into()),
        os_image: Some("Ubuntu 22.04.4 LTS".into()),
        kernel_version: Some("5.15.0-1057-aws".into()),
        container_runtime_version: Some("containerd://1.7.13".into()),
        operating_system: Some("linux".into()),
        architecture: Some("amd64".into()),
        cloud_provider: Some("aws".into()),
        cpu_millis: Some(cpu_millis),
        memory_bytes: Some(16 << 30),
        ephemeral_storage_bytes: Some(100 << 30),
        pods: Some(110),
        accelerators: Some(8),
        nodes,
    };
    let want = Facts {
        master_version: Some("v1.29.4-eks-036c24b".into()),
        minor_version: Some("v1.29".into()),
        distribution: "eks",
        volunteer_version: None,
        nodes: 3,
        nodes_with_accelerators: 3,
        groups: vec![full("v1.28.2", 500, 1), full("v1.29.4", 4000, 2)],
        accelerators: vec![("nvidia.com/gpu".into(), 24)],
        extensions: vec![],
    };
    assert_eq!(f, want);
}

#[test]
fn v1_flat_nodes_read_their_top_level_and_capacity_list() {
    let p = r#"{"version": "v1.0.0", "clusterID": "c", "masterVersion": "v1.29.4",
        "nodes": [{"id": "b1", "osImage": "COS", "kernelVersion": "6.1.58+", "kubeletVersion": "v1.29.4",
            "containerRuntimeVersion": "containerd://1.7.10", "operatingSystem": "linux",
            "architecture": "amd64", "cloudProvider": "gce",
            "capacity": [{"resource": "cpu", "value": "8"}, {"value": "32Gi", "resource": "memory"},
                {"resource": "cpu", "value": "16"}, {"resource": "acme.example.com/license", "value": "5"},
                {"resource": "nvidia.com/mig-1g.5gb", "value": "7"}, {"resource": "pods"},
                {"resource": "google.com/tpu", "value": "4"}, {"resource": 7, "value": "1"}, "x"]}],
        "extensions": [{"name": "example.com/plan", "value": "gold"}, {"name": "n", "value": 1}]}"#;
    let f = facts(p);
    assert_eq!(f.volunteer_version.as_deref(), Some("v1.0.0"));
    assert_eq!(f.nodes, 1);
    let g = &f.groups[0];
    assert_eq!(
        (
            g.os_image.as_deref(),
            g.kubelet_version.as_deref(),
            g.architecture.as_deref()
        ),
        (Some("COS"), Some("v1.29.4"), Some("amd64"))
    );
    assert_eq!(g.cloud_provider.as_deref(), Some("gce"));
    // The first cpu entry counts, as node_facts reads it.
    assert_eq!(
        (g.cpu_millis, g.memory_bytes, g.pods),
        (Some(8000), Some(32 << 30), None)
    );
    assert_eq!(g.accelerators, Some(11));
    assert_eq!(
        f.accelerators,
        [
            ("google.com/tpu".into(), 4),
            ("nvidia.com/mig-1g.5gb".into(), 7)
        ]
    );
    assert_eq!(f.extensions, [("example.com/plan".into(), "gold".into())]);
}

#[test]
fn the_shape_is_told_by_status_not_by_endpoint() {
    // status is an object: nodeInfo under it counts, top-level fields do not; a capacity
    // list at the top level still counts, as in node_facts.
    let p = r#"{"clusterID": "c", "nodes": [{"osImage": "top", "status": {"nodeInfo": {"osImage": "in"}},
        "capacity": [{"resource": "pods", "value": "5"}]},
        {"osImage": "top", "status": "x", "capacity": {"pods": "9"}}]}"#;
    let f = facts(p);
    let got: Vec<_> = f
        .groups
        .iter()
        .map(|g| (g.os_image.as_deref(), g.pods))
        .collect();
    assert_eq!(got, [(Some("in"), Some(5)), (Some("top"), None)]);
}

#[test]
fn seed_format_and_the_starter_formats_kubernetes_nodes() {
    let seed_nodes = r#"[
        {"status": {"capacity": {"cpu": "1", "memory": "505020Ki", "pods": "40"},
         "nodeInfo": {"osImage": "CoreOS 738.1.0", "kubeletVersion": "v1.0.3"}}},
        {"status": {"capacity": {"cpu": "2", "memory": "1010040Ki", "pods": "40"},
         "nodeInfo": {"osImage": "CoreOS 738.1.0", "kubeletVersion": "v1.0.3"}}}]"#;
    let seed = facts(&format!(r#"{{"clusterID": "c", "nodes": {seed_nodes}}}"#));
    assert_eq!(
        (seed.nodes, seed.groups.len(), seed.distribution),
        (2, 2, "unknown")
    );
    assert_eq!(seed.groups[0].memory_bytes, Some(505_020 * 1024));
    let starter = facts(&format!(
        r#"{{"clusterID": "c", "kubernetesNodes": {seed_nodes}, "masterVersion": "v1.0.3"}}"#
    ));
    assert_eq!(
        (starter.groups.clone(), starter.nodes),
        (seed.groups.clone(), 2)
    );
    // nodes wins whichever comes first, even when it is not a list.
    for p in [
        format!(r#"{{"clusterID": "c", "kubernetesNodes": {seed_nodes}, "nodes": {{}}}}"#),
        format!(r#"{{"clusterID": "c", "nodes": [], "kubernetesNodes": {seed_nodes}}}"#),
    ] {
        assert_eq!((facts(&p).nodes, facts(&p).groups.len()), (0, 0), "{p}");
    }
}

#[test]
fn accelerators_are_allow_listed_and_counted_above_zero() {
    let node = |capacity: &str| format!(r#"{{"status": {{"capacity": {capacity}}}}}"#);
    let p = format!(
        r#"{{"clusterID": "c", "nodes": [{}, {}, {}, {}]}}"#,
        node(r#"{"nvidia.com/gpu": "2", "amd.com/gpu": "1", "nvidia.com/mig-1c.2g.10gb+me": "3"}"#),
        node(r#"{"nvidia.com/gpu": "0", "acme.example.com/gpu": "9", "nvidia.com/mig-1g": "9"}"#),
        node(
            r#"{"nvidia.com/gpu": "-1", "nvidia.com/gpu.shared": "x", "example.com/nvidia.com/gpu": "1"}"#
        ),
        node(r#"{"nvidia.com/gpu": "1", "nvidia.com/gpu": "4", "habana.ai/gaudi": 8}"#),
    );
    let f = facts(&p);
    assert_eq!(f.nodes, 4);
    assert_eq!(f.nodes_with_accelerators, 2);
    assert_eq!(
        f.accelerators,
        [
            ("amd.com/gpu".into(), 1),
            ("nvidia.com/gpu".into(), 6),
            ("nvidia.com/mig-1c.2g.10gb+me".into(), 3)
        ]
    );
    let sums: Vec<_> = f.groups.iter().map(|g| g.accelerators).collect();
    assert_eq!(sums, [None, Some(4), Some(6)]);
    assert_eq!(f.groups[0].nodes, 2);
    for (name, yes) in [
        ("nvidia.com/gpu", true),
        ("nvidia.com/mig-1g.5gb", true),
        ("nvidia.com/mig-7g.80gb", true),
        ("nvidia.com/mig-1c.1g.5gb", true),
        ("nvidia.com/mig-1g.10gb+me", true),
        ("nvidia.com/mig-1g.5gb.x", false),
        ("nvidia.com/mig-1000g.5gb", false),
        ("nvidia.com/mig-acme", false),
        ("nvidia.com/mig-", false),
        ("cpu", false),
        ("xilinx.com/fpga-x", false),
    ] {
        assert_eq!(accelerator(name), yes, "{name}");
    }
}

#[test]
fn extensions_of_both_volunteers_become_sorted_pairs() {
    let ours = r#"{"clusterID": "c", "extensions": {"b": "2", "a": "1", "n": 3, "o": {"x": "y"}}}"#;
    let go = r#"{"clusterID": "c", "extensions": [{"name": "b", "value": "2"}, {"value": "1", "name": "a"},
        {"name": "b", "value": "2"}, {"name": "x"}, 5, {"name": ["a"], "value": "v"}]}"#;
    let want: Vec<(String, String)> = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
    assert_eq!(facts(ours).extensions, want);
    assert_eq!(facts(go).extensions, want);
    assert!(facts(r#"{"clusterID": "c", "extensions": "a=b"}"#)
        .extensions
        .is_empty());
}

#[test]
fn volunteer_version_is_ours_then_the_go_records() {
    let mut metadata = BTreeMap::new();
    let p = r#"{"clusterID": "c", "version": "v1.0.0"}"#;
    assert_eq!(
        derive(&metadata, p).volunteer_version.as_deref(),
        Some("v1.0.0")
    );
    metadata.insert("volunteerVersion".to_string(), "0.1.0".to_string());
    assert_eq!(
        derive(&metadata, p).volunteer_version.as_deref(),
        Some("0.1.0")
    );
    metadata.insert("volunteerVersion".to_string(), "v".repeat(MAX_TEXT + 1));
    assert_eq!(derive(&metadata, p).volunteer_version, None);
}

#[test]
fn strings_over_the_cap_are_none() {
    for (len, kept) in [(MAX_TEXT, true), (MAX_TEXT + 1, false)] {
        let s = "é".repeat(len / 2) + &"x".repeat(len % 2);
        let p = format!(
            r#"{{"clusterID": "c", "masterVersion": "{s}", "nodes": [{{"cloudProvider": "{s}",
            "status": {{"nodeInfo": {{"osImage": "{s}", "kubeletVersion": "a\n{s}"}}}}}}],
            "extensions": {{"{s}": "v", "k": "{s}"}}}}"#
        );
        let f = facts(&p);
        let g = &f.groups[0];
        let want = kept.then(|| s.clone());
        assert_eq!(
            (&f.master_version, &g.os_image, &g.cloud_provider),
            (&want, &want, &want)
        );
        // An escaped string is copied only if it fits (here: never, being 2 bytes longer).
        assert_eq!(g.kubelet_version, None);
        assert_eq!(f.extensions.len(), if kept { 2 } else { 0 });
    }
}

#[test]
fn escaped_strings_are_read() {
    let p = r#"{"clusterID": "c", "masterVersion": "v1.29.4\u002deks-1", "nodes": [{"status": {"capacity":
        {"nvidia.com\/gpu": "\u0031"}, "nodeInfo": {"os\u0049mage": "Ubuntu \"22\""}}}]}"#;
    let f = facts(p);
    assert_eq!(
        (f.distribution, f.groups[0].os_image.as_deref()),
        ("eks", Some("Ubuntu \"22\""))
    );
    assert_eq!(f.accelerators, [("nvidia.com/gpu".into(), 1)]);
}

#[test]
fn groups_past_the_cap_fold_into_one_of_nothing() {
    let node = |i: usize| format!(r#"{{"status": {{"capacity": {{"pods": "{i}"}}}}}}"#);
    let nodes: Vec<String> = (0..MAX_GROUPS + 5)
        .map(node)
        .chain((0..3).map(node))
        .collect();
    let p = format!(
        r#"{{"clusterID": "c", "nodes": [{}, {{}}]}}"#,
        nodes.join(",")
    );
    let f = facts(&p);
    assert_eq!(f.nodes, MAX_GROUPS as i32 + 9);
    assert_eq!(f.groups.len(), MAX_GROUPS + 1);
    // The all-None group is the node {} plus the five past the cap; sorted first.
    assert_eq!(
        f.groups[0],
        NodeGroup {
            nodes: 6,
            ..NodeGroup::default()
        }
    );
    assert_eq!(
        f.groups.iter().map(|g| g.nodes as usize).sum::<usize>(),
        MAX_GROUPS + 9
    );
    assert_eq!(f.groups.iter().filter(|g| g.nodes == 2).count(), 3);
}

#[test]
fn caps_on_extensions_and_accelerator_names() {
    let pairs: Vec<String> = (0..MAX_EXTENSIONS + 10)
        .map(|i| format!(r#""k{i:03}": "v""#))
        .collect();
    let p = format!(
        r#"{{"clusterID": "c", "extensions": {{{}}}}}"#,
        pairs.join(",")
    );
    let f = facts(&p);
    assert_eq!(f.extensions.len(), MAX_EXTENSIONS);
    assert_eq!(f.extensions.last().map(|(k, _)| k.as_str()), Some("k063"));
    // 30 MIG profiles a node, on 10 nodes: 16 read a node, 64 totalled.
    let node = |n: usize| {
        let profiles: Vec<String> = (0..30)
            .map(|i| format!(r#""nvidia.com/mig-{n}g.{i}gb": "1""#))
            .collect();
        format!(
            r#"{{"status": {{"capacity": {{{}}}}}}}"#,
            profiles.join(",")
        )
    };
    let nodes: Vec<String> = (1..=10).map(node).collect();
    let f = facts(&format!(
        r#"{{"clusterID": "c", "nodes": [{}]}}"#,
        nodes.join(",")
    ));
    assert_eq!(f.accelerators.len(), MAX_ACCELERATOR_NAMES);
    assert!(f
        .groups
        .iter()
        .all(|g| g.accelerators == Some(MAX_NODE_ACCELERATORS as i64)));
}

#[test]
fn hostile_payloads_give_partial_facts_and_never_panic() {
    let cases = [
        "",
        "[]",
        "7",
        "not json",
        r#"{"clusterID": "c", "nodes": "x"}"#,
        r#"{"clusterID": "c", "nodes": [7, "x", null, [], [{}], true]}"#,
        r#"{"clusterID": "c", "masterVersion": 1.29, "nodes": [{"status": [], "capacity": 7}]}"#,
        r#"{"clusterID": "c", "nodes": [{"status": {"capacity": [], "nodeInfo": "x"}}]}"#,
        r#"{"clusterID": "c", "nodes": [{"status": {"capacity": {"cpu": 4, "memory": null}}}]}"#,
        r#"{"clusterID": "c", "nodes": [{"capacity": [[], {"resource": {}}, null]}]}"#,
        r#"{"clusterID": "c", "extensions": [[], {"name": {}, "value": []}], "version": []}"#,
        r#"{"clusterID": "c", "nodes": [{"status": {"capacity": {"cpu": "99999999999999999999"}}}]}"#,
        r#"{"clusterID": "c", "nodes": [{"id": "e1"}], "nodes": 7}"#,
        r#"{"clusterID": "c", "nodes": [{}]"#,
    ];
    for p in cases {
        let f = facts(p);
        assert!(f.nodes <= 1, "{p}: {f:?}");
        assert!(
            f.groups
                .iter()
                .all(|g| g.cpu_millis.is_none() && g.memory_bytes.is_none()),
            "{p}"
        );
    }
    assert_eq!(
        facts(r#"{"clusterID": "c", "nodes": [7, {}, "x"]}"#).nodes,
        1
    );
    let deep = format!(
        r#"{{"clusterID": "c", "nodes": [{}{}]}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_eq!(facts(&deep), facts(""));
}

#[test]
fn many_nodes_cost_their_groups_not_their_count() {
    let node =
        r#"{"status": {"capacity": {"cpu": "4", "memory": "16Gi"}, "nodeInfo": {"osImage": "U"}}}"#;
    let p = format!(
        r#"{{"clusterID": "c", "nodes": [{}]}}"#,
        [node; 100_000].join(",")
    );
    let started = std::time::Instant::now();
    let f = facts(&p);
    assert_eq!(
        (f.nodes, f.groups.len(), f.groups[0].nodes),
        (100_000, 1, 100_000)
    );
    // About 10 ms in release and 200 ms in debug builds; far less than a quadratic pass.
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn the_test_fixtures_derive() {
    let fixtures: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(include_str!("../../../tests/fixtures/reports.json"))
            .expect("fixtures");
    let got: Vec<(i32, usize, &str)> = fixtures
        .iter()
        .map(|r| {
            let f = facts(&r["payload"].to_string());
            (f.nodes, f.groups.len(), f.distribution)
        })
        .collect();
    assert_eq!(
        got,
        [
            (2, 1, "vanilla"),
            (2, 1, "vanilla"),
            (3, 2, "vanilla"),
            (1, 1, "vanilla"),
            (2, 2, "vanilla"),
            (1, 1, "unknown"),
            (2, 2, "unknown"),
            (1, 1, "aks"),
            (1, 1, "vanilla"),
            (0, 0, "unknown"),
            (2, 2, "eks"),
        ]
    );
}
