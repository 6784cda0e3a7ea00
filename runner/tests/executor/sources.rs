//! Sources and workspaces: a local directory copied, git checked out through a mirror, `git:`
//! inputs cloned, a bad URL refused before the script runs, and each run starting empty.

use conveyor_core::protocol::{Outcome, SourceSpec, Stream};

use crate::{TestDir, env, git, run, spec, texts};

#[tokio::test]
async fn a_local_source_is_copied_into_the_workspace() {
    let dir = TestDir::new("local");
    let src = dir.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir_all(src.join(".git")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha").unwrap();
    std::fs::write(src.join("sub/b.txt"), "beta").unwrap();
    std::os::unix::fs::symlink("sub/b.txt", src.join("link")).unwrap();
    let mut s = spec(
        "cat a.txt; echo\ncat sub/b.txt; echo\nreadlink link\ntest ! -e .git && echo 'no .git'",
    );
    s.source = Some(SourceSpec::Local {
        path: src.to_string_lossy().into_owned(),
    });
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_eq!(
        texts(&lines, Stream::Stdout),
        ["alpha", "beta", "sub/b.txt", "no .git"]
    );
}

#[tokio::test]
async fn a_git_source_is_checked_out_at_the_given_sha() {
    let dir = TestDir::new("git");
    let repo = dir.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("version.txt"), "first").unwrap();
    git(&repo, &["add", "version.txt"]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("version.txt"), "second").unwrap();
    git(&repo, &["commit", "--quiet", "-am", "second"]);
    let url = format!("file://{}", repo.display());
    let mut s = spec("cat version.txt");
    s.source = Some(SourceSpec::Git {
        url: url.clone(),
        sha: first.clone(),
    });
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_eq!(result.outputs["STDOUT"], "first");
    assert_eq!(
        texts(&lines, Stream::System)[0],
        format!("checking out {url} at {first}")
    );
}

#[tokio::test]
async fn a_second_checkout_comes_from_the_mirror_and_fetches_only_what_is_new() {
    let dir = TestDir::new("mirror");
    let repo = dir.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("version.txt"), "first").unwrap();
    git(&repo, &["add", "version.txt"]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", repo.display());
    let at = |sha: &str| {
        let mut s = spec("cat version.txt; echo; git remote get-url origin");
        s.source = Some(SourceSpec::Git {
            url: url.clone(),
            sha: sha.to_string(),
        });
        s
    };
    let cfg = dir.config();
    let (result, _) = run(&at(&first), &cfg).await;
    assert_eq!(result.outputs["STDOUT"], format!("first\n{url}"));
    // With the origin gone, a known commit still checks out: nothing is fetched for it.
    let moved = dir.path("moved");
    std::fs::rename(&repo, &moved).unwrap();
    let (result, lines) = run(&at(&first), &cfg).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_eq!(result.outputs["STDOUT"], format!("first\n{url}"));
    // A new commit is fetched into the mirror.
    std::fs::rename(&moved, &repo).unwrap();
    std::fs::write(repo.join("version.txt"), "second").unwrap();
    git(&repo, &["commit", "--quiet", "-am", "second"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    let (result, lines) = run(&at(&second), &cfg).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert!(result.outputs["STDOUT"].starts_with("second"));
}

#[tokio::test]
async fn a_git_input_is_cloned_into_a_directory_named_after_the_repository() {
    let dir = TestDir::new("git-input");
    let repo = dir.path("tools.git");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("tool.sh"), "echo tool").unwrap();
    git(&repo, &["add", "tool.sh"]);
    git(&repo, &["commit", "--quiet", "-m", "tool"]);
    let mut s = spec("bash tools/tool.sh");
    s.git_inputs = vec![format!("file://{}", repo.display())];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_eq!(result.outputs["STDOUT"], "tool");
}

#[tokio::test]
async fn a_bad_git_url_fails_the_checkout_and_the_script_never_runs() {
    let dir = TestDir::new("bad-git");
    let marker = dir.path("ran");
    let url = format!("file://{}", dir.path("missing").display());
    let mut s = spec("touch \"$MARKER\"");
    s.env = env(&[("MARKER", &marker.to_string_lossy())]);
    s.source = Some(SourceSpec::Git {
        url: url.clone(),
        sha: "0123456789abcdef0123456789abcdef01234567".to_string(),
    });
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.exit_code, None);
    let error = result.error.unwrap();
    let expected = format!(
        "checkout of {url} failed: fatal: '{}' does not appear to be a git repository",
        dir.path("missing").display()
    );
    assert_eq!(error, expected);
    assert_eq!(texts(&lines, Stream::System).last(), Some(&error.as_str()));
    assert!(!marker.exists());
}

#[tokio::test]
async fn the_workspace_is_emptied_after_the_run_and_the_next_run_starts_empty() {
    let dir = TestDir::new("cleanup");
    let cfg = dir.config();
    let (result, _) = run(
        &spec("echo data > file.txt; mkdir -p d/e; echo K=V >> \"$CONVEYOR_OUTPUT\""),
        &cfg,
    )
    .await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert!(cfg.work_root.exists());
    let mut left = Vec::new();
    let mut stack = vec![cfg.work_root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            left.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        !left
            .iter()
            .any(|n| n == "file.txt" || n == "d" || n == "output.env"),
        "{left:?}"
    );
    let (second, lines) = run(
        &spec("ls -A; test ! -e \"$CONVEYOR_OUTPUT\" && echo clean"),
        &cfg,
    )
    .await;
    assert_eq!(second.outcome, Outcome::Succeeded);
    assert_eq!(texts(&lines, Stream::Stdout), ["clean"]);
    assert!(
        !second.outputs.contains_key("K"),
        "no output leaks from the run before"
    );
}
