//! The `/stats` page's charts, drawn on the server as inline SVG: a line
//! over days, a 100 % stacked area over days, and a horizontal bar. It owns
//! geometry, ticks and number formats; what to draw, the words around it
//! and all escaping of values belong to `page.rs`. Values reach this file
//! only as numbers and as text already escaped.
//!
//! Charts stay readable from 375 px to wide screens because their text is
//! never scaled: the outer `<svg>` is `width="100%"` with a fixed height,
//! its labels sit at percentages of that width, and only the shapes live
//! in an inner `<svg preserveAspectRatio="none">` that stretches, with
//! `vector-effect="non-scaling-stroke"` keeping lines thin. The y labels
//! therefore sit on their grid lines, inside the plot, not in a margin.

use std::fmt::Write;

/// The plot's top (room for the top tick label) and height, in px.
const TOP: i64 = 18;
const PLOT: i64 = 150;
/// The outer height: the plot plus the date labels under it.
const HEIGHT: i64 = TOP + PLOT + 26;
/// The inner viewBox's width; x positions are days spread over it.
const WIDTH: f64 = 1000.0;

/// Ticks for counts from 0 to at least `max`: the step is 1, 2 or 5 × 10^k,
/// giving at most 5 steps. Returns (step, top).
pub fn ticks(max: i64) -> (i64, i64) {
    let max = max.max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            let s = step * m;
            // i64::div_ceil is unstable.
            let steps = (max + s - 1) / s;
            if steps <= 5 {
                return (s, steps * s);
            }
        }
        step *= 10;
    }
}

/// 12345 as "12,345".
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `part` of `whole` as "38%", "4.2%" or "<0.1%".
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 || part <= 0 {
        return "0%".to_string();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p >= 9.95 {
        format!("{p:.0}%")
    } else if p >= 0.05 {
        format!("{p:.1}%")
    } else {
        "<0.1%".to_string()
    }
}

/// "2026-12-01" as "Dec 1"; anything else as it is (already escaped by the
/// caller if it came from outside; our own days are always this shape).
pub fn short_day(day: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = day.splitn(3, '-').skip(1).map(str::parse::<usize>);
    match (parts.next(), parts.next()) {
        (Some(Ok(m @ 1..=12)), Some(Ok(d))) => format!("{} {d}", MONTHS[m - 1]),
        _ => day.to_string(),
    }
}

fn x(i: usize, n: usize) -> f64 {
    if n <= 1 {
        WIDTH / 2.0
    } else {
        i as f64 * WIDTH / (n - 1) as f64
    }
}

/// The outer `<svg>`'s opening, its date labels and the inner `<svg>`'s
/// opening. `days` are "YYYY-MM-DD"; `label` is the escaped aria-label.
fn open(out: &mut String, days: &[String], label: &str) {
    // Writing to a String cannot fail; here and below the Result is dropped.
    let _ = write!(
        out,
        r#"<svg class="chart" width="100%" height="{HEIGHT}" role="img" aria-label="{label}">"#
    );
    let n = days.len();
    let last = n.saturating_sub(1);
    let labels = last.min(4);
    for k in 0..=labels {
        let i = (k * last).checked_div(labels).unwrap_or(0);
        let Some(day) = days.get(i) else { break };
        let pct = x(i, n) / WIDTH * 100.0;
        let anchor = match (n > 1, i) {
            (false, _) => "middle",
            (true, 0) => "start",
            (true, i) if i == last => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<line class="axis" x1="{pct:.2}%" x2="{pct:.2}%" y1="{}" y2="{}"/><text class="tick" x="{pct:.2}%" y="{}" text-anchor="{anchor}">{}</text>"#,
            TOP + PLOT,
            TOP + PLOT + 5,
            TOP + PLOT + 20,
            short_day(day),
        );
    }
    let _ = write!(
        out,
        r#"<svg y="{TOP}" width="100%" height="{PLOT}" viewBox="0 0 {WIDTH} {PLOT}" preserveAspectRatio="none" overflow="visible">"#
    );
}

