//! `dht ring --svg`: the ring as a circle in SVG, for reports and slides.
//! Each node is a dot at the angle of its id (clockwise from id 0 at the
//! top), keys are ticks outside the circle (counted per arc), and a lookup
//! is drawn as arrows from node to node, as in the paper's figures. Every
//! mark carries the names it shows as `data-` attributes so that tools and
//! tests can read the picture back.

use dht::app::circle::{Circle, CircleNode};
use std::f64::consts::TAU;
use std::fmt::Write;

/// Picture size in pixels (square).
const SIZE: f64 = 800.0;
/// The ring's radius.
const RADIUS: f64 = 300.0;
/// Longest key tick.
const TICK: f64 = 40.0;
/// Rings up to this many nodes get name labels.
const LABELS_UP_TO: usize = 48;
/// Rings up to this many nodes get a dot per node; a bigger ring gets a
/// band of ticks counting its nodes per arc, and dots for the nodes a
/// lookup visits only: a dot per node would make a picture of a million
/// nodes hundreds of megabytes, and the dots overlap long before that.
const DOTS_UP_TO: usize = 10_000;
/// Longest node tick (drawn inward).
const NODE_TICK: f64 = 30.0;

/// A lookup to draw over the circle.
#[derive(Debug, Clone)]
pub struct Route {
    /// The key looked up.
    pub key: String,
    /// Where the key lies, as a fraction of a turn.
    pub key_at: f64,
    /// The nodes asked, from the start node to the key's predecessor.
    pub path: Vec<String>,
    /// The key's successor, as the lookup found it.
    pub successor: String,
    /// Forwards along the path.
    pub hops: usize,
    /// Requests sent.
    pub messages: u64,
}

/// The point at fraction `at` of a turn, `r` from the centre.
fn point(at: f64, r: f64) -> (f64, f64) {
    let a = at * TAU;
    (SIZE / 2.0 + r * a.sin(), SIZE / 2.0 - r * a.cos())
}

/// Text made safe for XML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The SVG document of `circle`, with `route` drawn over it if given.
pub fn ring(circle: &Circle, route: Option<&Route>) -> String {
    let mut s = String::new();
    let n = circle.nodes.len();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="dht-ring" viewBox="0 0 {SIZE} {SIZE}" width="{SIZE}" height="{SIZE}" data-nodes="{n}" data-keys="{}" data-bits="{}">"#,
        circle.keys, circle.bits
    );
    let _ = writeln!(
        s,
        "<title>Chord ring: {n} nodes, {} keys (m={}, r={})</title>",
        circle.keys, circle.bits, circle.replicas
    );
    s.push_str(concat!(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">",
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#d9480f\"/></marker></defs>\n",
        "<style>.ring{fill:none;stroke:#868e96;stroke-width:1.5}.keys{stroke:#74c0fc;stroke-width:1.5}",
        ".node{fill:#1c7ed6;stroke:#fff;stroke-width:0.5}.node-density{stroke:#1c7ed6;stroke-width:1}.label{font:11px sans-serif;fill:#343a40}",
        ".hop{stroke:#d9480f;stroke-width:2;fill:none}.hop.final{stroke-dasharray:5 4}",
        ".key{fill:#f59f00;stroke:#343a40}.start{fill:#d9480f}.caption{font:14px sans-serif;fill:#212529}</style>\n",
    ));
    s.push_str(r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    s.push('\n');
    let c = SIZE / 2.0;
    let _ = writeln!(
        s,
        r#"<circle class="ring" cx="{c}" cy="{c}" r="{RADIUS}"/>"#
    );
    key_ticks(&mut s, circle);
    let dot = (900.0 / n.max(1) as f64).clamp(1.5, 6.0);
    let dotted: Vec<&CircleNode> = if n <= DOTS_UP_TO {
        circle.nodes.iter().collect()
    } else {
        node_ticks(&mut s, circle);
        let on_route = |name: &str| {
            route.is_some_and(|r| r.successor == name || r.path.iter().any(|p| p == name))
        };
        circle.nodes.iter().filter(|c| on_route(&c.name)).collect()
    };
    s.push_str("<g class=\"nodes\">\n");
    for node in dotted {
        let (x, y) = point(node.at, RADIUS);
        let _ = writeln!(
            s,
            r#"<circle class="node" data-name="{name}" data-id="{id}" cx="{x:.2}" cy="{y:.2}" r="{dot}"><title>{name} ({id}): {k} keys</title></circle>"#,
            name = esc(&node.name),
            id = esc(&node.id),
            k = node.keys
        );
    }
    s.push_str("</g>\n");
    if n <= LABELS_UP_TO {
        s.push_str("<g class=\"labels\">\n");
        for node in &circle.nodes {
            let (x, y) = point(node.at, RADIUS - 18.0);
            let _ = writeln!(
                s,
                r#"<text class="label" x="{x:.2}" y="{y:.2}" text-anchor="middle" dominant-baseline="middle">{}</text>"#,
                esc(&node.name)
            );
        }
        s.push_str("</g>\n");
    }
    if let Some(route) = route {
        lookup(&mut s, circle, route);
    }
    s.push_str("</svg>\n");
    s
}

