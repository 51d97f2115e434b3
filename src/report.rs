//! The readable report: one self-contained HTML file (inline CSS and SVG; no script, font or
//! network request) drawn from the **published** (suppressed) aggregate tables and the linkage
//! diagnostics.
//!
//! Charts: headline figures, the journey funnel with drop-off per stage, agency-to-agency flows
//! (Sankey-style), agency overlaps (UpSet-style), duplicate services by type, time to first
//! service, entry points and demographics, new persons per month, and the linkage
//! diagnostics. A suppressed cell is drawn as a hatched stub labelled "suppressed", never as a
//! number.

use std::fmt::Write as _;

use crate::analytics::{Breakdown, Cell, Table, STAGES};

/// What the report is drawn from.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The published tables (after suppression).
    pub tables: &'a [Table],
    /// Cutoff date used.
    pub as_of: String,
    /// Minimum published cell.
    pub min_cell: u64,
    /// Drop-off window in days.
    pub window_days: u32,
    /// The linkage run's `diagnostics.json`, parsed (`Null` when absent).
    pub diagnostics: &'a serde_json::Value,
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn table<'a>(tables: &'a [Table], name: &str) -> Option<&'a Table> {
    tables.iter().find(|t| t.name == name)
}

fn rows_all(t: Option<&Table>) -> Vec<&Cell> {
    t.map(|t| {
        t.cells
            .iter()
            .filter(|c| c.breakdown == Breakdown::All)
            .collect()
    })
    .unwrap_or_default()
}

fn fmt_count(c: Option<u64>) -> String {
    match c {
        Some(n) => n.to_string(),
        None => "suppressed".into(),
    }
}

const BAR: &str = "#2b6cb0";
const BAR2: &str = "#dd6b20";

/// One bar: label, value (`None`: suppressed), and optionally a second value drawn over it
/// (`Some(None)`: a suppressed second value).
type BarRow = (String, Option<u64>, Option<Option<u64>>);

/// A horizontal bar chart.
fn hbars(rows: &[BarRow], legend: Option<(&str, &str)>) -> String {
    let max = rows.iter().filter_map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let (label_w, bar_w, h) = (190.0, 420.0, 24.0);
    let height = rows.len() as f64 * h + 10.0 + if legend.is_some() { 22.0 } else { 0.0 };
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {} {height}\" width=\"{}\" height=\"{height}\" role=\"img\">",
        label_w + bar_w + 110.0,
        label_w + bar_w + 110.0
    );
    for (i, (label, v, second)) in rows.iter().enumerate() {
        let y = i as f64 * h + 4.0;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y + 15.0,
            esc(label)
        );
        match v {
            Some(n) => {
                let w = *n as f64 / max * bar_w;
                let _ = write!(
                    s,
                    "<rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{BAR}\"/>",
                    h - 6.0
                );
                let mut text = n.to_string();
                if let Some(second) = second {
                    match second {
                        Some(m) => {
                            let w2 = *m as f64 / max * bar_w;
                            let _ = write!(
                                s,
                                "<rect x=\"{label_w}\" y=\"{}\" width=\"{w2:.1}\" height=\"{}\" fill=\"{BAR2}\"/>",
                                y + (h - 6.0) / 2.0,
                                (h - 6.0) / 2.0
                            );
                            let _ = write!(text, " ({m})");
                        }
                        None => text.push_str(" (suppressed)"),
                    }
                }
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{}\">{text}</text>",
                    label_w + w + 6.0,
                    y + 15.0
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<rect x=\"{label_w}\" y=\"{y}\" width=\"12\" height=\"{}\" fill=\"url(#hatch)\"/>\
                     <text x=\"{}\" y=\"{}\" class=\"sup\">suppressed</text>",
                    h - 6.0,
                    label_w + 18.0,
                    y + 15.0
                );
            }
        }
    }
    if let Some((a, b)) = legend {
        let y = rows.len() as f64 * h + 10.0;
        let _ = write!(
            s,
            "<rect x=\"{label_w}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{BAR}\"/><text x=\"{}\" y=\"{}\">{}</text>\
             <rect x=\"{}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{BAR2}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            label_w + 16.0,
            y + 11.0,
            esc(a),
            label_w + 200.0,
            label_w + 216.0,
            y + 11.0,
            esc(b)
        );
    }
    s.push_str("</svg>");
    s
}

