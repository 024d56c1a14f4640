//! The `/stats` page as a person sees it: rendered by a real headless
//! chromium (Debian's `chromium` on PATH, or $CHROMIUM), screenshotted at
//! 1280 px and 375 px into target/screenshots/, its DOM checked for the
//! figures and the text alternatives, and held to loading nothing.
//!
//! `the_collectors_stats_page_shows_its_fleet_in_a_browser` visits a real
//! collector's `/stats`, filled with a fleet from bench/fleet (the
//! benchmarks' generator) through `import`, and checks the page against the
//! same figures as JSON. The other tests render `page::render` on a
//! realistic fleet (src/insight/stats/fleet.rs) or on hostile values,
//! served from a few lines of std::net with the real
//! Content-Security-Policy header.
//!
//! How "loads nothing" is checked, three ways, each of which catches what
//! the others might not:
//! 1. chromium's proxy is a trap (`--proxy-server`): a listener that
//!    records the first line of every connection and answers 502. Every
//!    request to anything but loopback goes through it, IP literals and
//!    HTTPS (as CONNECT) included, CSP or not; it must see none. Chromium's
//!    own background traffic is switched off by flags (`QUIET`), but for
//!    the GCM check-in (`BROWSER_OWN`), which the trap lets by.
//! 2. The console (`--enable-logging=stderr`) must report no CSP violation:
//!    the page tried nothing the policy forbids, and the browser accepted
//!    the style's hash.
//! 3. The network log (`--v=1`, NotifyBeforeURLRequest) must list the
//!    page's URL (so the log is being read) and no other URL.
//!
//! `the_check_catches_a_page_that_loads_things` proves 1 and 2 on a page
//! that does load things.

// The page's files as modules of this test, as they sit in stats.rs (their
// `super::`); their unit tests run here too.
#[allow(dead_code)] // the test uses part of them
#[path = "../src/insight/stats/chart.rs"]
mod chart;
#[path = "../src/insight/stats/figures.rs"]
mod figures;
#[path = "../src/insight/stats/fleet.rs"]
mod fleet;
#[path = "../src/insight/stats/page.rs"]
mod page;

mod common;

use common::{get, import_lines, Collector, TestDb};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Chromium's own calls home, off: network time, search-engine preconnects,
/// AI-mode eligibility, and Google account checks (sent to a closed
/// loopback port, which the trap does not see and the log check skips).
const QUIET: &[&str] = &[
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    "--metrics-recording-only",
    "--disable-field-trial-config",
    "--disable-features=NetworkTimeServiceQuerying,AimEligibilityService,AimServerEligibilityEnabled,AimEnabled,PreconnectToSearch,Translate,OptimizationHints,MediaRouter",
];
const GAIA: &str = "http://127.0.0.1:1";

/// Chromium's own connections no flag turns off: the GCM check-in
/// (`android.clients.google.com`, `mtalk.google.com`), seen now and then on
/// CI. They are the browser's, not the page's; a page that fetched from
/// those hosts would still fail checks 2 and 3 (a CSP violation, a URL in
/// the network log).
const BROWSER_OWN: &[&str] = &[
    "CONNECT android.clients.google.com:443 ",
    "CONNECT mtalk.google.com:",
];

/// A listener on 127.0.0.1 that records the first line of each request
/// (or connection) and answers with `answer(first_line)`.
struct Listener {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    fn start(answer: impl Fn(&str) -> Vec<u8> + Send + 'static) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&conn);
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                // The rest of the head; bodies are not expected.
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let first = first.trim_end().to_string();
                log.lock().expect("log lock").push(first.clone());
                let _ = (&conn).write_all(&answer(&first));
            }
        });
        Listener { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("log lock").clone()
    }
}

