//! A build's context — what started it, on which branch or tag, which paths it changed —
//! as conditions (`conveyor.branch`, `changed("docs/**")`), concurrency groups and
//! downstream gates read it.

use serde::{Deserialize, Serialize};

/// The namespace a condition reads the context from; no job or product may take its name.
pub const NAMESPACE: &str = "conveyor";

/// The names a condition may read under [`NAMESPACE`].
pub const NAMES: [&str; 3] = ["branch", "tag", "event"];

/// What started a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Push,
    PullRequest,
    Tag,
    /// A `schedule:` trigger's build.
    Schedule,
    Manual,
    Upstream,
    /// A resource's change: a pipeline's run, or the fan-out to its type's drivers.
    Resource,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::Push,
        Event::PullRequest,
        Event::Tag,
        Event::Schedule,
        Event::Manual,
        Event::Upstream,
        Event::Resource,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::Push => "push",
            Event::PullRequest => "pull_request",
            Event::Tag => "tag",
            Event::Schedule => "schedule",
            Event::Manual => "manual",
            Event::Upstream => "upstream",
            Event::Resource => "resource",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == s)
    }
}

/// The context of one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildContext {
    pub event: Event,
    /// The branch pushed, the pull request's own (head) branch, or the branch a manual or
    /// downstream build checks out; `None` for a tag.
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    /// The paths the change touched; `None` when they are not known (a build not started by
    /// a push or pull request, or a history git could not compare): then `changed()` is
    /// true for every pattern.
    #[serde(default)]
    pub changed: Option<Vec<String>>,
    /// Variables the build was started with (`KEY=VALUE`, by hand): every job gets them in
    /// its environment, as data, over the config's `env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<(String, String)>,
    /// Who started it: the forge account that pushed or opened the pull request, or the
    /// person (or `admin`) who started it by hand; `None` for schedules and upstream builds,
    /// whose trigger says what started them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The commit built, as its repository describes it (repository products only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<Commit>,
}

/// A commit's author and message, as `git log` reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub author: String,
    pub message: String,
}

impl Commit {
    /// The message's first line (its subject).
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

impl BuildContext {
    /// The context of a build started with `event` at `git_ref`, its paths unknown.
    pub fn at_ref(event: Event, git_ref: Option<&str>) -> BuildContext {
        let branch = git_ref.and_then(|r| r.strip_prefix("refs/heads/"));
        let tag = git_ref.and_then(|r| r.strip_prefix("refs/tags/"));
        BuildContext {
            event,
            branch: branch.map(str::to_string),
            tag: tag.map(str::to_string),
            changed: None,
            variables: Vec::new(),
            actor: None,
            commit: None,
        }
    }

    /// The value of `conveyor.NAME` (empty when the build has none).
    pub fn value(&self, name: &str) -> Option<String> {
        match name {
            "branch" => Some(self.branch.clone().unwrap_or_default()),
            "tag" => Some(self.tag.clone().unwrap_or_default()),
            "event" => Some(self.event.name().to_string()),
            _ => None,
        }
    }

    /// Whether the change touched a path `pattern` matches (true when paths are unknown).
    pub fn changed(&self, pattern: &str) -> bool {
        self.changed
            .as_ref()
            .is_none_or(|paths| paths.iter().any(|p| path_matches(pattern, p)))
    }
}

/// Which events and branches let something happen (a downstream, an upstream trigger).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// `None`: every event but `pull_request`.
    #[serde(default)]
    pub events: Option<Vec<Event>>,
    /// Branch patterns (`*` matches anything); empty means any branch.
    #[serde(default)]
    pub branches: Vec<String>,
}

impl Gate {
    pub fn allows(&self, ctx: &BuildContext) -> bool {
        let event_ok = match &self.events {
            Some(events) => events.contains(&ctx.event),
            None => ctx.event != Event::PullRequest,
        };
        let branch_ok = self.branches.is_empty()
            || ctx
                .branch
                .as_deref()
                .is_some_and(|b| self.branches.iter().any(|p| branch_matches(p, b)));
        event_ok && branch_ok
    }
}

/// A branch pattern: `*` matches any run of characters, `/` included.
pub fn branch_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| {
                    text.is_char_boundary(head.len() + i)
                        && branch_matches(rest, &text[head.len() + i..])
                })
        }
    }
}