/// Sankey-style flows between agencies: each published transition is a band from the agency on
/// the left (where people were first) to the agency on the right (where they went next).
fn sankey(cells: &[&Cell]) -> String {
    let flows: Vec<(&str, &str, u64)> = cells
        .iter()
        .filter_map(|c| Some((c.dims[0].as_str(), c.dims[1].as_str(), c.count?)))
        .filter(|f| f.2 > 0)
        .collect();
    if flows.is_empty() {
        return "<p class=\"note\">No agency-to-agency flow is large enough to publish.</p>".into();
    }
    let mut left: Vec<(&str, u64)> = Vec::new();
    let mut right: Vec<(&str, u64)> = Vec::new();
    for &(a, b, n) in &flows {
        match left.iter_mut().find(|x| x.0 == a) {
            Some(x) => x.1 += n,
            None => left.push((a, n)),
        }
        match right.iter_mut().find(|x| x.0 == b) {
            Some(x) => x.1 += n,
            None => right.push((b, n)),
        }
    }
    left.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    right.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    let total: u64 = flows.iter().map(|f| f.2).sum();
    let gap = 8.0;
    let avail = 380.0;
    let scale = avail / total as f64;
    let height = avail + gap * left.len().max(right.len()) as f64 + 20.0;
    let (x0, x1, nodew) = (170.0, 520.0, 14.0);
    let place = |nodes: &[(&str, u64)]| -> Vec<f64> {
        let mut y = 10.0;
        nodes
            .iter()
            .map(|&(_, v)| {
                let top = y;
                y += v as f64 * scale + gap;
                top
            })
            .collect()
    };
    let (lpos, rpos) = (place(&left), place(&right));
    let mut lcur = lpos.clone();
    let mut rcur = rpos.clone();
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 720 {height}\" width=\"720\" height=\"{height}\" role=\"img\">"
    );
    let mut sorted = flows.clone();
    sorted.sort_by(|x, y| y.2.cmp(&x.2).then(x.0.cmp(y.0)).then(x.1.cmp(y.1)));
    for (a, b, n) in sorted {
        let (li, ri) = (
            left.iter().position(|x| x.0 == a).unwrap_or(0),
            right.iter().position(|x| x.0 == b).unwrap_or(0),
        );
        let w = n as f64 * scale;
        let (ya, yb) = (lcur[li] + w / 2.0, rcur[ri] + w / 2.0);
        lcur[li] += w;
        rcur[ri] += w;
        let (xa, xb) = (x0 + nodew, x1);
        let xm = (xa + xb) / 2.0;
        let _ = write!(
            s,
            "<path d=\"M{xa},{ya:.1} C{xm},{ya:.1} {xm},{yb:.1} {xb},{yb:.1}\" stroke=\"{BAR}\" stroke-opacity=\"0.35\" stroke-width=\"{:.1}\" fill=\"none\"><title>{} → {}: {n}</title></path>",
            w.max(1.0),
            esc(a),
            esc(b)
        );
    }
    for (top, (n, v)) in lpos.iter().zip(&left) {
        let _ = write!(
            s,
            "<rect x=\"{x0}\" y=\"{top:.1}\" width=\"{nodew}\" height=\"{:.1}\" fill=\"#2c5282\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{} ({v})</text>",
            *v as f64 * scale,
            x0 - 6.0,
            top + (*v as f64 * scale) / 2.0 + 4.0,
            esc(n)
        );
    }
    for (top, (n, v)) in rpos.iter().zip(&right) {
        let _ = write!(
            s,
            "<rect x=\"{x1}\" y=\"{top:.1}\" width=\"{nodew}\" height=\"{:.1}\" fill=\"#2c5282\"/><text x=\"{}\" y=\"{:.1}\">{} ({v})</text>",
            *v as f64 * scale,
            x1 + nodew + 6.0,
            top + (*v as f64 * scale) / 2.0 + 4.0,
            esc(n)
        );
    }
    s.push_str("</svg>");
    s
}

