//! TLS against CAs made here: HTTPS serving (--tls-cert, --tls-key), and
//! the connection to PostgreSQL (--db-ca-file, sslmode=require).

mod common;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A CA, and a certificate for 127.0.0.1 signed by it, as PEM files.
struct Pki {
    dir: PathBuf,
    ca: String,
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "spartakus-tls-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("server certificate");
        std::fs::write(dir.join("tls.crt"), cert.pem()).expect("write certificate");
        std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("write key");
        Pki { dir, ca: ca.pem() }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn agent(&self) -> ureq::Agent {
        let certs: Vec<_> = ureq::tls::parse_pem(self.ca.as_bytes())
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        config.into()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn reports_arrive_over_https_verified_against_the_servers_ca() {
    let db = TestDb::new();
    let pki = Pki::new();
    let c = Collector::start(
        &db.url,
        &[
            "--tls-cert",
            &pki.path("tls.crt"),
            "--tls-key",
            &pki.path("tls.key"),
        ],
    );
    let agent = pki.agent();
    let base = format!("https://{}", c.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent
        .get(format!("{base}/readyz"))
        .call()
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(
            Instant::now() < deadline,
            "never ready over https:\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..2 {
        let reply = agent
            .post(format!("{base}/api/v1/stats"))
            .header("Content-Type", "application/json")
            .send(SEED)
            .expect("https POST");
        assert_eq!(reply.status().as_u16(), 204);
    }
    assert_eq!(db.count(), 2);
    // Plain HTTP on the HTTPS port gets no HTTP answer, and harms nothing.
    let mut plain = std::net::TcpStream::connect(c.addr).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out);
    assert!(
        !out.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served: {:?}",
        String::from_utf8_lossy(&out)
    );
    let health = agent
        .get(format!("{base}/healthz"))
        .call()
        .expect("https GET");
    assert_eq!(health.status().as_u16(), 200);
    assert!(c.log().contains("serving https"));
}

/// Whether a client trusting only `pki`'s CA, on a connection of its own,
/// gets 200 from /healthz.
fn trusted_by(pki: &Pki, c: &Collector) -> bool {
    let reply = pki
        .agent()
        .get(format!("https://{}/healthz", c.addr))
        .call();
    reply.is_ok_and(|r| r.status().as_u16() == 200)
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let db = TestDb::new();
    let (old, new) = (Pki::new(), Pki::new());
    // The files the collector serves, as a mounted Secret would be.
    let serving = old.dir.join("serving");
    std::fs::create_dir_all(&serving).expect("serving dir");
    let (cert, key) = (serving.join("tls.crt"), serving.join("tls.key"));
    // Replaced whole, by rename, as Kubernetes updates a Secret's files.
    let copy = |from: &Pki, name: &str, to: &std::path::Path| {
        let part = to.with_extension("part");
        std::fs::copy(from.dir.join(name), &part).expect("copy a PEM file");
        std::fs::rename(&part, to).expect("rename a PEM file");
    };
    copy(&old, "tls.crt", &cert);
    copy(&old, "tls.key", &key);
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let c = Collector::start(&db.url, &["--tls-cert", &cert_arg, "--tls-key", &key_arg]);
    assert!(
        trusted_by(&old, &c),
        "serves the first certificate:\n{}",
        c.log()
    );
    let eventually = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done() {
            assert!(Instant::now() < deadline, "{what}:\n{}", c.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Half a renewal, the certificate before its key, is not served.
    copy(&new, "tls.crt", &cert);
    eventually("the mismatch is noticed", &|| {
        let _ = trusted_by(&old, &c);
        c.log().contains("not reloaded, keeping the current one")
    });
    assert!(trusted_by(&old, &c), "the old certificate is kept");
    // The whole renewal is.
    copy(&new, "tls.key", &key);
    eventually("the renewed certificate is served", &|| {
        trusted_by(&new, &c)
    });
    assert!(!trusted_by(&old, &c), "the old certificate is still served");
    assert_eq!(c.log().matches("not reloaded").count(), 1, "{}", c.log());
    assert!(c.log().contains("HTTPS certificate reloaded"));
}

#[test]
fn bad_tls_flags_exit_2_with_one_line_naming_them() {
    let pki = Pki::new();
    std::fs::write(pki.dir.join("junk.pem"), "not a certificate\n").expect("write junk");
    let (cert, key, junk) = (
        pki.path("tls.crt"),
        pki.path("tls.key"),
        pki.path("junk.pem"),
    );
    let missing = pki.path("missing.key");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--tls-cert", &cert],
            "--tls-key: required with --tls-cert",
        ),
        (
            vec!["--tls-key", &key],
            "--tls-cert: required with --tls-key",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &missing],
            "--tls-key: cannot read",
        ),
        (
            vec!["--tls-cert", &junk, "--tls-key", &key],
            "certificate: no PEM certificate",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &junk],
            "private key: no PEM private key",
        ),
        (
            vec!["--tls-cert", &key, "--tls-key", &cert],
            "certificate: no PEM certificate",
        ),
    ];
    for (args, want) in cases {
        let base = [
            "--listen",
            "127.0.0.1:0",
            "--db-url",
            "postgres://u@127.0.0.1:1/d",
        ];
        expect_usage_error(&[&base[..], &args[..]].concat(), want);
    }
}

