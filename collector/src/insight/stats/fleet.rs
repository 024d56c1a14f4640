//! Test data: the `Figures` of a realistic fleet (about 2,100 clusters over
//! 30 days, with versions moving on), for page.rs's tests and the browser
//! test (collector/tests/page.rs). Deterministic; no logic of the product.

use super::figures::{Breakdown, Day, Figures, Series, Share};

fn share(value: &str, clusters: i64, nodes: i64) -> Share {
    Share {
        value: value.to_string(),
        clusters,
        nodes,
    }
}

fn breakdown(
    key: &'static str,
    title: &'static str,
    rows: &[(&str, i64, i64)],
    other: (i64, i64, u32),
) -> Breakdown {
    Breakdown {
        key,
        title,
        rows: rows.iter().map(|(v, c, n)| share(v, *c, *n)).collect(),
        other: share("other", other.0, other.1),
        other_values: other.2,
    }
}

/// 30 days to 2026-12-01: a growing fleet with a weekend dip; v1.31
/// arriving, v1.27 leaving.
pub fn fleet() -> Figures {
    let days = 30;
    let mut daily = Vec::new();
    let versions = ["v1.27", "v1.28", "v1.29", "v1.30", "v1.31"];
    let mut adoption: Vec<Series> = versions
        .iter()
        .chain(["other"].iter())
        .map(|v| Series {
            value: v.to_string(),
            clusters: Vec::new(),
        })
        .collect();
    for i in 0..days {
        let day = if i < 29 {
            format!("2026-11-{:02}", i + 2)
        } else {
            "2026-12-01".to_string()
        };
        // 2026-11-02 is a Monday.
        let weekend = matches!(i % 7, 5 | 6);
        let clusters = 1780 + i * 11 - if weekend { 120 } else { 0 } + (i * 37 % 23);
        let nodes = clusters * 23 + (i * 311 % 700);
        let t = i as f64 / (days - 1) as f64;
        let weights = [
            0.14 - 0.08 * t,
            0.22 - 0.06 * t,
            0.31 - 0.04 * t,
            0.28 + 0.05 * t,
            0.01 + 0.13 * t,
            0.04,
        ];
        let sum: f64 = weights.iter().sum();
        for (s, w) in adoption.iter_mut().zip(weights) {
            s.clusters.push((clusters as f64 * w / sum).round() as i64);
        }
        daily.push(Day {
            day,
            clusters: Some(clusters),
            nodes: Some(nodes),
        });
    }
    let clusters = 2104;
    let nodes = 48_931;
    Figures {
        days: days as u32,
        computed_at: "2026-12-01T09:30:00Z".to_string(),
        min_clusters: 5,
        min_days: 2,
        clusters,
        nodes,
        daily,
        adoption,
        breakdowns: vec![
            breakdown(
                "minor_version",
                "Kubernetes minor version",
                &[
                    ("v1.29", 607, 15_020),
                    ("v1.30", 593, 13_877),
                    ("v1.28", 339, 8_410),
                    ("v1.31", 285, 5_901),
                    ("v1.27", 128, 3_880),
                ],
                (152, 1_843, 9),
            ),
            breakdown(
                "distribution",
                "Distribution",
                &[
                    ("EKS", 612, 17_930),
                    ("GKE", 401, 10_212),
                    ("AKS", 322, 7_310),
                    ("k3s", 287, 1_902),
                    ("kubeadm", 204, 5_320),
                    ("OpenShift", 98, 3_904),
                    ("RKE2", 71, 1_220),
                    ("(unknown)", 64, 790),
                ],
                (45, 343, 11),
            ),
            breakdown(
                "cloud_provider",
                "Cloud provider",
                &[
                    ("aws", 701, 19_340),
                    ("gcp", 433, 10_850),
                    ("(unknown)", 402, 6_770),
                    ("azure", 351, 7_720),
                    ("hetzner", 88, 1_310),
                    ("digitalocean", 61, 702),
                    ("openstack", 33, 1_610),
                ],
                (35, 629, 6),
            ),
            breakdown(
                "os_image",
                "OS image",
                &[
                    ("Amazon Linux 2023.6.20241121", 388, 11_020),
                    ("Ubuntu 22.04.5 LTS", 377, 8_870),
                    ("Container-Optimized OS from Google", 356, 9_004),
                    ("Bottlerocket OS 1.26.2 (aws-k8s-1.30)", 204, 6_112),
                    ("Ubuntu 24.04.1 LTS", 198, 3_300),
                    (
                        "Red Hat Enterprise Linux CoreOS 417.94.202410211619-0 (Plow)",
                        97,
                        3_910,
                    ),
                    ("Debian GNU/Linux 12 (bookworm)", 93, 1_460),
                    (
                        "Flatcar Container Linux by Kinvolk 3975.2.2 (Oklo)",
                        54,
                        1_330,
                    ),
                    ("Talos (v1.8.3)", 41, 610),
                ],
                (129, 3_315, 38),
            ),
            breakdown(
                "container_runtime",
                "Container runtime",
                &[
                    ("containerd://1.7.22", 1_033, 27_810),
                    ("containerd://1.6.36", 402, 9_310),
                    ("containerd://2.0.0", 211, 3_904),
                    ("cri-o://1.30.6", 133, 4_020),
                    ("docker://24.0.7", 58, 610),
                ],
                (267, 3_277, 24),
            ),
            breakdown(
                "architecture",
                "Architecture",
                &[("amd64", 1_877, 41_210), ("arm64", 402, 7_610)],
                (6, 111, 2),
            ),
            breakdown(
                "accelerators",
                "Accelerators",
                &[
                    ("nvidia.com/gpu", 187, 2_930),
                    ("amd.com/gpu", 22, 310),
                    ("aws.amazon.com/neuron", 9, 96),
                ],
                (0, 0, 0),
            ),
            breakdown(
                "volunteer_version",
                "Volunteer version",
                &[
                    ("0.2.1", 1_201, 28_104),
                    ("0.2.0", 611, 13_950),
                    ("0.1.0", 253, 6_331),
                ],
                (39, 546, 3),
            ),
        ],
    }
}
