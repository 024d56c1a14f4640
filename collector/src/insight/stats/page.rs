//! PLACEHOLDER, for compiling only: the real page (inline SVG charts) comes
//! from the `page` branch, which replaces this file. A plain HTML table of
//! the figures, every value escaped.

use super::figures::Figures;

/// The page's Content-Security-Policy: no script, no outside resource.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub fn render(f: &Figures) -> String {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>spartakus: \
         Kubernetes usage</title></head><body><h1>Kubernetes usage, last {} days</h1>\
         <p>{} clusters, {} nodes. Values seen in fewer than {} clusters (each seen on at \
         least {} days) are counted under \"other\". Computed {}.</p>",
        f.days,
        f.clusters,
        f.nodes,
        f.min_clusters,
        f.min_days,
        escape(&f.computed_at)
    );
    out.push_str(
        "<h2>Active clusters</h2><table><tr><th>Day</th><th>Clusters</th><th>Nodes</th></tr>",
    );
    for d in &f.daily {
        let n = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&d.day),
            n(d.clusters),
            n(d.nodes)
        ));
    }
    out.push_str("</table>");
    for b in &f.breakdowns {
        out.push_str(&format!(
            "<h2>{}</h2><table><tr><th>Value</th><th>Clusters</th><th>Nodes</th></tr>",
            escape(b.title)
        ));
        for s in b.rows.iter().chain([&b.other]) {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.value),
                s.clusters,
                s.nodes
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>\n");
    out
}
