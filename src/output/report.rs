//! `dht sim paper`'s report: one page showing each figure (its SVG), our
//! numbers beside the paper's with the difference, the setup and the run's
//! cost, with the CSV and JSON behind each figure beside it.

use super::figure::{RunCost, number};
use dht::experiments::Figure;
use dht::experiments::published::Paper;
use std::fmt::Write;

/// One experiment of the report.
pub struct Entry {
    /// The short name its files carry (`fig8.svg`, `fig8.csv`).
    pub name: String,
    /// What was measured.
    pub figure: Figure,
    /// The paper's numbers, when the setup was the paper's.
    pub paper: Option<Paper>,
    /// How the setup differed from the paper's, when it did.
    pub differs: Vec<String>,
    /// What the run cost.
    pub cost: RunCost,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// "mean (p1–p99)", or the mean alone.
fn spread(mean: Option<f64>, p1: Option<f64>, p99: Option<f64>) -> String {
    match (mean, p1, p99) {
        (Some(m), Some(a), Some(b)) => format!("{} ({}–{})", number(m), number(a), number(b)),
        (Some(m), _, _) => number(m),
        _ => String::new(),
    }
}

/// The report's `index.html`.
pub fn index_html(entries: &[Entry]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>dht sim paper</title><style>\
body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
th{{background:#f3f3f3}}td.l,th.l{{text-align:left}}img{{max-width:100%;border:1px solid #eee}}\
.note{{color:#555}}</style></head><body>\n<h1>The Chord papers' experiments, run by dht</h1>\n\
<p>Each figure was measured on dht's protocol code in a simulated ring (<code>dht sim</code>); \
red points are the numbers the papers published, shown only where the setup was the paper's. \
Percentiles are the 1st and 99th.</p>\n"
    );
    for e in entries {
        let f = &e.figure;
        let _ = write!(
            h,
            "<h2 id=\"{n}\">{r}: {x}</h2>\n<p><img src=\"{n}.svg\" alt=\"{r}\"></p>\n",
            n = esc(&e.name),
            r = esc(&f.reproduces),
            x = esc(&f
                .measures
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")),
        );
        h.push_str("<table><tr><th class=\"l\">measure</th>");
        let _ = write!(h, "<th>{}</th><th>ours</th>", esc(&f.x_label));
        if e.paper.is_some() {
            h.push_str("<th>paper</th><th>difference of means</th>");
        }
        h.push_str("</tr>\n");
        for m in &f.measures {
            for p in &m.points {
                let theirs = e.paper.as_ref().and_then(|pp| pp.at(&m.name, p.x));
                let _ = write!(
                    h,
                    "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
                    esc(&m.name),
                    number(p.x),
                    spread(Some(p.mean), p.p1, p.p99)
                );
                if e.paper.is_some() {
                    let diff = theirs.and_then(|t| t.mean).map(|tm| {
                        let d = p.mean - tm;
                        if tm != 0.0 {
                            format!("{:+.3} ({:+.1}%)", d, 100.0 * d / tm)
                        } else {
                            format!("{d:+.3}")
                        }
                    });
                    let _ = write!(
                        h,
                        "<td>{}</td><td>{}</td>",
                        theirs
                            .map(|t| spread(t.mean, t.p1, t.p99))
                            .unwrap_or_default(),
                        diff.unwrap_or_default()
                    );
                }
                h.push_str("</tr>\n");
            }
        }
        h.push_str("</table>\n");
        if let Some(p) = &e.paper {
            let _ = writeln!(
                h,
                "<p class=\"note\">The paper: {} ({}). {}</p>",
                esc(&p.source),
                esc(&p.kind),
                esc(&p.note)
            );
        }
        if !e.differs.is_empty() {
            let _ = writeln!(
                h,
                "<p class=\"note\">Not compared with the paper: this setup differs ({}).</p>",
                esc(&e.differs.join(", "))
            );
        }
        let setup: Vec<String> = f.setup.iter().map(|(k, v)| format!("--{k} {v}")).collect();
        let _ = writeln!(
            h,
            "<p class=\"note\">Setup: <code>dht sim {} {}</code>. Run: {:.1} s, peak memory {} MB. \
Data: <a href=\"{n}.csv\">{n}.csv</a>, <a href=\"{n}.json\">{n}.json</a>.</p>",
            esc(&f.experiment),
            esc(&setup.join(" ")),
            e.cost.seconds,
            e.cost.peak_bytes / 1_000_000,
            n = esc(&e.name)
        );
    }
    h.push_str("</body></html>\n");
    h
}
