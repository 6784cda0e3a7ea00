//! Laying out a graph for SVG: a build's jobs, or a product's upstream and downstream
//! products. Layered left to right by longest path (a node sits one layer right of its
//! furthest dependency), ordered within a layer by its dependencies' rows, one node per
//! input node and one edge per dependency. Pure: no I/O, unit-tested.

use super::view::Badge;

pub const NODE_W: i64 = 176;
pub const NODE_H: i64 = 48;
const COL_GAP: i64 = 56;
const ROW_GAP: i64 = 16;
const PAD: i64 = 8;
/// Labels longer than this are cut (the full name is in the node's title).
const MAX_LABEL: usize = 20;

/// A node to place.
pub struct NodeIn {
    pub id: String,
    pub name: String,
    /// Its state, in a badge.
    pub badge: Badge,
    pub href: String,
}

/// A placed node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub name: String,
    /// The name as drawn (cut when long).
    pub text: String,
    pub badge: Badge,
    pub href: String,
    pub layer: usize,
    pub x: i64,
    pub y: i64,
}

/// An edge as an SVG path, from the right side of one node to the left side of another.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dag {
    pub width: i64,
    pub height: i64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub node_w: i64,
    pub node_h: i64,
}

/// Places `nodes`; `edges` are `(from, to)` indices: `to` depends on `from`. Edges naming
/// a missing node are dropped; a cycle (which a compiled belt never has) is cut. An edge
/// that skips layers passes through a slot of its own in each layer it crosses, so it is
/// never drawn under a node.
pub fn layout(nodes: Vec<NodeIn>, edges: &[(usize, usize)]) -> Dag {
    let n = nodes.len();
    let edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(f, t)| f < n && t < n && f != t)
        .collect();
    let mut layers = layers(n, &edges);
    let (chains, hops) = route(&mut layers, &edges);
    let rows = rows(&layers, &hops);
    let columns = layers.iter().copied().max().map_or(0, |m| m + 1);
    let per_layer = |l: usize| layers.iter().filter(|&&x| x == l).count() as i64;
    let tallest = (0..columns).map(per_layer).max().unwrap_or(0);
    let step = NODE_H + ROW_GAP;
    // Shorter layers are centred against the tallest.
    let at = |i: usize| {
        let l = layers[i];
        let offset = (tallest - per_layer(l)) * step / 2;
        (
            PAD + l as i64 * (NODE_W + COL_GAP),
            PAD + offset + rows[i] as i64 * step,
        )
    };
    let placed: Vec<Node> = nodes
        .into_iter()
        .enumerate()
        .map(|(i, node)| place(node, layers[i], at(i)))
        .collect();
    let paths = edges
        .iter()
        .zip(&chains)
        .map(|(&(f, t), chain)| Edge {
            from: f,
            to: t,
            path: path(&chain.iter().map(|&i| at(i)).collect::<Vec<_>>()),
        })
        .collect();
    let (width, height) = match n {
        0 => (0, 0),
        _ => (
            2 * PAD + columns as i64 * (NODE_W + COL_GAP) - COL_GAP,
            2 * PAD + tallest * step - ROW_GAP,
        ),
    };
    Dag {
        width,
        height,
        nodes: placed,
        edges: paths,
        node_w: NODE_W,
        node_h: NODE_H,
    }
}

fn place(node: NodeIn, layer: usize, (x, y): (i64, i64)) -> Node {
    Node {
        text: cut(&node.name),
        badge: node.badge,
        id: node.id,
        name: node.name,
        href: node.href,
        layer,
        x,
        y,
    }
}

/// Splits each edge that skips layers into hops through slots of its own (indices after
/// the nodes', their layers appended to `layers`): each edge's chain of slots, from its
/// source to its target, and every hop as an edge, for ordering the rows.
fn route(
    layers: &mut Vec<usize>,
    edges: &[(usize, usize)],
) -> (Vec<Vec<usize>>, Vec<(usize, usize)>) {
    let mut chains = Vec::with_capacity(edges.len());
    let mut hops = Vec::new();
    for &(f, t) in edges {
        let mut chain = vec![f];
        for l in layers[f] + 1..layers[t] {
            layers.push(l);
            chain.push(layers.len() - 1);
        }
        chain.push(t);
        hops.extend(chain.windows(2).map(|w| (w[0], w[1])));
        chains.push(chain);
    }
    (chains, hops)
}

