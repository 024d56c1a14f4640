//! Test harness: a fresh database per test on the server in DATABASE_URL,
//! private PostgreSQL clusters for tests that stop the database, the real
//! collector binary on a free port, and a raw HTTP/1.1 client. Everything
//! cleans up on drop.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const SEED: &str = r#"{"metadata": {"timestamp": "1437174715"},
 "payload": {"clusterID": "612e0f99-1912-4647-831d-ba4c3d918b66",
   "nodes": [{"status": {"capacity": {"cpu": "1", "memory": "505020Ki", "pods": "40"},
     "nodeInfo": {"osImage": "CoreOS 738.1.0", "kernelVersion": "4.0.7-coreos-r2",
       "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.6.2"}}}]}}"#;

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a test PostgreSQL; ./test sets it")
}

/// `url` with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A database of its own for one test, dropped afterwards.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "spartakus_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&admin_url(), postgres::NoTls)
            .expect("connect to DATABASE_URL");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        TestDb {
            url: with_database(&admin_url(), &name),
            name,
        }
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to test database")
    }

    /// Number of stored reports (0 when the table does not exist yet).
    pub fn count(&self) -> i64 {
        let mut c = self.client();
        match c.query_one("SELECT count(*) FROM report_log", &[]) {
            Ok(row) => row.get(0),
            Err(_) => 0,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A PostgreSQL cluster of one test's own, which it may stop and start.
pub struct Cluster {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PG_BIN unset and no /usr/lib/postgresql; run ./test")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("no PostgreSQL server binaries; run ./test")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Cluster {
    pub fn new() -> Cluster {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spartakus-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let c = Cluster {
            dir,
            port: free_port(),
            bin: pg_bin(),
        };
        if is_root() {
            c.sh(Command::new("chown").arg("postgres:").arg(&c.dir));
        }
        c.pg(&[
            "initdb",
            "-D",
            "data",
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ]);
        c
    }

    fn sh(&self, cmd: &mut Command) {
        let out = cmd.output().expect("run a PostgreSQL command");
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg(&self, args: &[&str]) {
        let tool = self.bin.join(args[0]);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        };
        self.sh(cmd.args(&args[1..]).current_dir(&self.dir));
    }

    pub fn start(&self) {
        self.start_with("");
    }

    /// Starts the server with extra `-c name=value` settings.
    pub fn start_with(&self, settings: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {settings}",
            self.port,
            self.dir.display()
        );
        self.pg(&[
            "pg_ctl",
            "-D",
            "data",
            "-l",
            "server.log",
            "-w",
            "-o",
            &opts,
            "start",
        ]);
    }

    /// Writes `name` (relative to the cluster's directory) as the server's
    /// own private file, and returns its path.
    pub fn write(&self, name: &str, contents: &[u8]) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write a cluster file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod a cluster file");
        if is_root() {
            self.sh(Command::new("chown").arg("postgres:").arg(&path));
        }
        path.display().to_string()
    }

    pub fn stop(&self) {
        self.pg(&["pg_ctl", "-D", "data", "-m", "fast", "-w", "stop"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect to the cluster")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let tool = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        };
        let _ = cmd
            .args(["-D", "data", "-m", "immediate", "stop"])
            .current_dir(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The collector binary. The volunteer's end-to-end test shares this file,
/// and finds it beside its own binary: one workspace, one target dir.
fn collector_bin() -> PathBuf {
    let own = option_env!("CARGO_BIN_EXE_spartakus-collector");
    let volunteer = option_env!("CARGO_BIN_EXE_spartakus-volunteer");
    let path = match (own, volunteer) {
        (Some(own), _) => return PathBuf::from(own),
        (None, Some(volunteer)) => PathBuf::from(volunteer).with_file_name("spartakus-collector"),
        (None, None) => panic!("this harness runs only under cargo test"),
    };
    assert!(
        path.exists(),
        "{} is missing: run ./test, which builds the workspace first",
        path.display()
    );
    path
}

/// The real collector binary, serving on a free port.
pub struct Collector {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl Collector {
    pub fn start(db_url: &str, extra: &[&str]) -> Collector {
        let mut child = Command::new(collector_bin())
            .args(["--listen", "127.0.0.1:0", "--db-url", db_url])
            .args(extra)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start spartakus-collector");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr pipe");
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    // The end of a text line, or of a JSON line's message.
                    let addr = rest.split(['"', ' ']).next().unwrap_or_default();
                    let _ = tx.send(addr.trim().to_string());
                }
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().expect("listen address"),
            Err(_) => panic!(
                "collector did not start; stderr:\n{}",
                stderr.lock().expect("log")
            ),
        };
        Collector {
            child,
            addr,
            stderr,
        }
    }

    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until /readyz answers 200.
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if get(self.addr, "/readyz").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("collector never became ready; stderr:\n{}", self.log());
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{signal} failed");
    }

    /// Waits for exit; None if it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- collector stderr ---\n{}", self.log());
        }
    }
}