/// Grid lines inside the inner svg, and their labels after it (text must
/// not stretch): `labels` are (value as a fraction of the top, text).
fn grid(out: &mut String, labels: &[(f64, String)]) {
    for (f, _) in labels {
        let y = PLOT as f64 * (1.0 - f);
        let class = if *f == 0.0 { "axis" } else { "grid" };
        let _ = write!(
            out,
            r#"<line class="{class}" x1="0" x2="{WIDTH}" y1="{y:.1}" y2="{y:.1}" vector-effect="non-scaling-stroke"/>"#
        );
    }
}

fn close(out: &mut String, labels: &[(f64, String)]) {
    out.push_str("</svg>");
    for (f, text) in labels {
        let y = TOP as f64 + PLOT as f64 * (1.0 - f) - 4.0;
        let _ = write!(out, r#"<text class="tick" x="0" y="{y:.1}">{text}</text>"#);
    }
    out.push_str("</svg>");
}

/// Runs of consecutive days that have a value: (first index, values).
fn runs(values: &[Option<i64>]) -> Vec<(usize, Vec<i64>)> {
    let mut out: Vec<(usize, Vec<i64>)> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match (v, out.last_mut()) {
            (Some(v), Some((start, run))) if *start + run.len() == i => run.push(*v),
            (Some(v), _) => out.push((i, vec![*v])),
            (None, _) => {}
        }
    }
    out
}

/// A line with the area under it, one value per day, a gap where `None`.
/// `class` picks the colour; `unit` follows the top tick ("clusters").
pub fn line(
    out: &mut String,
    days: &[String],
    values: &[Option<i64>],
    class: &str,
    unit: &str,
    label: &str,
) {
    let max = values.iter().flatten().copied().max().unwrap_or(0);
    let (step, top) = ticks(max);
    let labels: Vec<(f64, String)> = (0..=top / step)
        .map(|k| {
            let v = k * step;
            let text = if v == top {
                format!("{} {unit}", count(v))
            } else {
                count(v)
            };
            (v as f64 / top as f64, text)
        })
        .collect();
    open(out, days, label);
    grid(out, &labels);
    let n = days.len();
    let y = |v: i64| PLOT as f64 * (1.0 - v as f64 / top as f64);
    for (start, run) in runs(values) {
        let mut line = String::new();
        for (j, v) in run.iter().enumerate() {
            let _ = write!(
                line,
                "{}{:.1} {:.1}",
                if j == 0 { "M" } else { " L" },
                x(start + j, n),
                y(*v)
            );
        }
        if run.len() == 1 {
            // A lone day: a zero-length line with round caps draws a dot.
            let _ = write!(
                out,
                r#"<path class="dot {class}" d="{line} h0" vector-effect="non-scaling-stroke"/>"#
            );
            continue;
        }
        let (x0, x1) = (x(start, n), x(start + run.len() - 1, n));
        let _ = write!(
            out,
            r#"<path class="area {class}" d="{line} L{x1:.1} {PLOT} L{x0:.1} {PLOT} Z"/><path class="line {class}" d="{line}" vector-effect="non-scaling-stroke"/>"#
        );
    }
    close(out, &labels);
}