/// Serves `body` at /stats with `csp` (if any) as its CSP header; 404
/// elsewhere.
fn site(body: String, csp: Option<&'static str>) -> Listener {
    Listener::start(move |first| {
        if first.starts_with("GET /stats ") {
            let csp = csp.map_or(String::new(), |c| {
                format!("Content-Security-Policy: {c}\r\n")
            });
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n{csp}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            [head.as_bytes(), body.as_bytes()].concat()
        } else {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    })
}

/// What chromium made of one URL.
#[derive(Debug)]
pub struct Visit {
    /// `--dump-dom`: the DOM once loaded, serialized.
    pub dom: String,
    /// Console lines reporting a Content-Security-Policy violation.
    pub violations: Vec<String>,
    /// Every URL the browser requested, but the account check.
    pub requested: Vec<String>,
    /// What reached the trap proxy: anything bound off this machine.
    pub trapped: Vec<String>,
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// Loads `url` in headless chromium `width` px wide and returns the DOM
/// and what it loaded; with `screenshot`, also writes a PNG of the first
/// `height` px there.
pub fn visit(
    url: &str,
    (width, height): (u32, u32),
    screenshot: Option<&Path>,
    dark: bool,
) -> Visit {
    let trap = Listener::start(|_| {
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
    });
    let profile = tempdir("chromium-profile");
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless=new",
        // As root chromium will not start sandboxed; the page is our own.
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--enable-logging=stderr",
        "--v=1",
    ])
    .args(QUIET)
    .arg(format!("--gaia-url={GAIA}"))
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--proxy-server=http://{}", trap.addr))
    .arg(format!("--window-size={width},{height}"));
    if dark {
        cmd.arg("--force-dark-mode")
            .arg("--blink-settings=preferredColorScheme=0");
    }
    match screenshot {
        Some(path) => cmd.arg(format!("--screenshot={}", path.display())),
        None => cmd.arg("--dump-dom"),
    };
    cmd.arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}; install it: apt-get install chromium", chromium()));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium took over 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (dom, log) = (
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    );
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        status.success(),
        "chromium failed ({status}) on {url}:\n{log}"
    );
    let violations = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && l.contains("Content Security Policy"))
        .map(str::to_string)
        .collect();
    let requested = log
        .lines()
        .filter_map(|l| {
            l.split_once("NotifyBeforeURLRequest: ")
                .map(|(_, u)| u.trim().to_string())
        })
        .filter(|u| !u.starts_with(GAIA))
        // The browser's own, not the page's: none has been seen so far, but
        // a favicon request may come, and it stays on the page's origin.
        .filter(|u| !u.ends_with("/favicon.ico") || !same_origin(u, url))
        .collect();
    Visit {
        dom,
        violations,
        requested,
        trapped: trap
            .seen()
            .into_iter()
            .filter(|line| !BROWSER_OWN.iter().any(|own| line.starts_with(own)))
            .collect(),
    }
}

/// Whether `a` and `b` share scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| {
        let rest = u.split_once("://").map_or("", |(_, r)| r);
        let host = rest.split('/').next().unwrap_or("");
        format!("{}://{host}", u.split("://").next().unwrap_or(""))
    };
    origin(a) == origin(b)
}

fn tempdir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "spartakus-page-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// target/screenshots/, next to the tests' own target/tmp.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is under target/")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Asserts the visit loaded the page and nothing else.
fn assert_self_contained(v: &Visit, url: &str) {
    assert!(
        v.trapped.is_empty(),
        "requests left the machine: {:?}",
        v.trapped
    );
    assert!(
        v.violations.is_empty(),
        "CSP violations:\n{}",
        v.violations.join("\n")
    );
    assert!(
        v.requested.iter().any(|u| u == url),
        "the network log lacks {url}: {:?}",
        v.requested
    );
    assert!(
        v.requested.iter().all(|u| u == url),
        "the page loaded more than itself: {:?}",
        v.requested
    );
}

/// A PNG's width and height, after checking it is one worth looking at.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        png.len() > 20_000,
        "{} is only {} bytes: a blank page?",
        path.display(),
        png.len()
    );
    let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
    (be(16), be(20))
}

