//! What a commit says about itself: its author and message, read from the product's mirror
//! so that every build of a repository product can show them, whatever started it.

use std::path::Path;

use conveyor_core::context::Commit;
use conveyor_core::names;

use super::mirrors::{GitError, Repos, git_bytes};

/// The longest commit message a build keeps (bytes); a longer one is cut with `…`.
pub const MAX_MESSAGE: usize = 4000;

impl Repos {
    /// The author and message of commit `sha`, or `None` when the mirror cannot tell.
    pub fn describe(&self, mirror: &Path, sha: &str) -> Option<Commit> {
        if !names::is_commit_sha(sha) {
            return None;
        }
        let objects = self.objects(mirror, &[format!("{sha}^{{commit}}")]).ok()?;
        let (_, raw) = objects.into_iter().next()??;
        described(&raw)
    }

    /// A product's config (`path`) at commit `sha`, and the commit's author and message: one
    /// git process for what took three. A commit the mirror does not have is
    /// [`GitError::Unreachable`] (the forge may not have it fetchable yet); a commit without
    /// the file is [`GitError::Refused`].
    pub fn read_at(
        &self,
        mirror: &Path,
        sha: &str,
        path: &str,
    ) -> Result<(String, Option<Commit>), GitError> {
        if !names::is_commit_sha(sha) {
            return Err(GitError::Refused(format!("`{sha}` is not a commit id")));
        }
        let no_file = || GitError::Refused(format!("there is no {path} at commit {sha}"));
        if path.contains(['\n', '\r']) {
            return Err(no_file());
        }
        let revs = [format!("{sha}^{{commit}}"), format!("{sha}:{path}")];
        let mut objects = self.objects(mirror, &revs)?.into_iter();
        let Some(Some((_, commit))) = objects.next() else {
            return Err(GitError::Unreachable(format!(
                "commit {sha} is not in the repository (yet)"
            )));
        };
        let Some(Some((kind, file))) = objects.next() else {
            return Err(no_file());
        };
        if kind != "blob" {
            return Err(no_file());
        }
        let text = String::from_utf8_lossy(&file).trim().to_string() + "\n";
        Ok((text, described(&commit)))
    }

    /// The objects `revs` name, in order, each with its type (`None`: there is no such
    /// object), read by `git cat-file --batch`.
    fn objects(&self, mirror: &Path, revs: &[String]) -> Result<Vec<Object>, GitError> {
        let input = revs.iter().map(|r| format!("{r}\n")).collect::<String>();
        let args = ["cat-file", "--batch"];
        let out = git_bytes(
            &args,
            Some(mirror),
            self.timeout(),
            Some(input.into_bytes()),
        )?;
        batch_answers(&out, revs.len()).ok_or_else(|| {
            GitError::Unreachable("git cat-file answered in a form conveyor cannot read".into())
        })
    }
}

/// An object's type and contents, or `None` where git has no such object.
type Object = Option<(String, Vec<u8>)>;

/// `git cat-file --batch`'s answers: `<oid> <type> <size>\n<contents>\n` for an object,
/// `<rev> missing\n` (or `ambiguous`) for none. `None` if the output is not that.
fn batch_answers(mut out: &[u8], n: usize) -> Option<Vec<Object>> {
    let mut found = Vec::with_capacity(n);
    for _ in 0..n {
        let end = out.iter().position(|&b| b == b'\n')?;
        let header = std::str::from_utf8(&out[..end]).ok()?;
        out = &out[end + 1..];
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            found.push(None);
            continue;
        }
        let mut fields = header.split(' ');
        let (_oid, kind, size) = (fields.next()?, fields.next()?, fields.next()?);
        let size: usize = size.parse().ok()?;
        let contents = out.get(..size)?.to_vec();
        out = out.get(size + 1..)?;
        found.push(Some((kind.to_string(), contents)));
    }
    Some(found)
}

/// The author's name and the message of a raw commit object.
fn described(raw: &[u8]) -> Option<Commit> {
    let text = String::from_utf8_lossy(raw);
    let (headers, message) = text.split_once("\n\n").unwrap_or((&text, ""));
    let author = headers.lines().find_map(|l| l.strip_prefix("author "))?;
    let name = author.split_once(" <").map_or(author, |(name, _)| name);
    Some(Commit {
        author: name.trim().to_string(),
        message: cut(message.trim(), MAX_MESSAGE),
    })
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
    use super::{batch_answers, cut, described};

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("héllo", 3), "hé…");
        assert_eq!(cut("hello", 5), "hello");
    }

    #[test]
    fn a_batch_answer_gives_each_object_or_says_it_is_missing() {
        let out = b"aaaa commit 5\nhello\nbbbb:x.yml missing\ncccc blob 3\na\nb\n";
        let found = batch_answers(out, 3).unwrap();
        assert_eq!(found[0], Some(("commit".into(), b"hello".to_vec())));
        assert_eq!(found[1], None);
        assert_eq!(found[2], Some(("blob".into(), b"a\nb".to_vec())));
        // Cut short: not read as anything.
        assert_eq!(batch_answers(b"aaaa blob 10\nshort\n", 1), None);
    }

    #[test]
    fn a_raw_commit_gives_its_authors_name_and_message() {
        let raw = b"tree 1\nparent 2\nauthor Ada L <ada@example.test> 1700000000 +0000\n\
            committer C <c@example.test> 1700000000 +0000\ngpgsig -----BEGIN-----\n \n x\n\n\
            Fix the build\n\nBecause.\n";
        let c = described(raw).unwrap();
        assert_eq!(c.author, "Ada L");
        assert_eq!(c.message, "Fix the build\n\nBecause.");
    }
}