/// A big ring's nodes as ticks inward from the ring, one per arc holding
/// any, longer where more nodes lie.
fn node_ticks(s: &mut String, circle: &Circle) {
    let bins = &circle.node_bins;
    let most = bins.iter().copied().max().unwrap_or(0).max(1);
    let mut d = String::new();
    for (i, &count) in bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let at = (i as f64 + 0.5) / bins.len() as f64;
        let len = 2.0 + NODE_TICK * f64::from(count) / f64::from(most);
        let (x1, y1) = point(at, RADIUS - 3.0);
        let (x2, y2) = point(at, RADIUS - 3.0 - len);
        let _ = write!(d, "M{x1:.1} {y1:.1}L{x2:.1} {y2:.1}");
    }
    let _ = writeln!(
        s,
        r#"<path class="node-density" d="{d}"><title>{} nodes, counted per {}° of the ring</title></path>"#,
        circle.node_count,
        360.0 / bins.len() as f64
    );
}

/// The keys as ticks outward from the ring, one per non-empty arc, longer
/// where more keys lie.
fn key_ticks(s: &mut String, circle: &Circle) {
    let most = circle.key_bins.iter().copied().max().unwrap_or(0);
    if most == 0 {
        return;
    }
    let bins = circle.key_bins.len() as f64;
    let mut d = String::new();
    for (i, &count) in circle.key_bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let at = (i as f64 + 0.5) / bins;
        let len = 4.0 + TICK * f64::from(count) / f64::from(most);
        let (x1, y1) = point(at, RADIUS + 4.0);
        let (x2, y2) = point(at, RADIUS + 4.0 + len);
        let _ = write!(d, "M{x1:.1} {y1:.1}L{x2:.1} {y2:.1}");
    }
    let _ = writeln!(
        s,
        r#"<path class="keys" d="{d}"><title>{} keys</title></path>"#,
        circle.keys
    );
}

/// The lookup: the key's place, the start node, an arrow per hop and a
/// dashed one from the key's predecessor to its successor.
fn lookup(s: &mut String, circle: &Circle, route: &Route) {
    let _ = writeln!(
        s,
        r#"<g class="lookup" data-key="{}" data-hops="{}" data-messages="{}">"#,
        esc(&route.key),
        route.hops,
        route.messages
    );
    let (kx, ky) = point(route.key_at, RADIUS);
    let _ = writeln!(
        s,
        r#"<circle class="key" cx="{kx:.2}" cy="{ky:.2}" r="7"><title>key {}</title></circle>"#,
        esc(&route.key)
    );
    if let Some(start) = route.path.first().and_then(|p| circle.at_of(p)) {
        let (x, y) = point(start, RADIUS);
        let _ = writeln!(
            s,
            r#"<circle class="start" cx="{x:.2}" cy="{y:.2}" r="8" fill-opacity="0.5"/>"#
        );
    }
    let mut steps: Vec<(&str, &str, bool)> = route
        .path
        .windows(2)
        .map(|w| (w[0].as_str(), w[1].as_str(), false))
        .collect();
    if let Some(last) = route.path.last()
        && *last != route.successor
    {
        steps.push((last, &route.successor, true));
    }
    for (from, to, last) in steps {
        let (Some(a), Some(b)) = (circle.at_of(from), circle.at_of(to)) else {
            continue;
        };
        let (x1, y1) = point(a, RADIUS);
        let (x2, y2) = point(b, RADIUS);
        let _ = writeln!(
            s,
            r#"<line class="hop{}" data-from="{}" data-to="{}" x1="{x1:.2}" y1="{y1:.2}" x2="{x2:.2}" y2="{y2:.2}" marker-end="url(#arrow)"/>"#,
            if last { " final" } else { "" },
            esc(from),
            esc(to)
        );
    }
    let _ = writeln!(
        s,
        r#"<text class="caption" x="16" y="{}">lookup of {}: {} hops, {} messages, served by {}</text>"#,
        SIZE - 16.0,
        esc(&format!("{:?}", route.key)),
        route.hops,
        route.messages,
        esc(&route.successor)
    );
    s.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use dht::app::circle::CircleNode;

    fn circle(names: &[(&str, f64)]) -> Circle {
        Circle {
            bits: 6,
            replicas: 1,
            nodes: names
                .iter()
                .map(|&(name, at)| CircleNode {
                    name: name.into(),
                    id: format!("{}", (at * 64.0) as u32),
                    at,
                    keys: 1,
                })
                .collect(),
            node_count: names.len(),
            node_bins: vec![0; dht::app::circle::NODE_BINS],
            keys: names.len(),
            key_bins: vec![1; 4],
        }
    }

    #[test]
    fn names_are_escaped_and_hops_join_the_path() {
        let c = circle(&[("a<&>\"", 0.0), ("b", 0.25), ("c", 0.5)]);
        let route = Route {
            key: "k'".into(),
            key_at: 0.6,
            path: vec!["a<&>\"".into(), "b".into()],
            successor: "c".into(),
            hops: 1,
            messages: 3,
        };
        let svg = ring(&c, Some(&route));
        assert!(svg.contains(r#"data-name="a&lt;&amp;&gt;&quot;""#));
        assert_eq!(svg.matches("<circle class=\"node\"").count(), 3);
        assert!(svg.contains(r#"<line class="hop" data-from="a&lt;&amp;&gt;&quot;" data-to="b""#));
        assert!(svg.contains(r#"<line class="hop final" data-from="b" data-to="c""#));
        assert!(svg.contains("data-key=\"k&apos;\""));
    }
}