/// UpSet-style overlaps: one column per agency combination (largest first), a bar for its
/// persons and a dot matrix below naming its agencies.
fn upset(cells: &[&Cell], agencies: &[String]) -> String {
    let mut combos: Vec<(Vec<&str>, Option<u64>)> = cells
        .iter()
        .filter(|c| c.count != Some(0))
        .map(|c| (c.dims[0].split('+').collect(), c.count))
        .collect();
    combos.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown: Vec<_> = combos.iter().filter(|c| c.1.is_some()).take(20).collect();
    let hidden = combos.len() - shown.len();
    let max = shown.iter().filter_map(|c| c.1).max().unwrap_or(1).max(1) as f64;
    let (lw, cw, bh, rh) = (150.0, 28.0, 160.0, 18.0);
    let width = lw + cw * shown.len().max(1) as f64 + 20.0;
    let height = bh + 20.0 + rh * agencies.len() as f64 + 10.0;
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">"
    );
    for (i, (set, n)) in shown.iter().enumerate() {
        let x = lw + i as f64 * cw;
        let n = n.unwrap_or(0);
        let h = n as f64 / max * (bh - 16.0);
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{}\" height=\"{h:.1}\" fill=\"{BAR}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"small\">{n}</text>",
            x + 4.0,
            bh - h,
            cw - 8.0,
            x + cw / 2.0,
            bh - h - 3.0
        );
        let ys: Vec<f64> = agencies
            .iter()
            .enumerate()
            .filter(|(_, a)| set.contains(&a.as_str()))
            .map(|(j, _)| bh + 20.0 + j as f64 * rh + rh / 2.0)
            .collect();
        if let (Some(a), Some(b)) = (ys.first(), ys.last()) {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{a:.1}\" y2=\"{b:.1}\" stroke=\"#1a202c\" stroke-width=\"2\"/>",
                x + cw / 2.0
            );
        }
        for (j, a) in agencies.iter().enumerate() {
            let on = set.contains(&a.as_str());
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{}\"/>",
                x + cw / 2.0,
                bh + 20.0 + j as f64 * rh + rh / 2.0,
                if on { "#1a202c" } else { "#e2e8f0" }
            );
        }
    }
    for (j, a) in agencies.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            lw - 8.0,
            bh + 20.0 + j as f64 * rh + rh / 2.0 + 4.0,
            esc(a)
        );
    }
    s.push_str("</svg>");
    if hidden > 0 {
        let _ = write!(
            s,
            "<p class=\"note\">{hidden} further combinations are suppressed (fewer persons than the minimum cell) and not drawn.</p>"
        );
    }
    s
}