/// An SVG path through the slots at `points` (each a slot's top-left corner): from the
/// right side of the first, straight across each slot between, to the left of the last.
fn path(points: &[(i64, i64)]) -> String {
    let mut out = String::new();
    for (k, w) in points.windows(2).enumerate() {
        let ((ax, ay), (bx, by)) = (w[0], w[1]);
        let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2);
        let last = k + 2 == points.len();
        let (x2, y2) = (if last { bx - 6 } else { bx }, by + NODE_H / 2);
        let mid = (x1 + x2) / 2;
        if k == 0 {
            out.push_str(&format!("M{x1} {y1} "));
        }
        out.push_str(&format!("C{mid} {y1} {mid} {y2} {x2} {y2}"));
        if !last {
            out.push_str(&format!(" L{} {y2} ", bx + NODE_W));
        }
    }
    out
}

/// Longest path from a node without dependencies, by Kahn's algorithm.
fn layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    for &(_, t) in edges {
        indegree[t] += 1;
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).rev().collect();
    let mut seen = 0;
    while let Some(i) = ready.pop() {
        seen += 1;
        for &(f, t) in edges.iter().filter(|e| e.0 == i) {
            layer[t] = layer[t].max(layer[f] + 1);
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.push(t);
            }
        }
    }
    if seen < n {
        tracing::warn!("the graph has a cycle; its nodes are drawn where they stand");
    }
    layer
}

