//! Signing in to the dashboard with the admin token. A session is a cookie holding an
//! expiry and its HMAC under a key derived from the admin token: nothing is stored, every
//! orchestrator sharing the token accepts it, and changing the token ends every session.
//! Each form carries a CSRF token, the HMAC of the session cookie, checked on POST.

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::view::{Chrome, SignInPage};
use super::{PageError, PageResult};
use crate::auth::same;
use crate::state::{SharedState, now_ms};

const COOKIE: &str = "conveyor_session";
/// How long a session lasts.
const SESSION_SECS: i64 = 12 * 3600;

/// Who is looking at a page.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub signed_in: bool,
    /// The CSRF token forms carry; empty when not signed in.
    pub csrf: String,
    /// The path and query of this page, to come back to after signing in.
    pub here: String,
}

/// A viewer allowed to read: anyone when read-only pages are public, else signed in.
/// Others are sent to the sign-in page.
pub struct Reader(pub Viewer);

/// Any viewer, signed in or not (the sign-in page itself).
pub struct Anyone(pub Viewer);

impl FromRequestParts<SharedState> for Anyone {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Anyone(viewer(parts, state)))
    }
}

impl FromRequestParts<SharedState> for Reader {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let v = viewer(parts, state);
        if v.signed_in || state.public_ui {
            Ok(Reader(v))
        } else {
            let next = urlencode(&v.here);
            Err(Redirect::to(&format!("/sign-in?next={next}")).into_response())
        }
    }
}

/// Whether the request carries a valid dashboard session.
pub fn signed_in(parts: &Parts, state: &SharedState) -> bool {
    session_cookie(&parts.headers).is_some_and(|c| valid(state, &c, now_ms()))
}

fn viewer(parts: &Parts, state: &SharedState) -> Viewer {
    let here = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    match session_cookie(&parts.headers).filter(|c| valid(state, c, now_ms())) {
        Some(cookie) => Viewer {
            signed_in: true,
            csrf: mac(&key(state), &format!("csrf:{cookie}")),
            here,
        },
        None => Viewer {
            here,
            ..Viewer::default()
        },
    }
}

/// The form field every action carries.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Refuses an action unless the viewer is signed in and the form carries their token.
pub fn check(viewer: &Viewer, form: &CsrfForm) -> PageResult<()> {
    if !viewer.signed_in {
        return Err(PageError::Forbidden(
            "Sign in with the admin token to do this.".into(),
        ));
    }
    if form.csrf.is_empty() || !same(&form.csrf, &viewer.csrf) {
        return Err(PageError::Forbidden(
            "This form is stale or was not sent from this dashboard (its CSRF token is missing or wrong): reload the page and try again.".into(),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

pub async fn page(Anyone(viewer): Anyone, Query(q): Query<Next>) -> SignInPage {
    SignInPage {
        chrome: Chrome::new("Sign in", viewer),
        next: local_path(q.next.as_deref()),
        error: None,
    }
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

pub async fn sign_in(
    State(state): State<SharedState>,
    Anyone(viewer): Anyone,
    Form(form): Form<SignIn>,
) -> Response {
    let next = local_path(form.next.as_deref());
    if !same(form.token.trim(), &state.admin_token) {
        let page = SignInPage {
            chrome: Chrome::new("Sign in", viewer),
            next,
            error: Some("That is not the admin token. `conveyor up` prints it when it starts; `conveyor serve` takes it from --admin-token.".into()),
        };
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let exp = now_ms() / 1000 + SESSION_SECS;
    let value = format!("{exp}.{}", mac(&key(&state), &format!("session:{exp}")));
    let cookie =
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}");
    with_cookie(Redirect::to(&next), &cookie)
}

pub async fn sign_out(Anyone(viewer): Anyone, Form(form): Form<CsrfForm>) -> PageResult<Response> {
    check(&viewer, &form)?;
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(with_cookie(Redirect::to("/"), &cookie))
}

fn with_cookie(redirect: Redirect, cookie: &str) -> Response {
    let mut res = redirect.into_response();
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// A path on this site to go to, or `/`: never another origin, and nothing a `Location`
/// header cannot carry.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

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

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

fn valid(state: &SharedState, cookie: &str, now: i64) -> bool {
    let Some((exp, tag)) = cookie.split_once('.') else {
        return false;
    };
    let Ok(secs) = exp.parse::<i64>() else {
        return false;
    };
    !tag.is_empty() && secs > now / 1000 && same(tag, &mac(&key(state), &format!("session:{secs}")))
}

fn key(state: &SharedState) -> Vec<u8> {
    Sha256::new()
        .chain_update(b"conveyor dashboard session\0")
        .chain_update(state.admin_token.as_bytes())
        .finalize()
        .to_vec()
}

fn mac(key: &[u8], message: &str) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    m.update(message.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn sign_in_returns_only_to_paths_on_this_site() {
        assert_eq!(local_path(Some("/builds/1?x=2")), "/builds/1?x=2");
        assert_eq!(local_path(Some("//evil.test/")), "/");
        assert_eq!(local_path(Some("https://evil.test/")), "/");
        assert_eq!(local_path(Some("/\\evil.test")), "/");
        assert_eq!(local_path(Some("/x\r\nSet-Cookie: a=b")), "/");
        assert_eq!(local_path(Some("/caf\u{e9}")), "/");
        assert_eq!(local_path(None), "/");
    }
}