fn monthly(cells: &[&Cell]) -> String {
    let months: Vec<&&Cell> = cells.iter().filter(|c| c.group != "unknown").collect();
    if months.is_empty() {
        return String::new();
    }
    let max = months
        .iter()
        .filter_map(|c| c.count)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (w, h, pad) = (10.0f64.max(640.0 / months.len() as f64), 140.0, 30.0);
    let width = pad + w * months.len() as f64 + 10.0;
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {}\" width=\"{width}\" height=\"{}\" role=\"img\">",
        h + 40.0,
        h + 40.0
    );
    for (i, c) in months.iter().enumerate() {
        let x = pad + i as f64 * w;
        match c.count {
            Some(n) => {
                let bh = n as f64 / max * h;
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{BAR}\"><title>{}: {n}</title></rect>",
                    h - bh + 5.0,
                    w - 2.0,
                    esc(&c.group)
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" fill=\"url(#hatch)\"><title>{}: suppressed</title></rect>",
                    h - 1.0,
                    w - 2.0,
                    esc(&c.group)
                );
            }
        }
        if i % 6 == 0 {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" class=\"small\">{}</text>",
                h + 22.0,
                esc(&c.group)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Box plots of days to first service (quartiles as the box, the median as a line, the mean as a
/// dot) for all persons, minors and adults; a suppressed group gets a hatched stub.
fn box_plots(t: Option<&Table>) -> String {
    let Some(t) = t else { return String::new() };
    let rows: Vec<&Cell> = t
        .cells
        .iter()
        .filter(|c| c.breakdown != Breakdown::FirstContactMonth && c.group != "unknown")
        .collect();
    let max = rows
        .iter()
        .flat_map(|c| c.values.iter().flatten())
        .fold(1.0f64, |a, &b| a.max(b));
    let (lw, bw, h) = (120.0, 400.0, 34.0);
    let x = |d: f64| lw + d / max * bw;
    let height = rows.len() as f64 * h + 30.0;
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {} {height}\" width=\"{}\" height=\"{height}\" role=\"img\">",
        lw + bw + 420.0,
        lw + bw + 420.0
    );
    for (i, c) in rows.iter().enumerate() {
        let y = i as f64 * h + 6.0;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            lw - 8.0,
            y + 16.0,
            esc(&c.group)
        );
        let v = |k: usize| c.values.get(k).copied().flatten();
        match (v(0), v(1), v(2), v(3)) {
            (Some(mean), Some(q1), Some(med), Some(q3)) => {
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"22\" fill=\"{BAR}\" fill-opacity=\"0.35\" stroke=\"{BAR}\"/>\
                     <line x1=\"{2:.1}\" x2=\"{2:.1}\" y1=\"{y}\" y2=\"{3}\" stroke=\"#1a202c\" stroke-width=\"2\"/>\
                     <circle cx=\"{4:.1}\" cy=\"{5}\" r=\"4\" fill=\"{BAR2}\"/>\
                     <text x=\"{6:.1}\" y=\"{7}\" class=\"small\">median {med:.0} d, middle half {q1:.0}–{q3:.0} d, mean {mean:.0} d</text>",
                    x(q1),
                    (x(q3) - x(q1)).max(2.0),
                    x(med),
                    y + 22.0,
                    x(mean),
                    y + 11.0,
                    lw + bw + 16.0,
                    y + 15.0,
                );
            }
            _ => {
                let _ = write!(
                    s,
                    "<rect x=\"{lw}\" y=\"{y}\" width=\"12\" height=\"22\" fill=\"url(#hatch)\"/><text x=\"{}\" y=\"{}\" class=\"sup\">suppressed</text>",
                    lw + 18.0,
                    y + 15.0
                );
            }
        }
    }
    let axis_y = rows.len() as f64 * h + 14.0;
    for k in 0..=4 {
        let d = max * k as f64 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{axis_y}\" class=\"small\" text-anchor=\"middle\">{d:.0} d</text>",
            x(d)
        );
    }
    s.push_str("</svg>");
    s
}

fn stat_table(t: Option<&Table>) -> String {
    let Some(t) = t else { return String::new() };
    let mut s = String::from(
        "<table><tr><th>group</th><th>persons</th><th>mean</th><th>25%</th><th>median</th><th>75%</th></tr>",
    );
    for c in t
        .cells
        .iter()
        .filter(|c| c.breakdown != Breakdown::FirstContactMonth)
    {
        let v = |i: usize| {
            c.values
                .get(i)
                .copied()
                .flatten()
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "–".into())
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.group),
            fmt_count(c.count),
            v(0),
            v(1),
            v(2),
            v(3)
        );
    }
    s.push_str("</table>");
    s
}

/// The headline figures: (unique persons, persons with a duplicate service, the stage where
/// most persons dropped off with their number). `None` where suppressed.
pub fn headline(tables: &[Table]) -> (Option<u64>, Option<u64>, Option<(String, u64)>) {
    let unique = table(tables, "unique_persons").and_then(|t| t.all(&[]));
    let dup = table(tables, "duplicate_services").and_then(|t| t.all(&["any", "persons"]));
    let drop = rows_all(table(tables, "drop_off"))
        .into_iter()
        .filter_map(|c| Some((c.dims[0].clone(), c.count?)))
        .filter(|d| d.1 > 0)
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
    (unique, dup, drop)
}

