//! What every page shares: who is looking, the chrome around it (title, sign-in state),
//! state badges, times, and the pages that belong to no resource (sign-in, errors).

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use conveyor_core::context::Event;

use crate::store::{BuildTrigger, BuildView, JobRunView};

/// Who is looking at a page.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub signed_in: bool,
    /// The CSRF token forms carry; empty when not signed in.
    pub csrf: String,
    /// The path and query of this page, to come back to after signing in.
    pub here: String,
}

/// The frame of every page.
pub struct Chrome {
    pub title: String,
    pub viewer: Viewer,
    /// The sign-in page, coming back here.
    pub sign_in: String,
    /// The server's clock when the page was made (ms), so running timers tick in step.
    pub now: i64,
}

impl Chrome {
    pub fn new(title: impl Into<String>, viewer: Viewer) -> Self {
        Chrome {
            title: title.into(),
            sign_in: format!("/sign-in?next={}", urlencode(&viewer.here)),
            viewer,
            now: crate::clock::now_ms(),
        }
    }
}

/// A path as a query parameter's value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A state as text and symbol, never by colour alone; `status` picks the colour.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Badge {
    pub status: String,
    pub icon: &'static str,
    pub label: &'static str,
}

/// Whether a job run waits for someone to approve or decline it.
pub fn awaits_approval(j: &JobRunView) -> bool {
    j.status == "waiting" && j.waiting_for.as_deref().is_none_or(|w| w == "approval")
}

/// What a job run waits for, or why it was skipped, in words (empty when neither).
pub fn job_note(j: &JobRunView) -> String {
    let at = j
        .decided_at
        .map(|t| format!(" at {}", when(t)))
        .unwrap_or_default();
    match (j.status.as_str(), &j.waiting_for, &j.reason) {
        ("waiting", Some(w), _) if w == "approval" => "waits for approval".into(),
        ("waiting", None, _) => "waits for approval".into(),
        ("waiting", Some(w), _) => format!("waits for {w}"),
        (_, _, Some(r)) if r.starts_with("declined by") && j.decided_at.is_some() => {
            format!("{r} ({})", at.trim())
        }
        (_, _, Some(r)) => r.clone(),
        _ => match &j.decided_by {
            Some(by) => format!("approved by {by}{at}"),
            None => String::new(),
        },
    }
}

/// A job run's badge: a `waiting` one that waits for its concurrency group, not for
/// approval, says so.
pub fn job_badge(j: &JobRunView) -> Badge {
    if j.status == "running" && j.cancel_requested {
        return Badge {
            status: "cancelling".into(),
            icon: "⊘",
            label: "cancelling",
        };
    }
    if j.status == "waiting" && !awaits_approval(j) {
        return Badge {
            status: j.status.clone(),
            icon: "‖",
            label: "waiting for its concurrency group",
        };
    }
    badge(&j.status)
}

pub fn badge(status: &str) -> Badge {
    let (icon, label) = match status {
        "succeeded" => ("✓", "succeeded"),
        "failed" => ("✗", "failed"),
        "running" => ("▶", "running"),
        "queued" => ("◷", "queued"),
        "pending" => ("○", "pending"),
        "skipped" => ("↷", "skipped"),
        "cancelled" => ("⊘", "cancelled"),
        "waiting" => ("‖", "waiting for approval"),
        "config_error" => ("⚠", "config error"),
        _ => ("?", "unknown"),
    };
    Badge {
        status: status.to_string(),
        icon,
        label,
    }
}

/// A moment, in UTC.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    })
}

