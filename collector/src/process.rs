//! The standard Prometheus process metrics (`process_*`, as every client
//! library exports them) and `spartakus_build_info`, read from /proc/self at
//! each scrape. Linux only; on another system the process metrics are left
//! out. Owns no state.

use std::fmt::Write;

/// Clock ticks per second of /proc's CPU times: 100 on every Linux
/// architecture we ship (the kernel's USER_HZ).
const TICKS: f64 = 100.0;
const PAGE: u64 = 4096;

/// The exposition of the process metrics and the build's version.
pub fn render(version: &str) -> String {
    let mut out = String::with_capacity(1024);
    let version = version.replace('\\', "\\\\").replace('"', "\\\"");
    let name = "spartakus_build_info";
    let _ = write!(
        out,
        "# HELP {name} The running build: always 1, with its version as a label.\n\
         # TYPE {name} gauge\n{name}{{version=\"{version}\"}} 1\n"
    );
    let mut gauge = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            );
        }
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    let cpu = field(14).zip(field(15)).map(|(u, s)| (u + s) / TICKS);
    gauge(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu,
    );
    let rss = field(24).map(|pages| pages * PAGE as f64);
    gauge(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        rss,
    );
    gauge(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        field(23),
    );
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("btime "))?;
        line[6..].trim().parse::<f64>().ok()
    });
    let start = boot.zip(field(22)).map(|(b, ticks)| b + ticks / TICKS);
    gauge(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        start,
    );
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    gauge(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        fds,
    );
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<f64>().ok()
        });
    gauge(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        max_fds,
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let text = super::render("v1.0 \"x\"");
        assert!(
            text.contains("spartakus_build_info{version=\"v1.0 \\\"x\\\"\"} 1\n"),
            "{text}"
        );
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ] {
            let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
            let value: f64 = line
                .and_then(|l| l[name.len() + 1..].parse().ok())
                .expect(name);
            // A test process may not have used a whole clock tick yet.
            let least = if name == "process_cpu_seconds_total" {
                0.0
            } else {
                1.0
            };
            assert!(value >= least, "{name} {value}");
        }
    }
}