/// Renders the report.
pub fn render(input: &ReportInput<'_>) -> String {
    let t = input.tables;
    let (unique, dup, drop) = headline(t);
    let median = table(t, "time_to_first_service")
        .and_then(|t| t.cells.iter().find(|c| c.breakdown == Breakdown::All))
        .and_then(|c| c.values.get(2).copied().flatten());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>crosswalk report, as of {as_of}</title><style>{CSS}</style></head><body>\
         <svg width=\"0\" height=\"0\" style=\"position:absolute\"><defs><pattern id=\"hatch\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"2\" height=\"4\" fill=\"#a0aec0\"/></pattern></defs></svg>\
         <main><h1>Victim journeys across agencies</h1>\
         <p class=\"lede\">Linked, pseudonymous records of every participating agency, as of <b>{as_of}</b>. \
         Counts from 1 to {k1} are suppressed (shown as <i>suppressed</i>), and further cells are withheld where they would let a suppressed one be worked out. \
         No name, birth date or other identifier was used to produce this report outside the agencies.</p>",
        as_of = esc(&input.as_of),
        k1 = input.min_cell.saturating_sub(1),
    );
    // Headline.
    let _ = write!(
        h,
        "<section class=\"cards\"><div class=\"card\"><div class=\"big\">{}</div>unique persons</div>\
         <div class=\"card\"><div class=\"big\">{}</div>persons who received the same type of service from two agencies at once</div>\
         <div class=\"card\"><div class=\"big\">{}</div>{}</div>\
         <div class=\"card\"><div class=\"big\">{}</div>median days from first contact to first service</div></section>",
        fmt_count(unique),
        fmt_count(dup),
        drop.as_ref().map(|d| d.1.to_string()).unwrap_or_else(|| "–".into()),
        drop.as_ref()
            .map(|d| format!("persons stopped at <b>{}</b>, the biggest drop-off", esc(&d.0.replace('_', " "))))
            .unwrap_or_else(|| "no published drop-off".into()),
        median.map(|m| format!("{m:.0}")).unwrap_or_else(|| "–".into()),
    );
    // Funnel.
    let funnel = rows_all(table(t, "funnel"));
    let drops = rows_all(table(t, "drop_off"));
    let rows: Vec<_> = STAGES
        .iter()
        .map(|s| {
            let reached = funnel
                .iter()
                .find(|c| c.dims[0] == *s)
                .and_then(|c| c.count);
            let dropped = drops.iter().find(|c| c.dims[0] == *s).map(|c| c.count);
            (s.replace('_', " "), reached, dropped)
        })
        .collect();
    let _ = write!(
        h,
        "<section><h2>1. The journey funnel</h2><p>Persons with at least one event at each stage, and (orange) those whose journey stopped there: \
         no further stage and no event of any kind in the last {} days.</p>{}</section>",
        input.window_days,
        hbars(&rows, Some(("reached the stage", "stopped there")))
    );
    // Flows.
    let pre = table(t, "pre_referral_only").and_then(|t| t.all(&[]));
    let _ = write!(
        h,
        "<section><h2>2. Where people go next</h2><p>Each band is the persons whose next agency (by date of first contact) was the one on the right. \
         Persons seen only before a referral and never by a service provider: <b>{}</b>.</p>{}</section>",
        fmt_count(pre),
        sankey(&rows_all(table(t, "agency_transitions")))
    );
    // Overlaps.
    let agencies: Vec<String> = {
        let mut a: Vec<String> = rows_all(table(t, "persons_per_agency"))
            .iter()
            .map(|c| c.dims[0].clone())
            .collect();
        a.sort();
        a.dedup();
        a
    };
    let per_agency: Vec<_> = rows_all(table(t, "persons_per_agency"))
        .iter()
        .map(|c| (c.dims[0].clone(), c.count, None))
        .collect();
    let _ = write!(
        h,
        "<section><h2>3. Who sees whom: agency overlaps</h2><p>Persons per agency:</p>{}<p>Persons per exact combination of agencies (UpSet-style: the dots below each bar name the agencies).</p>{}</section>",
        hbars(&per_agency, None),
        upset(&rows_all(table(t, "agency_combinations")), &agencies)
    );
    // Duplicate services.
    let dups = rows_all(table(t, "duplicate_services"));
    let rows: Vec<_> = crate::analytics::SERVICE_TYPES
        .iter()
        .map(|s| {
            let get = |m: &str| {
                dups.iter()
                    .find(|c| c.dims[0] == *s && c.dims[1] == m)
                    .and_then(|c| c.count)
            };
            (s.replace('_', " "), get("persons"), Some(get("episodes")))
        })
        .collect();
    let _ = write!(
        h,
        "<section><h2>4. The same service twice</h2><p>Persons who received one type of service from two or more agencies over overlapping dates, and the episodes of overlap (orange).</p>{}</section>",
        hbars(&rows, Some(("persons", "episodes")))
    );
    // Time to first service.
    let _ = write!(
        h,
        "<section><h2>5. Time to first service</h2><p>Days from a person's first event at any agency to their first service event: the box spans the middle half of persons, the line is the median, the dot the mean.</p>{}</section>",
        box_plots(table(t, "time_to_first_service")) + &stat_table(table(t, "time_to_first_service"))
    );
    // Entry points and demographics.
    let entry: Vec<_> = rows_all(table(t, "entry_points"))
        .iter()
        .map(|c| (c.dims[0].replace('_', " "), c.count, None))
        .collect();
    let demo = rows_all(table(t, "demographics"));
    let _ = write!(
        h,
        "<section><h2>6. Entry points and who the persons are</h2><p>Agency type of each person's first contact:</p>{}",
        hbars(&entry, None)
    );
    for attr in ["age_band", "sex", "trafficking_type"] {
        let rows: Vec<_> = demo
            .iter()
            .filter(|c| c.dims[0] == attr)
            .map(|c| (c.dims[1].clone(), c.count, None))
            .collect();
        let _ = write!(
            h,
            "<p>{} at first contact:</p>{}",
            attr.replace('_', " "),
            hbars(&rows, None)
        );
    }
    h.push_str("</section>");
    // Monthly.
    let months: Vec<&Cell> = table(t, "unique_persons")
        .map(|t| {
            t.cells
                .iter()
                .filter(|c| c.breakdown == Breakdown::FirstContactMonth)
                .collect()
        })
        .unwrap_or_default();
    let _ = write!(
        h,
        "<section><h2>7. New persons per month of first contact</h2>{}</section>",
        monthly(&months)
    );
    // Diagnostics.
    let d = input.diagnostics;
    let mut diag = String::from("<table>");
    for key in [
        "records",
        "clks",
        "candidate_pairs",
        "pairs_at_or_above_threshold",
        "borderline_pairs",
        "persons",
        "threshold",
        "cohesion",
        "kernel",
        "hardening",
    ] {
        if let Some(v) = d.get(key).filter(|v| !v.is_null()) {
            let _ = write!(
                diag,
                "<tr><th>{}</th><td>{}</td></tr>",
                esc(&key.replace('_', " ")),
                esc(v.to_string().trim_matches('"'))
            );
        }
    }
    diag.push_str("</table>");
    let hist: Vec<_> = d
        .get("score_histogram")
        .and_then(|v| v.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (format!("Dice {k}"), v.as_u64(), None))
                .collect()
        })
        .unwrap_or_default();
    let (intro, chart, own) = match d.get("model").filter(|m| m.is_object()) {
        // The probabilistic model: its weights and its own estimates, not the Dice histogram
        // (which then only shows how candidates were found).
        Some(m) => (
            format!(
                "Records were linked by a match model (Fellegi-Sunter, issue #18; its parameters: \
                 {}): each identifier group's agreement adds or subtracts evidence (its weight, \
                 in bits), a missing group adds none, and records join a person while their \
                 average match probability stays high enough. {}",
                esc(m
                    .get("parameters")
                    .and_then(|p| p.as_str())
                    .unwrap_or("fitted on this run")),
                match m.get("event_gap").and_then(|v| v.as_bool()) {
                    Some(false) => "The days between records' events were not weighed \
                                    (--no-event-gap).",
                    _ => "The days between two records' events weighed too (the event gap: \
                          one person's records follow one journey); figures of time lean on \
                          it a little, and a run with --no-event-gap shows how much.",
                }
            ),
            weight_chart(m) + &match_weights(m),
            model_estimates(m),
        ),
        None => (
            "Record pairs whose CLK similarity (Dice) reached the threshold, by score. \
             A valley just above the threshold means the threshold sits between matches and non-matches."
                .to_string(),
            hbars(&hist, None),
            uncertainty(d),
        ),
    };
    let _ = write!(
        h,
        "<section><h2>8. How the records were linked</h2><p>{}</p>{}{}\
         <p class=\"note\">Persons are linked, not known: a person recorded under an alias that shares no name with their other records \
         is counted twice, and twins or siblings recorded with few identifiers can be counted once. {}</p></section>",
        esc(&intro),
        diag,
        chart,
        own
    );
    let _ = writeln!(
        h,
        "<footer>crosswalk {} · tables in <code>aggregates/</code> (docs/aggregates.md explains every column) · suppression: minimum cell {}</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        input.min_cell
    );
    h
}

