//! Credentials on a command line — tokens, and URLs that may carry a password — for
//! `conveyor-runner`, `conveyor serve` and `conveyor up`: each comes from the environment,
//! from a file (`--…-file`), or (with a warning) from argv, which every process on the
//! machine can read (`/proc/<pid>/cmdline`).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use clap::parser::ValueSource;

/// A credential flag: its clap id, what it is in words, its flag and its environment
/// variable; the file variants add `-file` and `_FILE` to them (`--admin-token-file`,
/// `CONVEYOR_ADMIN_TOKEN_FILE`).
#[derive(Debug, Clone, Copy)]
pub struct Credential {
    pub id: &'static str,
    pub what: &'static str,
    pub flag: &'static str,
    pub var: &'static str,
}

impl Credential {
    /// Whether this is a URL, a secret only when it carries a password.
    fn is_url(&self) -> bool {
        self.var.ends_with("URL")
    }
}

/// A credential given directly or in a file; `None` when neither. Giving both is an error,
/// as is an empty file; one trailing newline of the file is dropped, and a file other users
/// can read earns a warning.
pub fn secret(
    value: &Option<String>,
    file: &Option<PathBuf>,
    c: Credential,
) -> Result<Option<String>, String> {
    let Some(path) = file else {
        return Ok(value.clone());
    };
    let (what, flag, var) = (c.what, c.flag, c.var);
    if value.is_some() {
        return Err(format!(
            "the {what} is given twice, directly ({flag} or {var}) and as a file \
             ({flag}-file or {var}_FILE): give one of them"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(format!("the {what} file {} is empty", path.display()));
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.mode() & 0o077 != 0
    {
        eprintln!(
            "warning: other users can read the {what} file {} (mode {:o}); chmod 600 it",
            path.display(),
            meta.mode() & 0o777
        );
    }
    Ok(Some(text.to_string()))
}

/// The warnings for credentials given on the command line (a URL only when it carries a
/// password), one per credential, in the order given.
pub fn argv_warnings(matches: &clap::ArgMatches, credentials: &[Credential]) -> Vec<String> {
    credentials
        .iter()
        .filter(|c| {
            matches.try_contains_id(c.id).unwrap_or(false)
                && matches.value_source(c.id) == Some(ValueSource::CommandLine)
        })
        .filter(|c| {
            !c.is_url()
                || matches
                    .try_get_many::<String>(c.id)
                    .ok()
                    .flatten()
                    .is_some_and(|mut urls| urls.any(|u| has_password(u)))
        })
        .map(|c| {
            let (flag, var) = (c.flag, c.var);
            format!(
                "warning: {flag} on the command line can be read by every process on this \
                 machine, jobs included; use {var} or {flag}-file"
            )
        })
        .collect()
}

/// Prints [`argv_warnings`] to stderr.
pub fn warn_about_argv(matches: &clap::ArgMatches, credentials: &[Credential]) {
    for w in argv_warnings(matches, credentials) {
        eprintln!("{w}");
    }
}

/// Whether a URL carries a password: `scheme://user:password@host…`, or a `password=`
/// parameter (Postgres).
pub fn has_password(url: &str) -> bool {
    let userinfo = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .map(|(userinfo, _)| userinfo);
    userinfo.is_some_and(|u| u.contains(':')) || url.contains("password=")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: Credential = Credential {
        id: "token",
        what: "token",
        flag: "--token",
        var: "CONVEYOR_TOKEN",
    };
    const REDIS_URL: Credential = Credential {
        id: "redis_url",
        what: "Redis URL",
        flag: "--redis-url",
        var: "CONVEYOR_REDIS_URL",
    };

    #[test]
    fn a_credential_file_loses_its_trailing_newline_and_must_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("conveyor-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, empty) = (dir.join("token"), dir.join("empty"));
        std::fs::write(&file, "s3cret\r\n").unwrap();
        std::fs::write(&empty, "\n").unwrap();
        assert_eq!(
            secret(&None, &Some(file.clone()), TOKEN).unwrap().unwrap(),
            "s3cret"
        );
        assert_eq!(
            secret(&Some("direct".into()), &None, TOKEN)
                .unwrap()
                .unwrap(),
            "direct"
        );
        assert_eq!(secret(&None, &None, TOKEN).unwrap(), None);
        assert_eq!(
            secret(&None, &Some(empty.clone()), TOKEN).unwrap_err(),
            format!("the token file {} is empty", empty.display())
        );
        assert_eq!(
            secret(&Some("direct".into()), &Some(file), REDIS_URL).unwrap_err(),
            "the Redis URL is given twice, directly (--redis-url or CONVEYOR_REDIS_URL) and as a \
             file (--redis-url-file or CONVEYOR_REDIS_URL_FILE): give one of them"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_urls_with_a_password_count_as_secrets() {
        assert!(has_password("postgres://conveyor:pw@db:5432/conveyor"));
        assert!(has_password("redis://:pw@redis:6379"));
        assert!(!has_password("redis://user@redis:6379"));
        assert!(has_password("postgres://db/conveyor?user=c&password=pw"));
        assert!(!has_password("postgres://conveyor@db/conveyor"));
        assert!(!has_password("redis://redis:6379"));
        assert!(!has_password("sqlite:///var/lib/conveyor/db?mode=rwc"));
        assert!(!has_password("sqlite:///tmp/a@b:c/conveyor.db"));
    }

    #[test]
    fn a_credential_on_the_command_line_is_warned_about_and_one_from_the_environment_is_not() {
        let cmd = || {
            clap::Command::new("t")
                .arg(
                    clap::Arg::new("token")
                        .long("token")
                        .env("CONVEYOR_T_TOKEN"),
                )
                .arg(clap::Arg::new("redis_url").long("redis-url"))
        };
        let warned = |args: &[&str]| {
            let m = cmd().get_matches_from(args);
            argv_warnings(&m, &[TOKEN, REDIS_URL])
        };
        assert_eq!(
            warned(&["t", "--token", "x", "--redis-url", "redis://:pw@r"]),
            [
                "warning: --token on the command line can be read by every process on this \
                 machine, jobs included; use CONVEYOR_TOKEN or --token-file",
                "warning: --redis-url on the command line can be read by every process on this \
                 machine, jobs included; use CONVEYOR_REDIS_URL or --redis-url-file",
            ]
        );
        assert!(warned(&["t", "--redis-url", "redis://r:6379"]).is_empty());
        assert!(warned(&["t"]).is_empty());
    }
}
