//! The `/stats` page: one self-contained HTML document drawn from
//! `Figures`, and the Content-Security-Policy it is served with. It owns
//! the words, the layout (page.css, inlined) and the escaping of every
//! value, which come from reports and so from anyone; chart geometry is
//! `chart.rs`. It computes no figure and applies no threshold: what
//! `Figures` holds is already safe to publish.
//!
//! No scripts, no external fonts, styles or images: the page must work
//! from the scratch image with no internet, and the CSP below forbids all
//! of it. Every chart has a text alternative: an `aria-label` summary on
//! the drawing and a table with every number under it.

use super::chart;
use super::figures::{Breakdown, Figures, Series, Share};
use std::fmt::Write;

/// The page's one `<style>`, inlined so the page needs nothing else.
const STYLE: &str = include_str!("page.css");

/// The `Content-Security-Policy` header for the page: nothing may load,
/// only the inline style whose SHA-256 this names runs (a test recomputes
/// it from page.css). base-uri, form-action and frame-ancestors do not
/// fall back to default-src, so they are named.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
style-src 'sha256-Xz8sRmtR9cSprWWXwT/J7yAPqyYbKVoQ0UPVOetUkvI='; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Longer values are cut to this many characters, with an ellipsis, in
/// chart labels; tables and `title`s carry the whole value.
const LABEL_CHARS: usize = 40;

/// Text safe in HTML content and in quoted attributes. Controls (reports
/// are hostile) become visible symbols, and bidi overrides, which would
/// reorder the text around a value, become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // U+2400.. are the "control pictures": ␀ ␉ ␊ ... and ␡.
            '\0'..='\x1f' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\x7f' => out.push('\u{2421}'),
            '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}

/// `escape(s)`, cut to `max` characters with a visible ellipsis.
fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > max => format!("{}…", escape(&s[..i])),
        _ => escape(s),
    }
}

