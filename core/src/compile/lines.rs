//! Where a job's script was written: the text as its author wrote it (references and all)
//! and the file line of each of its lines, for the runner's log (see
//! [`crate::model::ScriptSource`]).

use crate::diag::{Diagnostics, Pos};
use crate::model::ScriptSource;
use crate::yaml::{Node, Value};

/// The script made of `parts` (`pre-run`, then `commands`: each a node and its text), joined
/// as the job's script is: a newline between two parts unless the first ends in one.
pub(super) fn source(parts: &[(&Node, &str)], d: &Diagnostics) -> ScriptSource {
    let mut text = String::new();
    let mut lines = Vec::new();
    for (node, part) in parts {
        if text.ends_with('\n') {
            // The empty line after the newline is the next part's first.
            lines.pop();
        } else if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(part);
        lines.extend(part_lines(node, part, d));
    }
    ScriptSource {
        file: d.file().to_string(),
        text,
        lines,
    }
}

/// The file line of each line of one part: a block string's lines are exact, a list's
/// items each start at their own line.
fn part_lines(node: &Node, part: &str, d: &Diagnostics) -> Vec<u32> {
    let Value::Seq(items) = &node.value else {
        return scalar_lines(node.pos, part, d);
    };
    let mut out = Vec::new();
    for item in items {
        let item_text = item.scalar_text().unwrap_or_default();
        out.extend(scalar_lines(item.pos, &item_text, d));
    }
    // The part is the items joined by newlines: as many lines as they make together.
    out.resize(
        part.split('\n').count(),
        out.last().copied().unwrap_or(node.pos.line),
    );
    out
}

fn scalar_lines(pos: Pos, text: &str, d: &Diagnostics) -> Vec<u32> {
    let mut offset = 0;
    text.split('\n')
        .map(|line| {
            let at = d.pos_in_scalar(pos, text, offset).line;
            offset += line.len() + 1;
            at
        })
        .collect()
}