/// A span of time, shortly: `0.4 s`, `12 s`, `3 min 04 s`, `2 h 05 min`.
pub fn span(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{:.1} s", ms as f64 / 1000.0),
        1_000..60_000 => format!("{} s", ms / 1000),
        60_000..3_600_000 => format!("{} min {:02} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// How long something ran: until it finished, or until now.
pub fn took(start: Option<i64>, end: Option<i64>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => span(e - s),
        (Some(s), None) => format!("{} so far", span(crate::clock::now_ms() - s)),
        _ => String::new(),
    }
}

/// When a running span started (ms), for a timer that ticks in the browser; `None` once
/// it has ended or before it starts.
pub fn since(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    start.filter(|_| end.is_none())
}

/// A link: where, and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// What started a build, in words, with a link to the build behind it when there is one.
pub fn trigger_text(b: &BuildView) -> (String, Option<Link>) {
    let actor = b.context.as_ref().and_then(|c| c.actor.as_deref());
    match &b.trigger {
        BuildTrigger::Manual => match actor {
            Some(who) => (format!("started by {who}"), None),
            None => ("started by hand".into(), None),
        },
        BuildTrigger::Webhook { forge, git_ref, .. } => {
            let what = match b.context.as_ref().map(|c| c.event) {
                Some(Event::PullRequest) => "pull request",
                Some(Event::Tag) => "tag",
                _ => "push",
            };
            let by = actor.map(|a| format!(" by {a}")).unwrap_or_default();
            (format!("{forge} {what} {}{by}", short_ref(git_ref)), None)
        }
        BuildTrigger::Upstream {
            build_id,
            product,
            belt,
            number,
        } => (
            "fired by".into(),
            Some(Link {
                href: format!("/builds/{build_id}"),
                text: format!("{product} {belt} #{number}"),
            }),
        ),
        BuildTrigger::Schedule { cron, .. } => (format!("the schedule `{cron}`"), None),
        BuildTrigger::Resource {
            resource_type,
            name,
            version,
            event,
        } => (
            format!("{event} of resource"),
            Some(Link {
                href: format!("/resources/{resource_type}/{name}/{version}"),
                text: format!("{resource_type}/{name} version {version}"),
            }),
        ),
        BuildTrigger::Rerun {
            build_id, number, ..
        } => (
            "re-run of".into(),
            Some(Link {
                href: format!("/builds/{build_id}"),
                text: format!("#{number}"),
            }),
        ),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub next: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub message: String,
}

pub fn error_page(status: StatusCode, message: String) -> Response {
    let page = ErrorPage {
        chrome: Chrome::new(
            status.canonical_reason().unwrap_or("Error"),
            Viewer::default(),
        ),
        message,
    };
    match page.render() {
        Ok(html) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("rendering the error page: {e}");
            status.into_response()
        }
    }
}

/// A ref as people say it: `main` for `refs/heads/main`, `v1.2` for `refs/tags/v1.2`,
/// `#12` for a pull request's `refs/pull/12/head`.
pub fn short_ref(r: &str) -> String {
    if let Some(n) = r
        .strip_prefix("refs/pull/")
        .or_else(|| r.strip_prefix("refs/merge-requests/"))
        .and_then(|rest| rest.split('/').next())
    {
        return format!("#{n}");
    }
    r.strip_prefix("refs/heads/")
        .or_else(|| r.strip_prefix("refs/tags/"))
        .unwrap_or(r)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_symbol_and_words() {
        for s in [
            "succeeded",
            "failed",
            "running",
            "queued",
            "pending",
            "skipped",
            "cancelled",
            "waiting",
            "config_error",
        ] {
            let b = badge(s);
            assert_ne!(b.label, "unknown", "{s}");
            assert!(!b.icon.is_empty());
        }
    }

    #[test]
    fn refs_read_as_people_say_them() {
        assert_eq!(short_ref("refs/heads/feature/x"), "feature/x");
        assert_eq!(short_ref("refs/tags/v1.2"), "v1.2");
        assert_eq!(short_ref("refs/pull/12/head"), "#12");
        assert_eq!(short_ref("refs/merge-requests/7/head"), "#7");
        assert_eq!(short_ref("refs/notes/x"), "refs/notes/x");
    }

    #[test]
    fn spans_read_shortly() {
        assert_eq!(span(400), "0.4 s");
        assert_eq!(span(12_300), "12 s");
        assert_eq!(span(184_000), "3 min 04 s");
        assert_eq!(span(7_500_000), "2 h 05 min");
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
    }
}
