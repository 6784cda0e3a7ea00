//! The dashboard, one test binary: in a real browser (`in_browser`: Debian's headless
//! Chromium over WebDriver) and over plain HTTP (`over_http`: sessions, CSRF tokens, private
//! pages, log paging), against a conveyor with local runners (`ui_support`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod daily;
mod history;
mod in_browser;
mod logs;
mod over_http;
mod secrets;
mod ui_support;