/// The whole HTML document for `f`.
pub fn render(f: &Figures) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><title>Kubernetes usage: spartakus</title><style>{STYLE}</style></head><body><main>"#
    );
    header(&mut out, f);
    let days: Vec<String> = f.daily.iter().map(|d| escape(&d.day)).collect();
    let range = match (days.first(), days.last()) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "no days".to_string(),
    };

    out.push_str(r#"<h2 id="active">Active clusters and nodes</h2><div class="cols">"#);
    let clusters: Vec<Option<i64>> = f.daily.iter().map(|d| d.clusters).collect();
    let nodes: Vec<Option<i64>> = f.daily.iter().map(|d| d.nodes).collect();
    daily(&mut out, f, &days, &range, &clusters, "clusters");
    daily(&mut out, f, &days, &range, &nodes, "nodes");
    out.push_str("</div>");

    out.push_str(r#"<h2 id="versions">Kubernetes minor versions</h2><div class="cols">"#);
    adoption(&mut out, f, &days, &range);
    let minor = f.breakdowns.iter().find(|b| b.key == "minor_version");
    if let Some(b) = minor {
        breakdown(&mut out, f, b, false);
        breakdown(&mut out, f, b, true);
    }
    out.push_str("</div>");

    out.push_str(r#"<h2 id="platforms">Where and how clusters run</h2><div class="cols">"#);
    for b in f
        .breakdowns
        .iter()
        .filter(|b| !matches!(b.key, "minor_version" | "volunteer_version"))
    {
        breakdown(&mut out, f, b, false);
    }
    out.push_str("</div>");

    if let Some(b) = f.breakdowns.iter().find(|b| b.key == "volunteer_version") {
        out.push_str(
            r#"<h2 id="volunteer">Reporting clusters by volunteer version</h2><div class="cols">"#,
        );
        breakdown(&mut out, f, b, false);
        out.push_str("</div>");
    }
    out.push_str(
        r#"<footer><p>The same figures as JSON: <a href="?format=json">?format=json</a>. Drawn by spartakus-collector with no scripts and nothing loaded from elsewhere.</p></footer></main></body></html>"#,
    );
    out
}

fn header(out: &mut String, f: &Figures) {
    let _ = write!(
        out,
        r#"<header><h1>Kubernetes clusters reporting to spartakus</h1><p class="muted">Anonymous usage reports from spartakus-volunteer over the last {} days (UTC), computed {}.</p><div class="headline"><div><span class="big clusters">{}</span><span>active clusters</span></div><div><span class="big nodes">{}</span><span>nodes</span></div>"#,
        f.days,
        escape(&when(&f.computed_at)),
        chart::count(f.clusters),
        chart::count(f.nodes),
    );
    let minor = f.breakdowns.iter().find(|b| b.key == "minor_version");
    if let Some(top) = minor.and_then(|b| b.rows.iter().find(|r| r.value != "(unknown)")) {
        let _ = write!(
            out,
            r#"<div><span class="big" title="{}">{}</span><span>most common minor version, {} of clusters</span></div>"#,
            escape(&top.value),
            short(&top.value, 12),
            chart::percent(top.clusters, f.clusters),
        );
    }
    let _ = write!(
        out,
        r#"</div><p class="note">Only clusters that reported in the window, and on at least {d} days in all, count. Values seen in fewer than {c} clusters (each seen on at least {d} days) are shown as other, and a day with fewer than {c} such clusters is left blank.</p></header>"#,
        c = f.min_clusters,
        d = f.min_days,
    );
    if f.clusters == 0 {
        let _ = write!(
            out,
            r#"<p class="empty">No data yet: no {} clusters seen on at least {} days have reported in the last {} days.</p>"#,
            f.min_clusters, f.min_days, f.days
        );
    }
}

/// "2026-12-01T09:30:00Z" as "2026-12-01 09:30 UTC"; other text as it is.
fn when(rfc3339: &str) -> String {
    match rfc3339
        .strip_suffix(":00Z")
        .or_else(|| rfc3339.strip_suffix('Z'))
    {
        Some(t) if t.is_ascii() && t.len() >= 16 && t.as_bytes()[10] == b'T' => {
            format!("{} {} UTC", &t[..10], &t[11..])
        }
        _ => rfc3339.to_string(),
    }
}

/// One metric per day: a line chart and its table.
fn daily(
    out: &mut String,
    f: &Figures,
    days: &[String],
    range: &str,
    values: &[Option<i64>],
    unit: &str,
) {
    let title = if unit == "clusters" {
        "Active clusters per day"
    } else {
        "Nodes per day"
    };
    let _ = write!(
        out,
        r#"<figure><figcaption><h3>{title}</h3><span class="sub">UTC days, {range}</span></figcaption>"#
    );
    let known: Vec<(usize, i64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    match (
        known.first(),
        known.last(),
        known.iter().max_by_key(|(_, v)| *v),
    ) {
        (Some(&(a, va)), Some(&(b, vb)), Some(&(m, vm))) => {
            let label = format!(
                "{title}, {range}: {} on {}, {} on {}; highest {} on {}.",
                chart::count(va),
                days[a],
                chart::count(vb),
                days[b],
                chart::count(vm),
                days[m]
            );
            chart::line(out, days, values, unit, unit, &label);
        }
        _ => {
            let _ = write!(
                out,
                r#"<p class="empty">No day yet with {} counted clusters.</p>"#,
                f.min_clusters
            );
        }
    }
    let _ = write!(
        out,
        r#"<details><summary>The numbers</summary><div class="scroll"><table><thead><tr><th scope="col">Day</th><th scope="col">{}</th></tr></thead><tbody>"#,
        if unit == "clusters" {
            "Clusters"
        } else {
            "Nodes"
        }
    );
    for (day, v) in days.iter().zip(values) {
        let v = v.map_or("–".to_string(), chart::count);
        let _ = write!(out, r#"<tr><th scope="row">{day}</th><td>{v}</td></tr>"#);
    }
    let _ = write!(
        out,
        r#"</tbody></table></div><p class="note">–: fewer than {} counted clusters that day.</p></details></figure>"#,
        f.min_clusters
    );
}

/// "v1.29" as 29, to stack versions oldest at the bottom.
fn minor_of(s: &Series) -> (u32, &str) {
    let n = s
        .value
        .strip_prefix("v1.")
        .and_then(|m| m.parse().ok())
        .unwrap_or(u32::MAX);
    (n, &s.value)
}

fn adoption(out: &mut String, f: &Figures, days: &[String], range: &str) {
    let _ = write!(
        out,
        r#"<figure class="wide"><figcaption><h3>Adoption: share of clusters by minor version</h3><span class="sub">UTC days, {range}</span></figcaption>"#
    );
    // "other" at the bottom, then versions oldest first; days left blank
    // in `daily` stay blank here too.
    let mut ordered: Vec<&Series> = f.adoption.iter().collect();
    ordered.sort_by_key(|s| (s.value != "other", minor_of(s)));
    let mut k = 0;
    let series: Vec<(String, String, Vec<i64>)> = ordered
        .iter()
        .map(|s| {
            let class = if s.value == "other" {
                "so".to_string()
            } else {
                k += 1;
                format!("s{}", (k - 1) % 7)
            };
            let values = (0..days.len())
                .map(|i| match f.daily.get(i).and_then(|d| d.clusters) {
                    Some(_) => s.clusters.get(i).copied().unwrap_or(0),
                    None => 0,
                })
                .collect();
            (class, escape(&s.value), values)
        })
        .collect();
    let total = |i: usize| series.iter().map(|s| s.2[i].max(0)).sum::<i64>();
    let Some(last) = (0..days.len()).rev().find(|i| total(*i) > 0) else {
        out.push_str(
            r#"<p class="empty">No day yet with enough clusters to show versions.</p></figure>"#,
        );
        return;
    };
    let shares: Vec<String> = series
        .iter()
        .rev()
        .map(|(_, name, v)| format!("{name} {}", chart::percent(v[last], total(last))))
        .collect();
    let label = format!(
        "Share of clusters by Kubernetes minor version per day, {range}. On {}: {}.",
        days[last],
        shares.join(", ")
    );
    chart::stacked(out, days, &series, &label);
    let _ = write!(out, r#"<ul class="legend" aria-label="On {}">"#, days[last]);
    for (s, share) in series.iter().rev().zip(ordered.iter().rev()) {
        out.push_str("<li>");
        chart::swatch(out, &s.0);
        let _ = write!(
            out,
            r#"<span title="{}">{}</span> <span class="muted">{}</span></li>"#,
            s.1,
            short(&share.value, 16),
            chart::percent(s.2[last], total(last))
        );
    }
    out.push_str(r#"</ul><details><summary>The numbers (clusters per day)</summary><div class="scroll"><table><thead><tr><th scope="col">Day</th>"#);
    for s in series.iter().rev() {
        let _ = write!(out, r#"<th scope="col">{}</th>"#, s.1);
    }
    out.push_str("</tr></thead><tbody>");
    for (i, day) in days.iter().enumerate() {
        let _ = write!(out, r#"<tr><th scope="row">{day}</th>"#);
        for s in series.iter().rev() {
            let v = if total(i) > 0 {
                chart::count(s.2[i])
            } else {
                "–".to_string()
            };
            let _ = write!(out, "<td>{v}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></details></figure>");
}

/// One breakdown as bars, by clusters or (`by_nodes`) by nodes, and a
/// table with both.
fn breakdown(out: &mut String, f: &Figures, b: &Breakdown, by_nodes: bool) {
    let devices = b.key == "accelerators";
    let unit = if devices { "devices" } else { "nodes" };
    let mut rows: Vec<(String, &Share)> = b.rows.iter().map(|r| (escape(&r.value), r)).collect();
    if b.other.clusters > 0 || b.other_values > 0 {
        let values = if b.other_values == 1 {
            "value"
        } else {
            "values"
        };
        rows.push((format!("other ({} {values})", b.other_values), &b.other));
    }
    let all_nodes: i64 = rows.iter().map(|(_, r)| r.nodes.max(0)).sum();
    let (whole, class, sub) = if by_nodes {
        (
            all_nodes,
            "nodes",
            format!("share of {} {unit}", chart::count(all_nodes)),
        )
    } else if devices {
        (
            f.clusters,
            "clusters",
            format!("share of {} clusters with each", chart::count(f.clusters)),
        )
    } else {
        (
            f.clusters,
            "clusters",
            format!("share of {} clusters", chart::count(f.clusters)),
        )
    };
    let title = escape(b.title);
    let heading = if by_nodes {
        format!("{title}, by {unit}")
    } else {
        title.clone()
    };
    let _ = write!(
        out,
        r#"<figure id="{}{}"><figcaption><h3>{heading}</h3><span class="sub">{sub}</span></figcaption>"#,
        escape(b.key),
        if by_nodes { "-nodes" } else { "" }
    );
    if rows.is_empty() {
        out.push_str(r#"<p class="empty">No values yet.</p></figure>"#);
        return;
    }
    let part = |r: &Share| if by_nodes { r.nodes } else { r.clusters };
    let summary: Vec<String> = rows
        .iter()
        .enumerate()
        .take(12)
        .map(|(i, (full, r))| {
            let name = if i == b.rows.len() {
                full.clone()
            } else {
                short(&r.value, LABEL_CHARS)
            };
            format!("{name} {}", chart::percent(part(r), whole))
        })
        .collect();
    let more = if rows.len() > 12 {
        format!(", and {} more in the table", rows.len() - 12)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<div class="bars" role="img" aria-label="{heading}: {}{more}.">"#,
        summary.join(", ")
    );
    for (i, (full, r)) in rows.iter().enumerate() {
        let other = i == b.rows.len();
        let label = if other {
            full.clone()
        } else {
            short(&r.value, LABEL_CHARS)
        };
        let _ = write!(
            out,
            r#"<div class="row{}"><span class="label" title="{full}">{label}</span>"#,
            if other { " other" } else { "" }
        );
        chart::bar(out, part(r), whole, if other { "other" } else { class });
        let _ = write!(
            out,
            r#"<span class="num">{} <span class="pct">{}</span></span></div>"#,
            chart::count(part(r)),
            chart::percent(part(r), whole)
        );
    }
    let _ = write!(
        out,
        r#"</div><details><summary>The numbers</summary><div class="scroll"><table><thead><tr><th scope="col">{title}</th><th scope="col">Clusters</th><th scope="col">% of clusters</th><th scope="col">{}</th><th scope="col">% of {unit}</th></tr></thead><tbody>"#,
        if devices { "Devices" } else { "Nodes" }
    );
    for (full, r) in &rows {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{full}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            chart::count(r.clusters),
            chart::percent(r.clusters, f.clusters),
            chart::count(r.nodes),
            chart::percent(r.nodes, all_nodes)
        );
    }
    out.push_str("</tbody></table></div></details></figure>");
}

#[cfg(test)]
mod tests {
    use super::super::fleet::fleet;
    use super::*;

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn empty() -> Figures {
        Figures {
            days: 30,
            computed_at: "2026-12-01T00:00:00Z".to_string(),
            min_clusters: 5,
            min_days: 2,
            clusters: 0,
            nodes: 0,
            daily: Vec::new(),
            adoption: Vec::new(),
            breakdowns: Vec::new(),
        }
    }

    #[test]
    fn the_csp_names_the_hash_of_the_one_style() {
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        let hash = base64(ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes()).as_ref());
        let want = format!("style-src 'sha256-{hash}';");
        assert!(
            CONTENT_SECURITY_POLICY.contains(&want),
            "CONTENT_SECURITY_POLICY should contain {want}"
        );
        let page = render(&fleet());
        assert_eq!(page.matches("<style").count(), 1);
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none';"));
    }

    #[test]
    fn hostile_values_are_escaped_and_long_ones_cut_visibly() {
        let mut f = fleet();
        let long = format!("start{}end", "x".repeat(300));
        f.breakdowns[1].rows[0].value = "<script>alert('x')</script>".to_string();
        f.breakdowns[1].rows[1].value = "a\"b&c\u{1}\n\u{202e}d".to_string();
        f.breakdowns[1].rows[2].value = long.clone();
        f.adoption[0].value = "<img src=x>".to_string();
        f.computed_at = "<b>".to_string();
        let page = render(&f);
        assert!(!page.contains("<script"), "a value opened a script");
        assert!(!page.contains("<img"), "a value opened an img");
        assert!(!page.contains("<b>"));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(page.contains("a&quot;b&amp;c\u{2401}\u{240a}\u{fffd}d"));
        assert!(!page.contains('\u{1}') && !page.contains('\u{202e}'));
        let cut = format!("start{}…", "x".repeat(LABEL_CHARS - 6));
        assert!(
            page.contains(&format!(">{cut}</span>")),
            "no label cut to {LABEL_CHARS} characters"
        );
        assert!(
            page.contains(&format!(r#"title="{long}""#)),
            "the title lost the whole value"
        );
        assert!(
            page.contains(&format!(r#"<th scope="row">{long}</th>"#)),
            "the table lost the whole value"
        );
    }

    #[test]
    fn computed_at_reads_as_a_time() {
        assert_eq!(when("2026-12-01T09:30:00Z"), "2026-12-01 09:30 UTC");
        assert_eq!(when("2026-12-01T09:30:15Z"), "2026-12-01 09:30:15 UTC");
        assert_eq!(when("soon"), "soon");
        assert_eq!(when("éééééééééééééééé:00Z"), "éééééééééééééééé:00Z");
    }

    #[test]
    fn short_cuts_characters_not_bytes() {
        assert_eq!(short("abc", 3), "abc");
        assert_eq!(short("abcd", 3), "ab…");
        assert_eq!(short("ééééé", 4), "ééé…");
        assert_eq!(short("<<<<", 3), "&lt;&lt;…");
    }

    #[test]
    fn the_page_loads_nothing_and_runs_nothing() {
        for page in [render(&fleet()), render(&empty())] {
            for banned in [
                "http://",
                "https://",
                "<script",
                "<link",
                "<img",
                "<iframe",
                "@import",
                "url(",
                "src=",
                " style=",
                "javascript:",
            ] {
                assert!(!page.contains(banned), "the page contains {banned}");
            }
        }
    }

    #[test]
    fn every_figure_appears_with_its_text_alternative() {
        let f = fleet();
        let page = render(&f);
        assert!(page.contains(">2,104</span><span>active clusters"));
        assert!(page.contains(">48,931</span><span>nodes"));
        assert!(page.contains("Values seen in fewer than 5 clusters (each seen on at least 2 days) are shown as other"));
        for b in &f.breakdowns {
            assert!(
                page.contains(&format!("<h3>{}</h3>", b.title)),
                "no chart for {}",
                b.key
            );
            assert!(
                page.contains(&format!(r#"<th scope="col">{}</th>"#, b.title)),
                "no table for {}",
                b.key
            );
            for r in &b.rows {
                assert!(
                    page.contains(&format!(
                        r#"<th scope="row">{}</th><td>{}</td>"#,
                        escape(&r.value),
                        chart::count(r.clusters)
                    )),
                    "{} {}",
                    b.key,
                    r.value
                );
            }
        }
        for s in &f.adoption {
            assert!(
                page.contains(&format!(r#"<th scope="col">{}</th>"#, s.value)),
                "no column for {}",
                s.value
            );
        }
        for d in &f.daily {
            assert!(page.contains(&format!(r#"<th scope="row">{}</th>"#, d.day)));
        }
        // Two line charts and the adoption chart, one bar chart per
        // breakdown and one more for minor versions by nodes.
        assert_eq!(
            page.matches(r#"<svg class="chart" width="100%" height="194" role="img" aria-label=""#)
                .count(),
            3
        );
        assert_eq!(
            page.matches(r#"<div class="bars" role="img" aria-label=""#)
                .count(),
            f.breakdowns.len() + 1
        );
        assert_eq!(page.matches("<table>").count(), 3 + f.breakdowns.len() + 1);
        assert!(
            page.contains("Active clusters per day, 2026-11-02 to 2026-12-01: 1,780 on 2026-11-02")
        );
        assert!(page.contains("other (9 values)"));
    }

    #[test]
    fn empty_figures_say_so() {
        let page = render(&empty());
        assert!(page.contains("No data yet"));
        assert!(page.contains("No day yet with 5 counted clusters"));
        assert!(page.contains("No day yet with enough clusters to show versions"));
        assert!(page.ends_with("</html>"));
    }

    #[test]
    fn blank_days_are_gaps_and_blank_in_the_tables() {
        let mut f = fleet();
        for d in &mut f.daily[10..12] {
            d.clusters = None;
            d.nodes = None;
        }
        let page = render(&f);
        assert_eq!(page.matches(r#"class="line clusters""#).count(), 2);
        assert_eq!(page.matches(r#"class="line nodes""#).count(), 2);
        assert!(page.contains(r#"<tr><th scope="row">2026-11-12</th><td>–</td>"#));
        // The adoption chart leaves the same days out: two bands per series.
        assert_eq!(page.matches(r#"<path class="band s0""#).count(), 2);
    }
}
