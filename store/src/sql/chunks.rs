//! A log chunk's body: its lines as JSON, one object a line (`\n` between them; JSON text
//! never holds a raw newline). `t` is the text, `s` the stream (absent: stdout), `l` the
//! labels (absent: none), and the time either `at` (ms) or `d`, the ms since the chunk's
//! `first_at` (absent: 0). Each line decodes on its own, so a read skips the lines before
//! its range by looking for newlines only.

use std::collections::BTreeMap;

use conveyor_core::protocol::{LogLine, Stream};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::error::{Result, corrupt};
use crate::logs::{CHUNK_BYTES, CHUNK_LINES};
use crate::types::LogRow;

#[derive(Serialize, Deserialize)]
struct Encoded {
    t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<BTreeMap<String, String>>,
}

/// A chunk to insert: lines `first_line ..` of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewChunk {
    pub(crate) first_line: i64,
    pub(crate) line_count: i64,
    /// The lines' text bytes, as the cap counts them.
    pub(crate) bytes: i64,
    pub(crate) first_at: i64,
    pub(crate) last_at: i64,
    pub(crate) body: String,
}

fn stream_name(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
        Stream::System => "system",
    }
}

/// One line's JSON, its time `at` relative to `first_at`.
fn encode_line(line: &LogLine, at: i64, first_at: i64) -> String {
    let stream = stream_name(line.stream);
    let e = Encoded {
        t: line.text.clone(),
        s: (stream != "stdout").then(|| stream.to_string()),
        at: None,
        d: (at != first_at).then_some(at - first_at),
        l: (!line.labels.is_empty()).then(|| line.labels.clone()),
    };
    // A struct of strings and numbers always serializes.
    serde_json::to_string(&e).unwrap_or_default()
}

/// `lines`, numbered from `first_line`, as chunks of at most [`CHUNK_LINES`] lines and
/// [`CHUNK_BYTES`] bytes of body (a longer line alone); a line's time is its own `at`, else
/// `now`.
pub(crate) fn encode<'a>(
    lines: impl IntoIterator<Item = &'a LogLine>,
    first_line: i64,
    now: i64,
) -> Vec<NewChunk> {
    let mut chunks: Vec<NewChunk> = Vec::new();
    for (next, line) in (first_line..).zip(lines) {
        let at = line.at.unwrap_or(now);
        let fits = |c: &NewChunk| {
            let json = encode_line(line, at, c.first_at);
            (c.line_count < CHUNK_LINES as i64 && c.body.len() + 1 + json.len() <= CHUNK_BYTES)
                .then_some(json)
        };
        match chunks
            .last_mut()
            .and_then(|c| fits(c).map(|json| (c, json)))
        {
            Some((c, json)) => {
                c.body.push('\n');
                c.body.push_str(&json);
                c.line_count += 1;
                c.bytes += line.text.len() as i64;
                c.last_at = c.last_at.max(at);
            }
            None => chunks.push(NewChunk {
                first_line: next,
                line_count: 1,
                bytes: line.text.len() as i64,
                first_at: at,
                last_at: at,
                body: encode_line(line, at, at),
            }),
        }
    }
    chunks
}

/// A stored chunk, as reads select it.
#[derive(FromRow)]
pub(crate) struct ChunkRow {
    pub(crate) attempt: i64,
    pub(crate) first_line: i64,
    pub(crate) line_count: i64,
    pub(crate) first_at: i64,
    pub(crate) body: String,
}

/// The columns [`ChunkRow`] decodes.
pub(crate) const CHUNK_COLUMNS: &str = "attempt, first_line, line_count, first_at, body";

impl ChunkRow {
    /// The chunk's last line number.
    pub(crate) fn last_line(&self) -> i64 {
        self.first_line + self.line_count - 1
    }

    /// Each line numbered `from ..= to` of the chunk, with its number and its JSON.
    pub(crate) fn raw(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, &str)> {
        let skip = (from - self.first_line).max(0) as usize;
        let take = (to.min(self.last_line()) - self.first_line + 1).max(0) as usize;
        (self.first_line..)
            .zip(self.body.split('\n'))
            .take(take)
            .skip(skip)
    }

