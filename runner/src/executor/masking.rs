//! A job's secret values, found wherever they stand: replaced by `***` in the log lines the
//! runner ships (and so in the `STDOUT` output, which is the tail of what was shipped), and
//! looked for in the job's outputs, which must never carry one.
//!
//! Each line of a secret's value is a pattern of its own (a PEM key printed line by line is
//! masked line by line), trimmed of surrounding whitespace (what `echo $V` prints); patterns
//! shorter than [`MIN_MASKED_CHARS`] are left out (see `docs/decisions.md`). Matching is
//! leftmost-longest over bytes, so one secret that contains another is masked whole.

use std::borrow::Cow;
use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, MatchKind};
use conveyor_core::protocol::{JobSpec, MIN_MASKED_CHARS};

/// What masking replaces a secret with.
const MASK: &[u8] = b"***";

#[derive(Debug, Default)]
pub(crate) struct Secrets {
    /// `None` when the job has no secret long enough to mask.
    matcher: Option<AhoCorasick>,
    /// The name of the secret each pattern comes from, by pattern index.
    owners: Vec<String>,
    /// The longest pattern, in bytes.
    longest: usize,
    /// Secrets with a value (or a line of one) too short to mask, by name.
    pub too_short: Vec<String>,
}

impl Secrets {
    /// The secrets `spec` names, with every value `spec.env` holds under each name.
    pub fn of(spec: &JobSpec) -> Result<Self, String> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut owners = Vec::new();
        let mut too_short = Vec::new();
        for name in &spec.secrets {
            let values = spec.env.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            for line in values.flat_map(|v| v.lines()).map(str::trim) {
                if line.chars().count() >= MIN_MASKED_CHARS {
                    if !patterns.contains(&line) {
                        patterns.push(line);
                        owners.push(name.clone());
                    }
                } else if !line.is_empty() && !too_short.contains(name) {
                    too_short.push(name.clone());
                }
            }
        }
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let matcher = match patterns.is_empty() {
            true => None,
            false => Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(Self {
            matcher,
            owners,
            longest,
            too_short,
        })
    }

    /// `bytes` with every secret replaced by `***`; borrowed when there is none in it.
    pub fn mask<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(matcher) = &self.matcher else {
            return Cow::Borrowed(bytes);
        };
        let mut found = matcher.find_iter(bytes).peekable();
        if found.peek().is_none() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for m in found {
            out.extend_from_slice(&bytes[at..m.start()]);
            out.extend_from_slice(MASK);
            at = m.end();
        }
        out.extend_from_slice(&bytes[at..]);
        Cow::Owned(out)
    }

    /// The same for text: a secret is valid UTF-8, so masking keeps the text valid.
    pub fn mask_text(&self, text: String) -> String {
        match self.mask(text.as_bytes()) {
            Cow::Borrowed(_) => text,
            Cow::Owned(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// How many bytes past a cut must have arrived before cutting an unfinished line there,
    /// so that a secret starting before the cut is whole in what was read.
    pub fn held_back(&self) -> usize {
        self.longest.saturating_sub(1)
    }

    /// Where to cut `buf` at about `at` bytes without splitting a secret: `at`, or the end of
    /// the secret that spans it. `buf` must hold at least `at + held_back()` bytes.
    pub fn cut(&self, buf: &[u8], at: usize) -> usize {
        let Some(matcher) = &self.matcher else {
            return at;
        };
        // Every match that starts before `at` ends within this much.
        let window = &buf[..buf.len().min(at + self.held_back())];
        for m in matcher.find_iter(window) {
            if m.start() >= at {
                break;
            }
            if m.end() > at {
                return m.end();
            }
        }
        at
    }

    /// The first output (by name) whose value holds a secret, with that secret's name.
    pub fn leaked<'a>(
        &'a self,
        outputs: &'a BTreeMap<String, String>,
    ) -> Option<(&'a str, &'a str)> {
        let matcher = self.matcher.as_ref()?;
        outputs.iter().find_map(|(output, value)| {
            let m = matcher.find(value.as_bytes())?;
            Some((
                output.as_str(),
                self.owners[m.pattern().as_usize()].as_str(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        let mut spec: JobSpec = serde_json::from_value(serde_json::json!({
            "lease": {"job_run_id": "r", "attempt": 1, "lease_token": "t"},
            "lease_secs": 60, "product": "p", "belt": "b", "job": "j", "build_id": "b",
            "build_number": 1, "script": "", "env": [], "outputs": [], "timeout_secs": null,
            "source": null, "git_inputs": []
        }))
        .expect("a spec without `secrets` still parses");
        for (k, v) in pairs {
            spec.env.push((k.to_string(), v.to_string()));
            spec.secrets.push(k.to_string());
        }
        spec.env.push(("PLAIN".into(), "not-a-secret".into()));
        Secrets::of(&spec).expect("patterns build")
    }

    fn masked(s: &Secrets, text: &str) -> String {
        String::from_utf8(s.mask(text.as_bytes()).into_owned()).expect("utf-8")
    }

    #[test]
    fn values_are_masked_wherever_they_stand_and_the_longest_wins() {
        let s = secrets(&[("A", "hunter2"), ("B", "hunter2-longer")]);
        assert_eq!(masked(&s, "pw=hunter2, x"), "pw=***, x");
        assert_eq!(masked(&s, "hunter2-longer!hunter2"), "***!***");
        assert_eq!(masked(&s, "not-a-secret"), "not-a-secret");
    }

    #[test]
    fn each_line_of_a_multi_line_value_is_masked_trimmed() {
        let s = secrets(&[(
            "KEY",
            "-----BEGIN-----\r\n  abcdEFGH  \nxy\n-----END-----\n",
        )]);
        assert_eq!(masked(&s, "  abcdEFGH"), "  ***");
        assert_eq!(masked(&s, "-----END-----"), "***");
        // `xy` is too short to mask on its own.
        assert_eq!(masked(&s, "xy"), "xy");
        assert_eq!(s.too_short, ["KEY"]);
    }

    #[test]
    fn short_values_are_not_masked_and_are_named() {
        let s = secrets(&[("PIN", "123"), ("EMPTY", ""), ("OK", "1234")]);
        assert_eq!(masked(&s, "123 1234"), "123 ***");
        assert_eq!(s.too_short, ["PIN"]);
    }

    #[test]
    fn a_cut_never_splits_a_secret() {
        let s = secrets(&[("T", "abcdef")]);
        assert_eq!(s.held_back(), 5);
        // The secret spans byte 4: cut after it.
        assert_eq!(s.cut(b"xxxabcdefyyyy", 4), 9);
        // Nothing spans byte 3, which is where it starts.
        assert_eq!(s.cut(b"xxxabcdefyyyy", 3), 3);
        assert_eq!(s.cut(b"xxxxxxxxxxxx", 4), 4);
        assert_eq!(Secrets::default().cut(b"abc", 2), 2);
    }

    #[test]
    fn an_output_holding_a_secret_is_named_with_the_secret() {
        let s = secrets(&[("NPM_TOKEN", "npm_0123456789")]);
        let outputs: BTreeMap<String, String> = [
            ("A".to_string(), "fine".to_string()),
            ("TOKEN_COPY".to_string(), "x npm_0123456789 y".to_string()),
        ]
        .into();
        assert_eq!(s.leaked(&outputs), Some(("TOKEN_COPY", "NPM_TOKEN")));
        assert_eq!(Secrets::default().leaked(&outputs), None);
    }
}
