//! Lists of builds, paged: a filter checked field by field, and the cursor of the next
//! (older) page when there may be one.

use super::input::{self, invalid};
use super::{Result, Services};
use crate::store::{BuildFilter, BuildView, TRIGGER_KIND, cursor_of, parse_cursor};

/// The page size when a list names none.
pub const DEFAULT_PAGE: u32 = 50;
/// The largest page a list gives.
pub const MAX_PAGE: u32 = 500;

/// Refuses a filter field that could not match a build, naming the field.
pub fn check(f: &BuildFilter) -> Result<()> {
    for (field, v) in [("product", &f.product), ("belt", &f.belt)] {
        if let Some(v) = v {
            input::name(field, v)?;
        }
    }
    if let Some(status) = &f.status {
        input::build_status("status", status)?;
    }
    if let Some(r) = &f.git_ref {
        input::git_ref("ref", r)?;
    }
    if let Some(t) = &f.trigger
        && !TRIGGER_KIND.contains(&t.as_str())
    {
        let kinds = TRIGGER_KIND.join(", ");
        return Err(invalid("trigger", format!("must be one of {kinds}")));
    }
    if let Some(c) = &f.before
        && parse_cursor(c).is_none()
    {
        return Err(invalid("before", "is not a cursor this list gave".into()));
    }
    if f.limit.is_some_and(|l| l == 0 || l > MAX_PAGE) {
        return Err(invalid("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    Ok(())
}

/// One page of builds and the cursor of the next, if the page is full.
pub async fn page(s: &Services, f: &BuildFilter) -> Result<(Vec<BuildView>, Option<String>)> {
    check(f)?;
    let builds = s.store.builds(f).await?;
    let full = builds.len() >= f.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let next = builds.last().filter(|_| full).map(cursor_of);
    Ok((builds, next))
}