    /// Line `id` from its JSON.
    pub(crate) fn decode(&self, id: i64, json: &str) -> Result<LogRow> {
        let e: Encoded = serde_json::from_str(json).map_err(corrupt)?;
        Ok(LogRow {
            id,
            attempt: u32::try_from(self.attempt).map_err(corrupt)?,
            stream: e.s.unwrap_or_else(|| "stdout".into()),
            text: e.t,
            at: e.at.unwrap_or(self.first_at + e.d.unwrap_or(0)),
            labels: e.l.unwrap_or_default(),
        })
    }

    /// The lines numbered `from ..= to` of the chunk.
    pub(crate) fn lines(&self, from: i64, to: i64) -> Result<Vec<LogRow>> {
        self.raw(from, to)
            .map(|(id, json)| self.decode(id, json))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, stream: Stream, at: Option<i64>) -> LogLine {
        LogLine {
            stream,
            text: text.into(),
            at,
            labels: Default::default(),
        }
    }

    fn row(c: &NewChunk, attempt: i64) -> ChunkRow {
        ChunkRow {
            attempt,
            first_line: c.first_line,
            line_count: c.line_count,
            first_at: c.first_at,
            body: c.body.clone(),
        }
    }

    #[test]
    fn lines_read_back_as_they_were_sent_with_their_numbers_and_times() {
        let mut labelled = line("made \"it\"\nhere", Stream::System, Some(7));
        labelled.labels.insert("kind".into(), "command".into());
        let lines = [
            line("one", Stream::Stdout, None),
            line("two", Stream::Stderr, Some(3)),
            labelled,
        ];
        let chunks = encode(&lines, 41, 5);
        assert_eq!(chunks.len(), 1);
        let c = row(&chunks[0], 2);
        assert_eq!((c.first_line, c.line_count, c.first_at), (41, 3, 5));
        assert_eq!(chunks[0].last_at, 7);
        assert_eq!(chunks[0].bytes, 3 + 3 + 14);
        let back = c.lines(0, 100).unwrap();
        let got: Vec<_> = back
            .iter()
            .map(|r| (r.id, r.attempt, r.stream.as_str(), r.text.as_str(), r.at))
            .collect();
        assert_eq!(
            got,
            [
                (41, 2, "stdout", "one", 5),
                (42, 2, "stderr", "two", 3),
                (43, 2, "system", "made \"it\"\nhere", 7)
            ]
        );
        assert_eq!(back[2].labels["kind"], "command");
        let middle: Vec<_> = c.lines(42, 42).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(middle, [42]);
        assert!(c.lines(44, 50).unwrap().is_empty());
    }

    #[test]
    fn a_batch_splits_at_the_line_and_byte_limits() {
        let many: Vec<_> = (0..2500)
            .map(|i| line(&format!("l{i}"), Stream::Stdout, None))
            .collect();
        let chunks = encode(&many, 1, 0);
        let shape: Vec<_> = chunks
            .iter()
            .map(|c| (c.first_line, c.line_count))
            .collect();
        assert_eq!(shape, [(1, 1000), (1001, 1000), (2001, 500)]);
        let big = "x".repeat(100 << 10);
        let wide: Vec<_> = (0..5).map(|_| line(&big, Stream::Stdout, None)).collect();
        let chunks = encode(&wide, 1, 0);
        assert!(chunks.len() >= 2, "5 × 100 KiB does not fit in one chunk");
        assert!(chunks.iter().all(|c| c.body.len() <= CHUNK_BYTES));
        let long = encode(
            &[line(&"y".repeat(CHUNK_BYTES), Stream::Stdout, None)],
            1,
            0,
        );
        assert_eq!(
            long.len(),
            1,
            "a line longer than a chunk is a chunk of its own"
        );
        assert_eq!(chunks.iter().map(|c| c.line_count).sum::<i64>(), 5);
    }

    #[test]
    fn a_migrated_line_with_its_own_time_and_null_labels_decodes() {
        let c = ChunkRow {
            attempt: 1,
            first_line: 1,
            line_count: 2,
            first_at: 10,
            body: "{\"s\" : \"stderr\", \"t\" : \"a\", \"at\" : 12, \"l\" : null}\n\
                   {\"s\":\"stdout\",\"t\":\"b\",\"at\":10,\"l\":{\"k\":\"v\"}}"
                .into(),
        };
        let rows = c.lines(1, 2).unwrap();
        assert_eq!((rows[0].stream.as_str(), rows[0].at), ("stderr", 12));
        assert_eq!(rows[1].labels["k"], "v");
    }
}