/// A path pattern: `**` matches any run of characters (`/` included; `**/` also none),
/// `*` any run without `/`, `?` one character but `/`; a pattern ending in `/` matches
/// everything under that directory.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern = match pattern.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => pattern.to_string(),
    };
    matches(pattern.as_bytes(), path.as_bytes())
}

fn matches(p: &[u8], t: &[u8]) -> bool {
    match p {
        [] => t.is_empty(),
        [b'*', b'*', b'/', rest @ ..] => {
            matches(rest, t) || (0..t.len()).any(|i| t[i] == b'/' && matches(rest, &t[i + 1..]))
        }
        [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| matches(rest, &t[i..])),
        [b'*', rest @ ..] => (0..=t.len())
            .take_while(|&i| i == 0 || t[i - 1] != b'/')
            .any(|i| matches(rest, &t[i..])),
        [b'?', rest @ ..] => t.first().is_some_and(|&c| c != b'/') && matches(rest, &t[1..]),
        [c, rest @ ..] => t.first() == Some(c) && matches(rest, &t[1..]),
    }
}

/// A concurrency group's name for a build: `{{ conveyor.NAME }}` replaced by its value.
pub fn render_group(template: &str, ctx: &BuildContext) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = rest[start + 2..start + len].trim();
        let name = inner.strip_prefix("conveyor.").unwrap_or(inner);
        out.push_str(&ctx.value(name).unwrap_or_default());
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The `{{ … }}` names a group template uses that are not context names.
pub fn unknown_in_template(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            out.push(rest[start..].to_string());
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        let known = inner
            .strip_prefix("conveyor.")
            .is_some_and(|n| NAMES.contains(&n));
        if !known {
            out.push(inner.to_string());
        }
        rest = &rest[start + len + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_match_like_gitignore_globs() {
        assert!(path_matches("docs/**", "docs/a/b.md"));
        assert!(path_matches("docs/", "docs/a.md"));
        assert!(!path_matches("docs/**", "src/docs.rs"));
        assert!(path_matches("*.md", "README.md"));
        assert!(!path_matches("*.md", "docs/README.md"));
        assert!(path_matches("**/*.md", "README.md"));
        assert!(path_matches("**/*.md", "docs/x/README.md"));
        assert!(path_matches("src/?.rs", "src/a.rs"));
        assert!(!path_matches("src/?.rs", "src/ab.rs"));
    }

    #[test]
    fn unknown_paths_count_as_changed_and_groups_render_the_context() {
        let mut ctx = BuildContext::at_ref(Event::Push, Some("refs/heads/main"));
        assert!(ctx.changed("docs/**"));
        ctx.changed = Some(vec!["src/main.rs".into()]);
        assert!(!ctx.changed("docs/**"));
        assert!(ctx.changed("src/**"));
        assert_eq!(render_group("ci-{{ conveyor.branch }}", &ctx), "ci-main");
        assert_eq!(
            unknown_in_template("x-{{ conveyor.sha }}-{{conveyor.event}}"),
            vec!["conveyor.sha"]
        );
    }

    #[test]
    fn branch_patterns_match_with_stars() {
        assert!(branch_matches("main", "main"));
        assert!(!branch_matches("main", "mainline"));
        assert!(branch_matches("release/*", "release/1.2"));
        assert!(!branch_matches("release/*", "hotfix/1"));
        assert!(branch_matches("*", "anything"));
        assert!(branch_matches("feat-*-x", "feat-abc-x"));
    }

    #[test]
    fn gates_keep_pull_requests_out_unless_named() {
        let pr = BuildContext::at_ref(Event::PullRequest, Some("refs/pull/1/head"));
        let main = BuildContext::at_ref(Event::Push, Some("refs/heads/main"));
        assert!(!Gate::default().allows(&pr));
        assert!(Gate::default().allows(&main));
        let named = Gate {
            events: Some(vec![Event::PullRequest]),
            branches: vec![],
        };
        assert!(named.allows(&pr) && !named.allows(&main));
        let on_main = Gate {
            events: None,
            branches: vec!["ma*".into()],
        };
        assert!(on_main.allows(&main));
    }
}
