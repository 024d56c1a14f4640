//! What a report's versions say: the minor version, and the distribution, a pure function of
//! `masterVersion` and the grouped nodes' cloud providers and OS images (facts.rs), so that no
//! new data leaves a cluster.
//!
//! In the table, `v` is the master version's `vX.Y.Z` (the `v` optional), then nothing or
//! `-alpha.N`, `-beta.N` or `-rc.N`. The first row that matches wins:
//!
//! | Distribution | Rule | Example |
//! |---|---|---|
//! | `unknown` | no masterVersion | |
//! | `eks` | contains `-eks-` | v1.29.3-eks-adc7111 |
//! | `gke` | contains `-gke.` | v1.29.1-gke.1589018 |
//! | `k3s` | contains `+k3s` | v1.29.3+k3s1 |
//! | `rke2` | contains `+rke2` | v1.29.3+rke2r1 |
//! | `k0s` | contains `+k0s` | v1.29.2+k0s |
//! | `openshift` | `v+<hash>`, hash 7 to 40 lowercase hex digits, and a node OS image naming an OpenShift CoreOS (`Red Hat Enterprise Linux CoreOS`, `RHCOS`; OKD's `CentOS Stream CoreOS`, `Fedora CoreOS`) | v1.27.10+c79e5e2 |
//! | `microk8s` | `v-<build>+<hash>`, the snap's build number and hash | v1.20.5-34+40f5951bd9888a |
//! | `other` | anything but a plain `v` | v1.29.3+IKS, v1.27.6+f67aeb3 on RHEL 8 |
//! | `kind` | a node's cloudProvider is `kind` (kind's providerID `kind://docker/...`) | |
//! | `minikube` | a node's OS image starts with `Buildroot` (minikube's VM image; its docker driver shows the host's OS and counts as `vanilla`) | Buildroot 2023.02.9 |
//! | `docker-desktop` | a node's OS image is `Docker Desktop` | |
//! | `talos` | a node's OS image starts with `Talos` | Talos (v1.7.0) |
//! | `aks` | a node's cloudProvider is `azure`, or an OS image is Azure Linux (`CBL-Mariner`, `Azure Linux`) | v1.29.2 |
//! | `vanilla` | any other plain `v`: kubeadm, kops, upstream builds | v1.29.4 |
//!
//! `aks` is a bet: AKS reports plain upstream versions, so a self-managed cluster on Azure
//! VMs with the Azure cloud provider (CAPZ, kubeadm) counts as `aks` too; those are rare next
//! to AKS, and Go volunteers too old to send cloudProvider are only found on Azure Linux.

use super::facts::NodeGroup;

/// "v1.29" from "v1.29.4-eks-036c24b" or "1.29.4"; see `Facts::minor_version`.
pub(super) fn minor_version(version: &str) -> Option<String> {
    let rest = version.strip_prefix('v').unwrap_or(version);
    let (major, rest) = number(rest)?;
    let (minor, rest) = number(rest.strip_prefix('.')?)?;
    match rest.bytes().next() {
        Some(b'0'..=b'9') => None,
        _ => Some(format!("v{major}.{minor}")),
    }
}

/// The number of one to three digits `s` starts with, and the rest.
fn number(s: &str) -> Option<(u16, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    match len {
        1..=3 => Some((s[..len].parse().ok()?, &s[len..])),
        _ => None,
    }
}

/// The distribution, by the table above.
pub(super) fn distribution(version: Option<&str>, groups: &[NodeGroup]) -> &'static str {
    let Some(v) = version else {
        return "unknown";
    };
    let os = |rule: fn(&str) -> bool| {
        groups
            .iter()
            .any(|g| g.os_image.as_deref().is_some_and(rule))
    };
    let cloud = |name: &str| {
        groups
            .iter()
            .any(|g| g.cloud_provider.as_deref() == Some(name))
    };
    let (base, hash) = v.split_once('+').unwrap_or((v, ""));
    let hashed = (7..=40).contains(&hash.len())
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let openshift_os = |o: &str| {
        [
            "Red Hat Enterprise Linux CoreOS",
            "RHCOS",
            "CentOS Stream CoreOS",
            "Fedora CoreOS",
        ]
        .iter()
        .any(|name| o.contains(name))
    };
    let microk8s = base.rsplit_once('-').is_some_and(|(core, build)| {
        plain(core) && number(build).is_some_and(|(_, r)| r.is_empty())
    });
    if v.contains("-eks-") {
        "eks"
    } else if v.contains("-gke.") {
        "gke"
    } else if v.contains("+k3s") {
        "k3s"
    } else if v.contains("+rke2") {
        "rke2"
    } else if v.contains("+k0s") {
        "k0s"
    } else if hashed && plain(base) && os(openshift_os) {
        "openshift"
    } else if hashed && microk8s {
        "microk8s"
    } else if !plain(v) {
        "other"
    } else if cloud("kind") {
        "kind"
    } else if os(|o| o.starts_with("Buildroot")) {
        "minikube"
    } else if os(|o| o == "Docker Desktop") {
        "docker-desktop"
    } else if os(|o| o.starts_with("Talos")) {
        "talos"
    } else if cloud("azure") || os(|o| o.starts_with("CBL-Mariner") || o.contains("Azure Linux")) {
        "aks"
    } else {
        "vanilla"
    }
}

/// Whether `v` is an upstream version: `vX.Y.Z` (the `v` optional), then nothing or
/// `-alpha.N`, `-beta.N` or `-rc.N`.
fn plain(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let (core, pre) = v.split_once('-').unwrap_or((v, ""));
    let mut parts = core.split('.');
    let numeric = |p: &str| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit());
    let core_ok = (0..3).all(|_| parts.next().is_some_and(numeric)) && parts.next().is_none();
    let pre_ok = pre.is_empty()
        || ["alpha.", "beta.", "rc."]
            .iter()
            .any(|tag| pre.strip_prefix(tag).is_some_and(numeric));
    core_ok && pre_ok
}