/// 100 % stacked areas: `series` are (class, escaped name, clusters per
/// day), bottom first; a day whose total is 0 is a gap.
pub fn stacked(
    out: &mut String,
    days: &[String],
    series: &[(String, String, Vec<i64>)],
    label: &str,
) {
    let n = days.len();
    let totals: Vec<Option<i64>> = (0..n)
        .map(|i| {
            let t: i64 = series
                .iter()
                .map(|s| s.2.get(i).copied().unwrap_or(0).max(0))
                .sum();
            (t > 0).then_some(t)
        })
        .collect();
    let labels: Vec<(f64, String)> = [0, 25, 50, 75, 100]
        .iter()
        .map(|p| (*p as f64 / 100.0, format!("{p}%")))
        .collect();
    open(out, days, label);
    for (start, run) in runs(&totals) {
        let mut below = vec![0i64; run.len()];
        for (class, name, values) in series {
            let above: Vec<i64> = below
                .iter()
                .enumerate()
                .map(|(j, b)| b + values.get(start + j).copied().unwrap_or(0).max(0))
                .collect();
            let y = |j: usize, v: i64| PLOT as f64 * (1.0 - v as f64 / run[j] as f64);
            let mut d = String::new();
            // A lone day is drawn one tenth of a day wide on each side.
            let half = if run.len() == 1 {
                WIDTH / (n.max(2) - 1) as f64 / 10.0
            } else {
                0.0
            };
            for (j, v) in above.iter().enumerate() {
                let (xa, xb) = (x(start + j, n) - half, x(start + j, n) + half);
                let _ = write!(
                    d,
                    "{}{xa:.1} {:.1}",
                    if j == 0 { "M" } else { " L" },
                    y(j, *v)
                );
                if half > 0.0 {
                    let _ = write!(d, " L{xb:.1} {:.1}", y(j, *v));
                }
            }
            for (j, v) in below.iter().enumerate().rev() {
                let (xa, xb) = (x(start + j, n) - half, x(start + j, n) + half);
                if half > 0.0 {
                    let _ = write!(d, " L{xb:.1} {:.1}", y(j, *v));
                }
                let _ = write!(d, " L{xa:.1} {:.1}", y(j, *v));
            }
            let _ = write!(
                out,
                r#"<path class="band {class}" d="{d} Z"><title>{name}</title></path>"#
            );
            below = above;
        }
    }
    grid(out, &labels);
    close(out, &labels);
}

/// A horizontal bar `part` of `whole` wide, on a track the full width.
pub fn bar(out: &mut String, part: i64, whole: i64, class: &str) {
    let w = if whole > 0 {
        (part.max(0) as f64 * 100.0 / whole as f64).min(100.0)
    } else {
        0.0
    };
    let _ = write!(
        out,
        r#"<svg class="bar" width="100%" height="14" aria-hidden="true"><rect class="track" width="100%" height="14" rx="3"/><rect class="fill {class}" width="{w:.2}%" height="14" rx="3"/></svg>"#
    );
}

/// A colour swatch for a legend.
pub fn swatch(out: &mut String, class: &str) {
    let _ = write!(
        out,
        r#"<svg class="swatch" width="12" height="12" aria-hidden="true"><rect class="band {class}" width="12" height="12" rx="2"/></svg>"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        for (max, want) in [
            (0, (1, 1)),
            (1, (1, 1)),
            (3, (1, 3)),
            (7, (2, 8)),
            (10, (2, 10)),
            (2104, (500, 2500)),
            (1999, (500, 2000)),
            (48_211, (10_000, 50_000)),
        ] {
            assert_eq!(ticks(max), want, "ticks({max})");
        }
    }

    #[test]
    fn counts_and_percents_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1234), "-1,234");
        assert_eq!(percent(1, 3), "33%");
        assert_eq!(percent(42, 1000), "4.2%");
        assert_eq!(percent(1, 100_000), "<0.1%");
        assert_eq!(percent(5, 0), "0%");
    }

    #[test]
    fn days_are_short_and_odd_days_kept() {
        assert_eq!(short_day("2026-12-01"), "Dec 1");
        assert_eq!(short_day("2026-01-31"), "Jan 31");
        assert_eq!(short_day("2026-13-01"), "2026-13-01");
        assert_eq!(short_day("today"), "today");
    }

    #[test]
    fn a_missing_day_breaks_the_line_and_a_lone_day_is_a_dot() {
        let days: Vec<String> = (1..=5).map(|d| format!("2026-12-0{d}")).collect();
        let mut out = String::new();
        line(
            &mut out,
            &days,
            &[Some(5), Some(6), None, Some(7), None],
            "c",
            "clusters",
            "x",
        );
        assert_eq!(out.matches(r#"class="line c""#).count(), 1, "{out}");
        assert_eq!(out.matches(r#"class="dot c""#).count(), 1, "{out}");
    }

    #[test]
    fn no_days_draw_an_empty_chart() {
        let mut out = String::new();
        line(&mut out, &[], &[], "c", "clusters", "x");
        stacked(&mut out, &[], &[], "x");
        assert_eq!(out.matches("</svg>").count(), 4, "{out}");
    }
}