/// The collector role's password, which must never be printed.
const PASSWORD: &str = "S3cret-pw";

/// PostgreSQL with TLS on, where the role the collector uses may only log in
/// over TLS with a SCRAM password; the test's own `postgres` role still
/// connects plainly.
fn tls_postgres(pki: &Pki) -> Cluster {
    let pg = Cluster::new();
    let read = |name: &str| std::fs::read(pki.dir.join(name)).expect("read PKI file");
    let cert = pg.write("server.crt", &read("tls.crt"));
    let key = pg.write("server.key", &read("tls.key"));
    pg.write(
        "data/pg_hba.conf",
        b"local all all trust\n\
          hostssl all spartakus 127.0.0.1/32 scram-sha-256\n\
          hostnossl all spartakus 127.0.0.1/32 reject\n\
          host all postgres 127.0.0.1/32 trust\n",
    );
    pg.start_with(&format!(
        "-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"
    ));
    pg.client()
        .batch_execute(&format!(
            "CREATE ROLE spartakus LOGIN SUPERUSER PASSWORD '{PASSWORD}'"
        ))
        .expect("create the collector's role");
    pg
}

#[test]
fn postgres_over_tls_is_verified_and_required() {
    let pki = Pki::new();
    let ca = pki.path("ca.crt");
    std::fs::write(&ca, &pki.ca).expect("write CA");
    let pg = tls_postgres(&pki);
    let url = format!(
        "postgres://spartakus:{PASSWORD}@127.0.0.1:{}/postgres",
        pg.port
    );

    let c = Collector::start(&url, &["--db-ca-file", &ca]);
    c.wait_ready(Duration::from_secs(20));
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204);
    assert!(
        c.log().contains("PostgreSQL over verified TLS"),
        "{}",
        c.log()
    );
    let encrypted: bool = pg
        .client()
        .query_one(
            "SELECT count(*) > 0 AND bool_and(s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'spartakus'",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted, "the collector's connection is not TLS");
    drop(c);

    // The subcommands take the same flags.
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_spartakus-collector"))
            .args(args)
            .args(["--db-url", &url, "--db-ca-file", &ca])
            .output()
            .expect("run a subcommand");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{args:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let summary: serde_json::Value =
        serde_json::from_str(&run(&["summary", "--json"])).expect("summary JSON");
    assert_eq!(summary["clusters"], 1, "{summary}");
    run(&["prune", "--older-than", "1d"]);

    // Never plain, never unverified: each of these is refused, and says why.
    let other = Pki::new();
    let wrong_ca = other.path("ca.crt");
    std::fs::write(&wrong_ca, &other.ca).expect("write the other CA");
    // Connects to 127.0.0.1 but must find "localhost" in the certificate.
    let by_name = format!(
        "postgres://spartakus:{PASSWORD}@localhost:{}/postgres?hostaddr=127.0.0.1",
        pg.port
    );
    let required = format!("{url}?sslmode=require");
    // A server without TLS: the CA file must not fall back to plain.
    let plain = TestDb::new();
    let prefer = format!("{}?sslmode=prefer", plain.url);
    let cases: [(&str, &[&str], &str); 5] = [
        (&url, &[], "no encryption"),
        (&required, &[], "invalid peer certificate: UnknownIssuer"),
        (
            &url,
            &["--db-ca-file", &wrong_ca],
            "invalid peer certificate",
        ),
        (&by_name, &["--db-ca-file", &ca], "not valid for name"),
        (
            &prefer,
            &["--db-ca-file", &ca],
            "server does not support TLS",
        ),
    ];
    for (url, flags, why) in cases {
        let c = Collector::start(url, flags);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.log().contains(why) {
            assert!(
                Instant::now() < deadline,
                "{url} {flags:?}: no {why:?} in\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(get(c.addr, "/readyz").status, 503, "{url} {flags:?}");
        assert_eq!(c.post("/api/v1/stats", SEED).status, 503);
        assert!(!c.log().contains(PASSWORD), "{}", c.log());
    }
    assert_eq!(plain.count(), 0);
    assert_eq!(
        pg.client()
            .query_one("SELECT count(*) FROM report_log", &[])
            .expect("count")
            .get::<_, i64>(0),
        1
    );
}

#[test]
fn bad_db_flags_exit_2_with_one_line_naming_them() {
    let pki = Pki::new();
    let url = "postgres://u@127.0.0.1:1/d";
    let (missing, key, cert) = (
        pki.path("missing.crt"),
        pki.path("tls.key"),
        pki.path("tls.crt"),
    );
    // A want ending in "\n" is the whole rest of the line: no more is said.
    let cases: &[(String, Option<&str>, &str)] = &[
        (url.into(), Some(&missing), "--db-ca-file: "),
        (url.into(), Some(&key), "holds no PEM certificate"),
        (
            format!("{url}?sslmode=disable"),
            Some(&cert),
            "--db-ca-file: conflicts with sslmode=disable",
        ),
        (
            format!("{url}?sslmode=verify-full"),
            None,
            "--db-url: sslmode must be disable, prefer or require",
        ),
        (
            format!("{url}?channel_binding=require"),
            Some(&cert),
            "--db-url: channel_binding=require is not supported",
        ),
        (
            format!("{url}?sslnegotiation=direct"),
            None,
            "--db-url: sslnegotiation=direct needs TLS",
        ),
        (
            "postgres://u@%2Ftmp/d".into(),
            Some(&cert),
            "--db-url: TLS needs a host name",
        ),
        (
            "postgres:///d?hostaddr=127.0.0.1".into(),
            Some(&cert),
            "--db-url: TLS needs a host name",
        ),
        (
            format!("{url}?sslrootcert=/ca.pem"),
            None,
            "--db-url: sslrootcert is not read; give the CA bundle with --db-ca-file\n",
        ),
        // The parser would name "horse" as an unknown option: a piece of
        // the password.
        (
            "host=h password=correct horse=battery".into(),
            None,
            "--db-url: must be a PostgreSQL URL like postgres://user@host/db\n",
        ),
    ];
    for (db_url, ca, want) in cases {
        let mut args = vec!["--db-url", db_url.as_str()];
        args.extend(ca.iter().flat_map(|ca| ["--db-ca-file", ca]));
        expect_usage_error(&args, want);
        expect_usage_error(&[&["summary"], &args[..]].concat(), want);
        expect_usage_error(
            &[&["prune", "--older-than", "1d"], &args[..]].concat(),
            want,
        );
    }
    // A URL given where no flag takes it is not echoed either.
    expect_usage_error(
        &["--db-url", url, "postgres://u:S3CRET@h/d"],
        "unexpected argument (not shown: it may hold a password); see --help\n",
    );
}
