//! Links from a build to its forge: the commit's page on GitHub, GitLab or Gitea, worked out
//! from the product's repository URL (and the forge a webhook named).

/// The forge page of commit `sha` of the repository at `repo`; `None` when the repository is
/// not on a forge conveyor knows (a local path, an unknown host) or `sha` is no commit id.
/// `forge` is the forge a webhook came from, which names a self-hosted one.
pub fn commit_url(repo: &str, forge: Option<&str>, sha: &str) -> Option<String> {
    if sha.len() < 7 || sha.len() > 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let base = web_base(repo)?;
    let host = base.split('/').nth(2)?.to_ascii_lowercase();
    let kind = match forge {
        Some(f @ ("github" | "gitlab" | "gitea")) => f,
        _ if host == "github.com" => "github",
        _ if host == "gitlab.com" || host.starts_with("gitlab.") => "gitlab",
        _ if host == "codeberg.org" || host.starts_with("gitea.") => "gitea",
        _ => return None,
    };
    Some(match kind {
        "gitlab" => format!("{base}/-/commit/{sha}"),
        _ => format!("{base}/commit/{sha}"),
    })
}

/// `https://host/owner/name` for an `https://`, `http://`, `ssh://git@host/…` or
/// `git@host:owner/name(.git)` URL; `None` for anything else (a path, `file://`).
fn web_base(repo: &str) -> Option<String> {
    let repo = repo.trim().trim_end_matches('/');
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    let (scheme, rest) = if let Some(r) = repo.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = repo.strip_prefix("http://") {
        ("http", r)
    } else if let Some(r) = repo.strip_prefix("ssh://") {
        ("https", r.split_once('@').map_or(r, |(_, h)| h))
    } else if let Some((user_host, path)) = repo.split_once(':')
        && let Some((_, host)) = user_host.split_once('@')
    {
        return Some(format!("https://{host}/{path}"));
    } else {
        return None;
    };
    // No credentials in a link; an ssh port is not the web's.
    let rest = rest.split_once('@').map_or(rest, |(_, h)| h);
    let (host, path) = rest.split_once('/')?;
    let host = if scheme == "https" && repo.starts_with("ssh://") {
        host.split(':').next()?
    } else {
        host
    };
    (!path.is_empty()).then(|| format!("{scheme}://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::commit_url;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn commits_link_to_their_forge_from_the_repository_url() {
        let url = |repo, forge| commit_url(repo, forge, SHA);
        assert_eq!(
            url("https://github.com/acme/shop.git", None).as_deref(),
            Some(format!("https://github.com/acme/shop/commit/{SHA}").as_str())
        );
        assert_eq!(
            url("git@gitlab.com:acme/tools/shop.git", None).as_deref(),
            Some(format!("https://gitlab.com/acme/tools/shop/-/commit/{SHA}").as_str())
        );
        assert_eq!(
            url("https://git.example.org/acme/shop", Some("gitea")).as_deref(),
            Some(format!("https://git.example.org/acme/shop/commit/{SHA}").as_str())
        );
        assert_eq!(
            url("https://user:secret@github.com/acme/shop", None).as_deref(),
            Some(format!("https://github.com/acme/shop/commit/{SHA}").as_str()),
            "no credentials in a link"
        );
        assert_eq!(url("file:///srv/shop.git", None), None);
        assert_eq!(url("/srv/shop", None), None);
        assert_eq!(url("https://git.example.org/acme/shop", None), None);
        assert_eq!(commit_url("https://github.com/a/b", None, "main"), None);
    }
}