/// The comparisons of a model section (`diagnostics.json` → `model.comparisons`): each one's
/// name and levels (empty when missing). A comparison whose every level weighs 0 is left out:
/// the run had nothing to compare (the names at the birth date without such parts).
fn comparisons(m: &serde_json::Value) -> impl Iterator<Item = (&str, &[serde_json::Value])> {
    m.get("comparisons")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
                c.get("levels")
                    .and_then(|v| v.as_array())
                    .map_or(&[][..], |l| l.as_slice()),
            )
        })
        .filter(|(_, levels)| {
            levels.is_empty()
                || levels
                    .iter()
                    .any(|l| l.get("weight").and_then(|w| w.as_f64()) != Some(0.0))
        })
}

/// The model's match weights (`diagnostics.json` → `model.comparisons`) as a chart: one bar per
/// comparison level, drawn left of the axis (evidence against a match) or right (for), with
/// the level's meaning and its weight in bits; then what the names frequency adjustment adds.
fn weight_chart(m: &serde_json::Value) -> String {
    let mut rows: Vec<(String, f64)> = Vec::new();
    for (name, levels) in comparisons(m) {
        for l in levels {
            let label = l.get("label").and_then(|v| v.as_str()).unwrap_or("");
            if let Some(w) = l.get("weight").and_then(|v| v.as_f64()) {
                rows.push((format!("{name} {label}"), w));
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let max = rows.iter().map(|r| r.1.abs()).fold(1.0, f64::max);
    // A gap between the labels and the longest bar against a match holds its value.
    let (label_w, gap, half, h) = (170.0, 44.0, 250.0, 18.0);
    let axis = label_w + gap + half;
    let height = rows.len() as f64 * h + 28.0;
    let width = axis + half + 60.0;
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">"
    );
    for (i, (label, w)) in rows.iter().enumerate() {
        let y = i as f64 * h + 4.0;
        let len = w.abs() / max * half;
        let (x, fill) = if *w < 0.0 {
            (axis - len, BAR2)
        } else {
            (axis, BAR)
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"small\">{}</text>\
             <rect x=\"{x:.1}\" y=\"{y}\" width=\"{len:.1}\" height=\"{}\" fill=\"{fill}\"/>\
             <text x=\"{:.1}\" y=\"{}\" class=\"small\" text-anchor=\"{}\">{w:+.1}</text>",
            label_w - 6.0,
            y + 12.0,
            esc(label),
            h - 5.0,
            if *w < 0.0 { x - 4.0 } else { x + len + 4.0 },
            y + 12.0,
            if *w < 0.0 { "end" } else { "start" },
        );
    }
    let bottom = rows.len() as f64 * h + 8.0;
    let _ = write!(
        s,
        "<line x1=\"{axis}\" y1=\"0\" x2=\"{axis}\" y2=\"{bottom}\" stroke=\"#4a5568\"/>\
         <text x=\"{}\" y=\"{}\" class=\"small\" text-anchor=\"end\">against a match</text>\
         <text x=\"{}\" y=\"{}\" class=\"small\">for a match (bits)</text></svg>",
        axis - 6.0,
        bottom + 14.0,
        axis + 6.0,
        bottom + 14.0
    );
    let f = m.get("names_frequency");
    let get = |k: &str| f.and_then(|f| f.get(k)).and_then(|v| v.as_f64());
    if let (Some(kappa), Some(alpha), Some(clamp)) =
        (get("kappa"), get("alpha"), get("max_adjustment"))
    {
        if kappa > 0.0 {
            use crate::link::frequency::adjustment;
            let rare = adjustment(kappa, 1, alpha, clamp);
            let common = adjustment(kappa, 10, alpha, clamp);
            let _ = write!(
                s,
                "<p class=\"note\">Names that agree (or are a typo apart) are weighed by how many \
                 persons hold the name, estimated from the run's own records: a name held by one \
                 person adds {rare:+.1} bits to its level's weight, a name held by ten adds \
                 {common:+.1}.</p>"
            );
            if get("neighbourhood_kappa").is_some() {
                let _ = write!(
                    s,
                    "<p class=\"note\">Names that agree only roughly (0.6 to 0.95) are weighed \
                     instead by how many persons' names come as near: alike names among many \
                     lookalikes weigh less than alike names nobody else resembles (from 0.6 \
                     to 0.75 only less: that far apart, no lookalikes are counted).</p>"
                );
            }
        }
    }
    s
}

/// The model's match weights (`diagnostics.json` → `model.comparisons`) as a table: one row
/// per comparison, one column per level, the weight in bits (positive: evidence for a match).
fn match_weights(m: &serde_json::Value) -> String {
    let mut t = String::from(
        "<table><tr><th>match weights (bits)</th><th>level 1 (disagrees)</th><th>2</th><th>3</th><th>4</th><th>5 (agrees most)</th></tr>",
    );
    for (name, levels) in comparisons(m) {
        let _ = write!(t, "<tr><th>{}</th>", esc(name));
        for i in 0..5 {
            let w = levels
                .get(i)
                .and_then(|l| l.get("weight"))
                .and_then(|w| w.as_f64());
            let _ = match w {
                Some(w) => write!(t, "<td>{w:+.1}</td>"),
                None => write!(t, "<td></td>"),
            };
        }
        t.push_str("</tr>");
    }
    t.push_str("</table><p class=\"note\">A missing identifier weighs 0. The weights are this run's own estimates, from its records alone.</p>");
    t
}

/// What the model says about its own errors: expected false matches among the pairs it takes
/// as matches, expected missed matches among the others.
fn model_estimates(m: &serde_json::Value) -> String {
    let get = |k: &str| m.get(k).and_then(|v| v.as_f64());
    match (
        get("likely_matches"),
        get("expected_false_matches"),
        get("expected_missed_matches"),
    ) {
        (Some(l), Some(f), Some(miss)) => format!(
            "By its own estimate, the model expects about {f:.0} false matches among the {l:.0} \
             record pairs it scores as more likely than not the same person, and about {miss:.0} \
             true matches among the pairs it scores below that: these are the model's beliefs \
             about this run, not accuracy measured against a truth."
        ),
        _ => String::new(),
    }
}

/// What this run itself says about its uncertainty: the pairs that scored just above the
/// threshold, each of which may as well be a false as a true match. Accuracy measured on other
/// data (a synthetic world) is not this run's and is not printed here.
fn uncertainty(d: &serde_json::Value) -> String {
    let borderline = d.get("borderline_pairs").and_then(|v| v.as_u64());
    let linked = d
        .get("pairs_at_or_above_threshold")
        .and_then(|v| v.as_u64());
    match (borderline, linked) {
        (Some(b), Some(l)) if l > 0 => format!(
            "Of this run's {} record pairs at or above the threshold, {} ({:.1}%) scored within 0.05 of it: \
             each of these could as well be two persons, and the persons they join are the ones a \
             different threshold would count differently.",
            l,
            b,
            100.0 * b as f64 / l as f64
        ),
        _ => String::new(),
    }
}

const CSS: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1a202c;background:#f7fafc;margin:0}\
main{max-width:980px;margin:0 auto;padding:24px}h1{font-size:26px;margin:0 0 6px}h2{font-size:19px;margin:0 0 6px}\
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:16px 20px;margin:16px 0;overflow-x:auto}\
.lede{color:#4a5568}.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;background:none;border:0;padding:0}\
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:14px;color:#4a5568}.big{font-size:30px;font-weight:700;color:#2b6cb0}\
svg.chart text{font-size:12px;fill:#2d3748}svg.chart text.small{font-size:10px}svg.chart text.sup{fill:#718096;font-style:italic}\
table{border-collapse:collapse;margin:8px 0}td,th{border-bottom:1px solid #e2e8f0;padding:4px 10px;text-align:right}th{text-align:left}\
.note{color:#718096;font-size:13px}footer{color:#718096;font-size:12px;margin-top:24px}";

#[cfg(test)]
mod tests {
    use super::*;

    /// A comparison the run could not make (all its weights 0) is not drawn.
    #[test]
    fn comparisons_without_evidence_are_left_out() {
        let m = serde_json::json!({"comparisons": [
            {"name": "names", "levels": [{"label": "< 0.6", "weight": -3.2}, {"weight": 0.0}]},
            {"name": "given_dob", "levels": [{"label": "< 0.5", "weight": 0.0}, {"weight": 0.0}]},
        ]});
        let names: Vec<&str> = comparisons(&m).map(|c| c.0).collect();
        assert_eq!(names, vec!["names"]);
        assert!(!weight_chart(&m).contains("given_dob"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
