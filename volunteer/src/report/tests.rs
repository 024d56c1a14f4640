//! The two privacy allow-lists of the wire format, case by case.

use super::*;

#[test]
fn cloud_provider_is_a_listed_scheme_or_other() {
    let cases = [
        ("aws:///us-east-1a/i-0abc", Some("aws")),
        ("gce://project/zone/name", Some("gce")),
        ("kind://docker/kind/kind-control-plane", Some("kind")),
        ("azure:///subscriptions/x", Some("azure")),
        ("kwok://node-0", Some("kwok")),
        ("acmecorp://rack-7/host-3", Some("other")),
        ("AWS://x", Some("other")),
        ("i-0abc", Some("other")),
        ("://x", Some("other")),
        ("aws", Some("other")),
        ("", None),
    ];
    for (input, want) in cases {
        assert_eq!(cloud_provider(input), want, "{input}");
    }
    assert!(PROVIDER_SCHEMES.windows(2).all(|w| w[0] < w[1]), "sorted");
}

#[test]
fn only_kubernetes_names_and_listed_accelerators_are_reportable() {
    let yes = [
        "cpu",
        "memory",
        "pods",
        "ephemeral-storage",
        "hugepages-2Mi",
        "attachable-volumes-aws-ebs",
        "kubernetes.io/batch-cpu",
        "nvidia.com/gpu",
        "amd.com/gpu",
        "google.com/tpu",
        "nvidia.com/mig-1g.5gb",
        "nvidia.com/mig-3g.20gb",
        "nvidia.com/mig-1c.2g.10gb",
        "nvidia.com/mig-1g.10gb+me",
    ];
    let no = [
        "acme.example.com/license",
        "example.com/plan",
        "acme-corp.com/gpu",
        "attachable-volumes-csi-storage.acme.example",
        "kubernetes.io/acme.example",
        "sub.kubernetes.io/x",
        "nvidia.com/gpu-acme",
        "nvidia.com/mig-acme",
        "nvidia.com/mig-1g.5gb.acme",
        "nvidia.com/mig-1g.5gb+acme",
        "nvidia.com/mig-1234g.5gb",
        "xilinx.com/fpga-xilinx_u200_xdma_201830_2-1561465320",
        "",
        "cpu_acme",
    ];
    for name in yes {
        assert!(reportable_resource(name), "{name} should be reported");
    }
    for name in no {
        assert!(
            !reportable_resource(name),
            "{name} must stay in the cluster"
        );
    }
}
