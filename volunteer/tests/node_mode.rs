//! Node mode: a `--once` timer on every node, each with its own `--machine-id-file`, reports
//! the cluster once; and a volunteer authenticating with a node's client certificate.

mod common;

use std::time::Duration;

use common::collector::Collector;
use common::kubeapi::KubeApi;
use common::{kube_flags, run, volunteer, Outcome, TempDir, TOKEN};
use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
use serde_json::Value;
use spartakus_volunteer::ids;

const LIMIT: Duration = Duration::from_secs(20);

/// The UID of service default/kubernetes in the fixtures.
const SERVICE_UID: &str = "3f6b1d2e-9a4c-4e7b-8d15-6c2a0f9e7b41";

/// The machine id of fixture node `i`.
fn machine(i: usize) -> String {
    format!("ec2000000000000000000{i}")
}

/// One `--once` run per machine id, each as its node's timer would start it.
fn timers(api: &KubeApi, collector: &Collector, machines: &[String]) -> Vec<Outcome> {
    machines
        .iter()
        .map(|m| {
            let dir = TempDir::new();
            let id_file = dir.file("machine-id", &format!("{m}\n"));
            let mut args = kube_flags(api, &dir);
            args.extend(["--once".into(), "--collector".into(), collector.url.clone()]);
            args.extend(["--machine-id-file".into(), id_file.display().to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&mut volunteer(&args), LIMIT);
            out.expect_code(0).expect_no_token();
            assert!(
                !out.stderr.contains("ec2000000"),
                "a machine id reached the log\n{}",
                out.streams()
            );
            out
        })
        .collect()
}

/// The positions of the runs that sent a report.
fn reporters(outcomes: &[Outcome]) -> Vec<usize> {
    (0..outcomes.len())
        .filter(|&i| outcomes[i].stderr.contains("accepted"))
        .collect()
}

fn all_machines() -> Vec<String> {
    (0..7).map(machine).collect()
}

#[test]
fn a_timer_on_every_node_sends_one_report_and_a_not_ready_winner_hands_over() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let outcomes = timers(&api, &collector, &all_machines());
    let chosen = reporters(&outcomes);
    assert_eq!(chosen.len(), 1, "{:#?}", outcomes);
    assert_eq!(collector.posted().len(), 1);
    for (i, out) in outcomes.iter().enumerate() {
        if i != chosen[0] {
            out.expect_stderr("no report from this node: another Ready node reports");
        }
    }

    api.state().nodes[chosen[0]]["status"]["conditions"] =
        serde_json::json!([{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]);
    let outcomes = timers(&api, &collector, &all_machines());
    let next = reporters(&outcomes);
    assert_eq!(next.len(), 1, "{:#?}", outcomes);
    assert_ne!(next, chosen, "another node takes over");
    outcomes[chosen[0]].expect_stderr("this node is not Ready");
    assert_eq!(collector.posted().len(), 2);
}

#[test]
fn nodes_that_share_a_machine_id_never_report_and_the_others_still_do() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    // Two nodes from one golden image, for every choice of the pair: whichever node would
    // have been chosen, the pair stands aside and exactly one other node reports.
    for twin in 0..7 {
        let before = collector.posted().len();
        api.state().nodes[(twin + 1) % 7]["status"]["nodeInfo"]["machineID"] =
            Value::String(machine(twin));
        let mut machines = all_machines();
        machines[(twin + 1) % 7] = machine(twin);
        let outcomes = timers(&api, &collector, &machines);
        for i in [twin, (twin + 1) % 7] {
            outcomes[i].expect_stderr("2 nodes share this machine's --machine-id-file");
        }
        assert_eq!(reporters(&outcomes).len(), 1, "{:#?}", outcomes);
        assert_eq!(collector.posted().len(), before + 1);
        api.state().nodes[(twin + 1) % 7]["status"]["nodeInfo"]["machineID"] =
            Value::String(machine((twin + 1) % 7));
    }
}

#[test]
fn a_machine_that_is_no_node_of_the_cluster_does_not_report() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let outcomes = timers(&api, &collector, &["0123456789abcdef".to_string()]);
    outcomes[0].expect_stderr("no node of the cluster has this machine's --machine-id-file");
    assert!(collector.posted().is_empty());
}

/// A node's client certificate (CN=system:node:NAME, O=system:nodes) signed by `issuer`, and
/// its key, in one PEM file as the kubelet keeps them.
fn node_credentials(issuer: &Issuer<'static, KeyPair>, dir: &TempDir) -> String {
    let key = KeyPair::generate().expect("client key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "system:node:ip-10-0-1-23.ec2.internal");
    name.push(DnType::OrganizationName, "system:nodes");
    params.distinguished_name = name;
    let cert = params.signed_by(&key, issuer).expect("sign client cert");
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    dir.file("kubelet-client-current.pem", &pem)
        .display()
        .to_string()
}

fn cert_run(api: &KubeApi, dir: &TempDir, cert: &str, extra: &[&str]) -> Outcome {
    let ca = dir.file("ca.crt", &api.ca_pem).display().to_string();
    let mut args = vec!["--dry-run", "--kube-api", &api.url, "--ca-file", &ca];
    args.extend(["--client-cert", cert]);
    args.extend(extra);
    run(&mut volunteer(&args), LIMIT)
}

#[test]
fn a_node_client_certificate_authenticates_and_the_kubernetes_service_names_the_cluster() {
    let (api, client_ca) = KubeApi::start_requiring_client_certs();
    // As the Node authorizer answers a kubelet.
    api.state().forbidden = vec!["/api/v1/namespaces/kube-system".into()];
    let dir = TempDir::new();
    let cert = node_credentials(&client_ca, &dir);
    let out = cert_run(
        &api,
        &dir,
        &cert,
        &["--cluster-id-from", "kubernetes-service"],
    );
    out.expect_code(0);
    let report = out.json();
    assert_eq!(
        report["payload"]["clusterID"],
        ids::cluster_id(SERVICE_UID, None).as_str()
    );
    assert_eq!(report["payload"]["nodes"].as_array().map(Vec::len), Some(7));
    assert!(!out.stdout.contains(SERVICE_UID));

    // Without a source node credentials can read, it is refused at startup.
    let out = cert_run(&api, &dir, &cert, &[]);
    out.expect_code(2).expect_stderr(
        "--client-cert: node credentials may not read namespace kube-system: give --cluster-id",
    );
}

#[test]
fn a_client_certificate_the_api_server_does_not_trust_is_refused_in_one_line() {
    let (api, _) = KubeApi::start_requiring_client_certs();
    let dir = TempDir::new();
    let (_, stranger) = common::kubeapi::new_ca();
    let cert = node_credentials(&stranger, &dir);
    let out = cert_run(&api, &dir, &cert, &["--cluster-id", "c"]);
    out.expect_code(1).expect_stderr("--client-cert");
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{}", out.streams());
    assert!(errors[0].contains("tls"), "{}", out.streams());
    assert_eq!(api.count("/api/v1/nodes"), 0);
}