/// Posts reports with unique reportIDs (`<prefix>-<thread>-<n>`) from 8
/// threads, up to `per_thread` each, until the collector stops answering;
/// runs `meanwhile` on this thread. Returns the reportIDs answered 204.
pub fn acked_under_load(
    c: &Collector,
    prefix: &str,
    per_thread: usize,
    meanwhile: impl FnOnce(),
) -> Vec<String> {
    let acked = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..8 {
            let acked = &acked;
            s.spawn(move || {
                for i in 0..per_thread {
                    let id = format!("{prefix}-{t}-{i}");
                    let body = format!(r#"{{"metadata": {{"reportID": "{id}"}}, "payload": {{"clusterID": "c"}}}}"#);
                    let head = format!(
                        "POST /api/v1/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let Ok(mut s) = TcpStream::connect(c.addr) else { return };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
                    if s.write_all(format!("{head}{body}").as_bytes()).is_err() {
                        return;
                    }
                    let mut out = Vec::new();
                    let _ = s.read_to_end(&mut out);
                    if out.starts_with(b"HTTP/1.1 204") {
                        acked.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                    } else if out.is_empty() {
                        return; // the collector is gone
                    }
                }
            });
        }
        meanwhile();
    });
    acked.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Runs the collector with `args` and no DATABASE_URL, and requires a
/// usage error: exit 2 and one line on stderr containing `want`.
pub fn expect_usage_error(args: &[&str], want: &str) {
    let out = Command::new(collector_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SPARTAKUS_DB_CA_FILE")
        .output()
        .expect("run collector");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: want {want:?} in {err:?}");
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `message` of a JSON error answer.
    pub fn message(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {:?}", self.body));
        assert_eq!(
            v["error"]["code"], self.status,
            "error code in {:?}",
            self.body
        );
        v["error"]["message"].as_str().expect("message").to_string()
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"")
}

/// One HTTP/1.1 request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw_request(addr, &raw)
}

/// Sends `raw` bytes as they are and parses the answer.
pub fn raw_request(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to collector");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may answer and close before reading everything we send.
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_reply(&out)
}

pub fn parse_reply(out: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(out);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Runs the collector with `args` and `input` on stdin (fed from a thread,
/// so a large input cannot deadlock against its output); never reads
/// DATABASE_URL or SPARTAKUS_RECEIVED_FROM from the test's environment.
pub fn run_collector(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(collector_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SPARTAKUS_RECEIVED_FROM")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spartakus-collector");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child
        .wait_with_output()
        .expect("wait for spartakus-collector");
    writer.join().expect("stdin writer");
    out
}

/// `import` of `input` into `db`, which must succeed; its stdout.
pub fn import_lines(db: &TestDb, input: &[u8], extra: &[&str]) -> String {
    let mut args = vec!["import", "--db-url", &db.url];
    args.extend_from_slice(extra);
    let out = run_collector(&args, input);
    assert!(
        out.status.success(),
        "import: exit {:?}, stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Prometheus's own linter on an exposition: names, types, HELP, units.
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus) is needed by this test");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{text}"
    );
}
