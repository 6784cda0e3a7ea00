//! Values a request names — products, belts, ids, refs, commits, filters — checked before
//! they reach the store or git: a control character (a NUL, which Postgres cannot store) or
//! an over-long value is refused with an error naming the field, never carried to a 500.

use conveyor_core::names::{self, MAX_ID_LEN, MAX_NAME_LEN};

use super::{Result, ServiceError};

/// The build statuses a filter may name.
pub const BUILD_STATUSES: [&str; 5] = [
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "config_error",
];

/// A name of a product, belt, job, fleet or runner.
pub fn name(field: &str, value: &str) -> Result<()> {
    check(field, names::text_problem(value, MAX_NAME_LEN))
}

/// A build's or job run's id (or a lease token).
pub fn id(field: &str, value: &str) -> Result<()> {
    check(field, names::text_problem(value, MAX_ID_LEN))
}

/// A git ref, by git's rules.
pub fn git_ref(field: &str, value: &str) -> Result<()> {
    check(field, names::ref_problem(value))
}

/// A commit id.
pub fn sha(field: &str, value: &str) -> Result<()> {
    check(field, names::sha_problem(value))
}

/// Free text of at most `max` bytes with no control character (a URL, a secret).
pub fn text(field: &str, value: &str, max: usize) -> Result<()> {
    check(field, names::text_problem(value, max))
}

/// The longest value a build's variable may have.
pub const MAX_VARIABLE_LEN: usize = 4096;

/// A variable a build is started with: a shell variable name not reserved by conveyor, and
/// a value without NUL (which an environment cannot hold) of at most
/// [`MAX_VARIABLE_LEN`] bytes.
pub fn variable(name: &str, value: &str) -> Result<()> {
    let field = format!("variables.{name}");
    if !names::is_var_name(name) {
        return Err(invalid(
            "variables",
            format!(
                "has `{name}`, which is not a variable name: use letters, digits and `_`, not starting with a digit"
            ),
        ));
    }
    if name.starts_with("CONVEYOR_") {
        return Err(invalid(
            &field,
            "is reserved: names starting with `CONVEYOR_` are set by conveyor".into(),
        ));
    }
    if value.contains('\0') || value.len() > MAX_VARIABLE_LEN {
        return Err(invalid(
            &field,
            format!("must hold no NUL and at most {MAX_VARIABLE_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Who a request says it acts for (`by`): shown with what it did.
pub fn actor(field: &str, by: &str) -> Result<()> {
    if by.is_empty() || by.chars().count() > 100 || by.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "must be a name of 1 to 100 characters, without control characters".into(),
        ));
    }
    Ok(())
}

/// A build status to filter by.
pub fn build_status(field: &str, value: &str) -> Result<()> {
    if BUILD_STATUSES.contains(&value) {
        return Ok(());
    }
    Err(invalid(
        field,
        format!("must be one of {}", BUILD_STATUSES.join(", ")),
    ))
}

/// Text the store keeps as it was sent (log lines, errors, outputs) with each NUL, which
/// Postgres cannot store, as U+FFFD.
pub fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn check(field: &str, problem: Option<String>) -> Result<()> {
    problem.map_or(Ok(()), |p| Err(invalid(field, p)))
}

pub(super) fn invalid(field: &str, problem: String) -> ServiceError {
    ServiceError::InvalidField {
        field: field.to_string(),
        message: format!("`{field}` {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<()>) -> (String, String) {
        match r {
            Err(ServiceError::InvalidField { field, message }) => (field, message),
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn each_refusal_names_its_field() {
        assert_eq!(
            message(name("product", "shop\0")),
            (
                "product".into(),
                "`product` contains the control character U+0000; remove it".into()
            )
        );
        assert_eq!(
            message(id("id", &"9".repeat(65))).1,
            "`id` is 65 bytes long; at most 64 are allowed"
        );
        assert_eq!(
            message(build_status("status", "done")).1,
            "`status` must be one of running, succeeded, failed, cancelled, config_error"
        );
        assert!(git_ref("ref", "refs/heads/main").is_ok());
        assert!(sha("sha", &"0".repeat(40)).is_ok());
        assert_eq!(storable("a\0b"), "a\u{FFFD}b");
    }
}
