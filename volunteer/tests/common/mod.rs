//! Shared helpers for the integration tests: fixtures, temp dirs, running the real binary with
//! a deadline, and assertions that print expected against got plus the process's stderr.
//!
//! The servers the binary talks to are in `kubeapi.rs` (HTTPS Kubernetes API) and
//! `collector.rs` (plain HTTP collector). Not every test binary uses every helper.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod collector;
pub mod kubeapi;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use kubeapi::KubeApi;

/// The bearer token the test API server accepts. It must never show up in the volunteer's output.
pub const TOKEN: &str = "tok-SECRET-7f3a9c";

/// Recorded API answers (`tests/fixtures/`, inside the repository: tests read nothing outside it).
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

pub fn fixture(name: &str) -> String {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "spartakus-volunteer-test-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// Writes `name` with `contents` and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    pub fn str(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The volunteer binary with a clean environment (no proxies, no SPARTAKUS_* from the
/// developer's shell) and a fast retry base delay so backoff tests take milliseconds.
pub fn volunteer(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spartakus-volunteer"));
    cmd.args(args)
        .env_clear()
        .env("SPARTAKUS_RETRY_BASE_DELAY", "20ms")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Flags that point the volunteer at `api`, with the token and CA written into `dir`.
pub fn kube_flags(api: &KubeApi, dir: &TempDir) -> Vec<String> {
    let token = dir.file("token", &format!("{TOKEN}\n"));
    let ca = dir.file("ca.crt", &api.ca_pem);
    vec![
        "--kube-api".into(),
        api.url.clone(),
        "--token-file".into(),
        token.display().to_string(),
        "--ca-file".into(),
        ca.display().to_string(),
    ]
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    /// Panics unless the exit code is `code`, showing both streams.
    pub fn expect_code(&self, code: i32) -> &Outcome {
        assert_eq!(
            self.code,
            Some(code),
            "exit code: expected {code}, got {:?}\n{}",
            self.code,
            self.streams()
        );
        self
    }

    /// Panics unless stderr contains `text`.
    pub fn expect_stderr(&self, text: &str) -> &Outcome {
        assert!(
            self.stderr.contains(text),
            "stderr: expected to contain {text:?}\n{}",
            self.streams()
        );
        self
    }

    /// Panics if the bearer token appears anywhere in the output.
    pub fn expect_no_token(&self) -> &Outcome {
        assert!(
            !self.stderr.contains(TOKEN) && !self.stdout.contains(TOKEN),
            "the token leaked\n{}",
            self.streams()
        );
        self
    }

    /// stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.streams()))
    }

    pub fn streams(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to its end, killing it (and failing the test) after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Outcome {
    let child = cmd.spawn().expect("start spartakus-volunteer");
    finish(child, limit)
}

/// Waits for a started child, killing it (and failing the test) after `limit`.
pub fn finish(mut child: Child, limit: Duration) -> Outcome {
    let started = Instant::now();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("reap killed child");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let outcome = Outcome {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    };
    assert!(
        !timed_out,
        "still running after {limit:?}; killed\n{}",
        outcome.streams()
    );
    outcome
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Polls `condition` every 10 ms for up to `limit`; returns whether it came true.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// A request head as the test servers read it: method, target, headers.
pub type Head = (String, String, Vec<(String, String)>);

/// Reads a request head, trimming each header's name and value.
pub fn read_head(reader: &mut impl std::io::BufRead) -> std::io::Result<Head> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((method, target, headers))
}