/// Each node's row within its layer: the first layer in input order, then each layer by
/// the mean row of its dependencies (ties keep input order), which keeps edges short.
fn rows(layers: &[usize], edges: &[(usize, usize)]) -> Vec<usize> {
    let mut row = vec![0usize; layers.len()];
    let columns = layers.iter().copied().max().map_or(0, |m| m + 1);
    for l in 0..columns {
        let mut members: Vec<(f64, usize)> = (0..layers.len())
            .filter(|&i| layers[i] == l)
            .map(|i| {
                let deps: Vec<usize> = edges
                    .iter()
                    .filter(|e| e.1 == i && layers[e.0] < l)
                    .map(|e| row[e.0])
                    .collect();
                let key = if deps.is_empty() {
                    i as f64
                } else {
                    deps.iter().sum::<usize>() as f64 / deps.len() as f64
                };
                (key, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, (_, i)) in members.into_iter().enumerate() {
            row[i] = r;
        }
    }
    row
}

fn cut(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL {
        name.to_string()
    } else {
        let head: String = name.chars().take(MAX_LABEL - 1).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::badge;
    use super::*;

    fn nodes(names: &[&str]) -> Vec<NodeIn> {
        names
            .iter()
            .map(|n| NodeIn {
                id: format!("id-{n}"),
                name: n.to_string(),
                badge: badge("queued"),
                href: format!("/jobs/id-{n}"),
            })
            .collect()
    }

    fn layer_of(d: &Dag, name: &str) -> usize {
        d.nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.layer)
            .unwrap_or(99)
    }

    #[test]
    fn a_node_sits_one_layer_right_of_its_furthest_dependency() {
        // a → b → c, and a → c directly: c is on layer 2, not 1.
        let d = layout(nodes(&["a", "b", "c"]), &[(0, 1), (1, 2), (0, 2)]);
        assert_eq!(
            [layer_of(&d, "a"), layer_of(&d, "b"), layer_of(&d, "c")],
            [0, 1, 2]
        );
        assert!(d.nodes[0].x < d.nodes[1].x && d.nodes[1].x < d.nodes[2].x);
    }

    #[test]
    fn there_is_one_node_per_job_and_one_edge_per_dependency() {
        let d = layout(
            nodes(&["version", "unit", "lint", "docs", "package"]),
            &[(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)],
        );
        assert_eq!(d.nodes.len(), 5);
        assert_eq!(d.edges.len(), 6);
        assert_eq!(layer_of(&d, "package"), 2);
        // The fan-out shares a column without overlapping.
        let mut ys: Vec<i64> = d
            .nodes
            .iter()
            .filter(|n| n.layer == 1)
            .map(|n| n.y)
            .collect();
        ys.sort_unstable();
        assert!(ys.windows(2).all(|w| w[1] - w[0] >= NODE_H));
        assert!(
            d.nodes
                .iter()
                .all(|n| n.x + NODE_W <= d.width && n.y + NODE_H <= d.height)
        );
    }

    #[test]
    fn an_edge_runs_from_the_right_of_its_source_to_the_left_of_its_target() {
        let d = layout(nodes(&["a", "b"]), &[(0, 1)]);
        let (a, b) = (&d.nodes[0], &d.nodes[1]);
        let start = format!("M{} {} ", a.x + NODE_W, a.y + NODE_H / 2);
        assert!(d.edges[0].path.starts_with(&start), "{}", d.edges[0].path);
        assert!(
            d.edges[0]
                .path
                .ends_with(&format!("{} {}", b.x - 6, b.y + NODE_H / 2))
        );
    }

    #[test]
    fn bad_edges_and_cycles_do_not_break_the_layout() {
        let d = layout(nodes(&["a", "b"]), &[(0, 7), (1, 1), (0, 1), (1, 0)]);
        assert_eq!(d.nodes.len(), 2);
        assert_eq!(d.edges.len(), 2);
        let empty = layout(Vec::new(), &[]);
        assert_eq!((empty.width, empty.height), (0, 0));
    }

    #[test]
    fn long_names_are_cut_and_states_carry_words() {
        let d = layout(nodes(&["a-very-long-job-name-indeed"]), &[]);
        assert_eq!(d.nodes[0].text, "a-very-long-job-nam…");
        assert_eq!(d.nodes[0].name, "a-very-long-job-name-indeed");
        assert_eq!(d.nodes[0].badge.label, "queued");
    }

    #[test]
    fn a_dependent_lines_up_with_its_dependency() {
        // b depends on the second node of layer 0, so it takes row 0 of layer 1 but is
        // ordered after a2 which depends on the first.
        let d = layout(nodes(&["x", "y", "b", "a2"]), &[(1, 2), (0, 3)]);
        let row = |name: &str| {
            d.nodes
                .iter()
                .find(|n| n.name == name)
                .map(|n| n.y)
                .unwrap_or(0)
        };
        assert!(row("a2") < row("b"));
    }

    /// An SVG path's commands (`M`, `C`, `L`) with their numbers.
    fn commands(path: &str) -> Vec<(char, Vec<f64>)> {
        let mut out: Vec<(char, String)> = Vec::new();
        for c in path.chars() {
            match (c, out.last_mut()) {
                ('M' | 'C' | 'L', _) => out.push((c, String::new())),
                (_, Some(last)) => last.1.push(c),
                (_, None) => {}
            }
        }
        out.into_iter()
            .map(|(c, text)| {
                (
                    c,
                    text.split_whitespace()
                        .map(|x| x.parse().unwrap())
                        .collect(),
                )
            })
            .collect()
    }

    /// Points along an edge's path: its curves and lines sampled.
    fn samples(path: &str) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut at = (0.0, 0.0);
        for (c, v) in commands(path) {
            let p = match c {
                'C' => [at, (v[0], v[1]), (v[2], v[3]), (v[4], v[5])],
                _ => [at, at, (v[0], v[1]), (v[0], v[1])],
            };
            if c != 'M' {
                for k in 0..=40 {
                    let t = f64::from(k) / 40.0;
                    let u = 1.0 - t;
                    let b = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
                    let x = (0..4).map(|j| b[j] * p[j].0).sum();
                    let y = (0..4).map(|j| b[j] * p[j].1).sum();
                    out.push((x, y));
                }
            }
            at = p[3];
        }
        out
    }

    #[test]
    fn no_edge_is_drawn_under_a_node_it_does_not_join() {
        // checkout → 18 shards → report → deploy, and checkout → deploy directly; flaky
        // beside them feeds nothing.
        let mut names = vec!["checkout".to_string()];
        names.extend((1..=18).map(|i| format!("shard-{i}")));
        names.extend(["report", "deploy", "flaky", "publish"].map(String::from));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut edges: Vec<(usize, usize)> = (1..=18).flat_map(|i| [(0, i), (i, 19)]).collect();
        edges.extend([(19, 20), (0, 20), (0, 22), (21, 20)]);
        let d = layout(nodes(&refs), &edges);
        assert_eq!(d.edges.len(), edges.len());
        for e in &d.edges {
            for (i, n) in d.nodes.iter().enumerate() {
                if i == e.from || i == e.to {
                    continue;
                }
                let (x0, y0) = (n.x as f64, n.y as f64);
                let (x1, y1) = (x0 + NODE_W as f64, y0 + NODE_H as f64);
                for (px, py) in samples(&e.path) {
                    assert!(
                        !(px > x0 && px < x1 && py > y0 && py < y1),
                        "edge {} → {} passes under {} at ({px}, {py}): {}",
                        d.nodes[e.from].name,
                        d.nodes[e.to].name,
                        n.name,
                        e.path
                    );
                }
            }
        }
    }
}