/// The checks a person would make of a page showing `fleet::fleet()`.
fn assert_shows_the_fleet(dom: &str) {
    let f = fleet::fleet();
    for want in [
        "2,104</span><span>active clusters",
        "48,931</span><span>nodes",
        "Values seen in fewer than 5 clusters (each seen on at least 2 days) are shown as other",
        r#"aria-label="Active clusters per day, 2026-11-02 to 2026-12-01: 1,780 on 2026-11-02"#,
        r#"aria-label="Share of clusters by Kubernetes minor version per day, 2026-11-02 to 2026-12-01. On 2026-12-01: v1.31"#,
        r#"aria-label="Distribution: EKS 29%, GKE 19%"#,
        "<th scope=\"row\">Container-Optimized OS from Google</th><td>356</td>",
        "other (38 values)",
    ] {
        assert!(dom.contains(want), "the DOM lacks {want}");
    }
    for b in &f.breakdowns {
        assert!(
            dom.contains(&format!("<h3>{}</h3>", b.title)),
            "no chart for {}",
            b.key
        );
    }
    assert_eq!(
        dom.matches(r#"role="img""#).count(),
        3 + f.breakdowns.len() + 1,
        "charts with a text alternative"
    );
    assert_eq!(
        dom.matches("<table>").count(),
        3 + f.breakdowns.len() + 1,
        "tables"
    );
    for bad in ["<script", "<img", "<link", "<iframe"] {
        assert!(!dom.contains(bad), "the DOM has {bad}");
    }
}

/// Renders the fleet's page and serves it as the collector does.
fn serve_fleet(f: &figures::Figures) -> (Listener, String) {
    let site = site(page::render(f), Some(page::CONTENT_SECURITY_POLICY));
    let url = format!("http://{}/stats", site.addr);
    (site, url)
}

#[test]
fn the_stats_page_shows_the_fleet_in_a_browser_and_loads_nothing() {
    let (_site, url) = serve_fleet(&fleet::fleet());
    let v = visit(&url, (1280, 2000), None, false);
    assert_self_contained(&v, &url);
    assert_shows_the_fleet(&v.dom);
    for (name, size, dark) in [
        ("stats-1280", (1280, 2860), false),
        ("stats-375", (375, 5500), false),
        ("stats-375-dark", (375, 2400), true),
    ] {
        let path = screenshots().join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        let v = visit(&url, size, Some(&path), dark);
        assert_self_contained(&v, &url);
        assert_eq!(png_size(&path), size, "{name}.png's size");
    }
}

/// 1,234,567 as the page prints it.
fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A real collector with `--stats on`, holding three days of a 150-cluster
/// fleet from bench/fleet, imported.
fn collector_with_a_fleet() -> (TestDb, Collector) {
    let db = TestDb::new();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let today = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .expect("date");
    let today = String::from_utf8_lossy(&today.stdout).trim().to_string();
    let fleet = Command::new("python3")
        .args([
            "bench/fleet",
            "--clusters",
            "150",
            "--days",
            "3",
            "--seed",
            "7",
        ])
        .args(["--end-date", &today])
        .current_dir(root)
        .stderr(Stdio::null())
        .output()
        .expect("run bench/fleet");
    assert!(fleet.status.success(), "bench/fleet failed");
    import_lines(&db, &fleet.stdout, &[]);
    let c = Collector::start(&db.url, &["--stats", "on"]);
    c.wait_ready(Duration::from_secs(20));
    (db, c)
}

#[test]
fn the_collectors_stats_page_shows_its_fleet_in_a_browser() {
    let (_db, c) = collector_with_a_fleet();
    // The first request starts the computation; 503 until it is done.
    let deadline = Instant::now() + Duration::from_secs(60);
    let figures: Value = loop {
        let reply = get(c.addr, "/stats?format=json");
        if reply.status == 200 {
            break serde_json::from_str(&reply.body).expect("figures as JSON");
        }
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(
            Instant::now() < deadline,
            "no figures within 60 s: {}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let clusters = figures["clusters"].as_i64().expect("clusters");
    assert!(clusters >= 100, "most of the 150 clusters count: {figures}");
    let url = format!("http://{}/stats", c.addr);
    let v = visit(&url, (1280, 2000), None, false);
    assert_self_contained(&v, &url);
    let headline = format!("{}</span><span>active clusters", thousands(clusters));
    assert!(v.dom.contains(&headline), "the DOM lacks {headline}");
    let nodes = figures["nodes"].as_i64().expect("nodes");
    let headline = format!("{}</span><span>nodes", thousands(nodes));
    assert!(v.dom.contains(&headline), "the DOM lacks {headline}");
    let breakdowns = figures["breakdowns"].as_array().expect("breakdowns");
    for b in breakdowns {
        let title = b["title"].as_str().expect("title");
        assert!(
            v.dom.contains(&format!("<h3>{title}</h3>")),
            "no chart for {title}"
        );
        // The biggest value of each, as a row of its table.
        if let Some(top) = b["rows"].get(0) {
            let value = page::escape(top["value"].as_str().expect("value"));
            let cell = format!(
                "<th scope=\"row\">{value}</th><td>{}</td>",
                thousands(top["clusters"].as_i64().expect("n"))
            );
            assert!(v.dom.contains(&cell), "{title}: the DOM lacks {cell}");
        }
    }
    let alternatives = v.dom.matches(r#"role="img""#).count();
    assert_eq!(
        alternatives,
        v.dom.matches("<table>").count(),
        "a table for each chart"
    );
    assert!(alternatives > breakdowns.len(), "{alternatives} charts");
    for (name, size) in [
        ("collector-1280", (1280, 2860)),
        ("collector-375", (375, 5500)),
    ] {
        let path = screenshots().join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        let v = visit(&url, size, Some(&path), false);
        assert_self_contained(&v, &url);
        assert_eq!(png_size(&path), size, "{name}.png's size");
    }
}

#[test]
fn hostile_values_stay_text_in_a_browser() {
    let mut f = fleet::fleet();
    f.breakdowns[1].rows[0].value = "<script>document.title='pwned'</script>".to_string();
    f.breakdowns[3].rows[0].value = r#""><img src=http://203.0.113.9/x.png>"#.to_string();
    let (_site, url) = serve_fleet(&f);
    let v = visit(&url, (1280, 2000), None, false);
    assert_self_contained(&v, &url);
    assert!(
        !v.dom.contains("<script") && !v.dom.contains("<img"),
        "a value became markup"
    );
    assert!(v
        .dom
        .contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));
    assert!(v.dom.contains("<title>Kubernetes usage: spartakus</title>"));
}

#[test]
fn the_check_catches_a_page_that_loads_things() {
    let page = r#"<!doctype html><html><head><style>p{color:red}</style><link rel="stylesheet" href="http://203.0.113.7/a.css"></head><body><p>hi</p><img src="http://example.com/x.png"></body></html>"#;
    // Without a CSP the loads go out, and the trap sees them.
    let open = site(page.to_string(), None);
    let v = visit(
        &format!("http://{}/stats", open.addr),
        (800, 600),
        None,
        false,
    );
    assert!(
        v.trapped.iter().any(|l| l.contains("203.0.113.7/a.css")),
        "trap missed the stylesheet: {v:?}"
    );
    assert!(
        v.trapped.iter().any(|l| l.contains("example.com/x.png")),
        "trap missed the image: {v:?}"
    );
    // With the page's CSP they are blocked, and the console says so.
    let strict = site(page.to_string(), Some(page::CONTENT_SECURITY_POLICY));
    let v = visit(
        &format!("http://{}/stats", strict.addr),
        (800, 600),
        None,
        false,
    );
    assert!(v.trapped.is_empty(), "{v:?}");
    for blocked in ["inline style", "203.0.113.7/a.css", "example.com/x.png"] {
        assert!(
            v.violations.iter().any(|l| l.contains(blocked)),
            "no violation for {blocked}: {v:?}"
        );
    }
}
