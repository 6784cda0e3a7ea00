//! What a commit says about itself: its author and message, read from the product's mirror
//! so that every build of a repository product can show them, whatever started it.

use std::path::Path;

use conveyor_core::context::Commit;
use conveyor_core::names;

use super::mirrors::{Repos, git};

/// The longest commit message a build keeps (bytes); a longer one is cut with `…`.
pub const MAX_MESSAGE: usize = 4000;

impl Repos {
    /// The author and message of commit `sha`, or `None` when the mirror cannot tell.
    pub fn describe(&self, mirror: &Path, sha: &str) -> Option<Commit> {
        if !names::is_commit_sha(sha) {
            return None;
        }
        let args = [
            "log",
            "-1",
            "--no-show-signature",
            "--format=%an%x00%B",
            "--end-of-options",
            sha,
            "--",
        ];
        let out = git(&args, Some(mirror), self.timeout()).ok()?;
        let (author, message) = out.split_once('\0')?;
        Some(Commit {
            author: author.trim().to_string(),
            message: cut(message.trim(), MAX_MESSAGE),
        })
    }
}

/// `text` up to `max` bytes, cut at a character boundary and marked when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("héllo", 3), "hé…");
        assert_eq!(cut("hello", 5), "hello");
    }
}
