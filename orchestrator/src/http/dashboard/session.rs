//! Who is looking at a page, and signing in to the dashboard with the admin token (the
//! session itself is `http::sessions`'s; failed sign-ins count against the address, as
//! wrong tokens do). Each form carries a CSRF token, the HMAC of the session cookie, checked
//! on POST.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::view::{Chrome, SignInPage, Viewer, urlencode};
use super::{PageError, PageResult};
use crate::http::SharedState;
use crate::http::auth::guarded;
use crate::http::error::AppError;
use crate::http::sessions::{self, csrf_token, session};
use crate::secrets::same;

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
        Ok(Anyone(viewer(parts, state).await))
    }
}

impl FromRequestParts<SharedState> for Reader {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let v = viewer(parts, state).await;
        if v.signed_in || state.public_ui {
            Ok(Reader(v))
        } else {
            let next = urlencode(&v.here);
            Err(Redirect::to(&format!("/sign-in?next={next}")).into_response())
        }
    }
}

async fn viewer(parts: &Parts, state: &SharedState) -> Viewer {
    let here = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    match session(&parts.headers, state).await {
        Some(cookie) => Viewer {
            signed_in: true,
            csrf: csrf_token(state, &cookie),
            here,
        },
        None => Viewer {
            here,
            ..Viewer::default()
        },
    }
}

/// An action's form with nothing but the CSRF token (re-run, retry, cancel, approve …).
#[derive(Deserialize)]
pub struct NoFields {}

/// A form as posted: the CSRF token every action carries, beside the action's own fields.
/// (Flattened, the fields arrive as strings: a form of `T` reads text, never numbers.)
#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

/// A form posted by a signed-in viewer with their CSRF token: anything else is refused
/// (403) before the handler runs, so no action can forget the check, and no form declares
/// the token itself.
pub struct Posted<T>(pub T);

impl<T> FromRequest<SharedState> for Posted<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Response;
    async fn from_request(req: Request, state: &SharedState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let viewer = viewer(&parts, state).await;
        let req = Request::from_parts(parts, body);
        let Form(posted) = Form::<WithCsrf<T>>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        check(&viewer, &posted.csrf).map_err(IntoResponse::into_response)?;
        Ok(Posted(posted.form))
    }
}

/// Refuses an action unless the viewer is signed in and `csrf` is their token.
fn check(viewer: &Viewer, csrf: &str) -> PageResult<()> {
    if !viewer.signed_in {
        return Err(PageError::Forbidden(
            "Sign in with the admin token to do this.".into(),
        ));
    }
    if csrf.is_empty() || !same(csrf, &viewer.csrf) {
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
    parts: Parts,
    Form(form): Form<SignIn>,
) -> PageResult<Response> {
    let next = local_path(form.next.as_deref());
    let token = form.token.trim();
    match guarded(&parts, &state, || {
        same(token, &state.admin_token).then_some(())
    }) {
        Ok(()) => Ok(with_cookie(
            Redirect::to(&next),
            &sessions::start(&state).await?,
        )),
        Err(AppError::Unauthorized) => {
            let page = SignInPage {
                chrome: Chrome::new("Sign in", viewer),
                next,
                error: Some("That is not the admin token. `conveyor up` prints it when it starts; `conveyor serve` takes it from CONVEYOR_ADMIN_TOKEN or --admin-token-file.".into()),
            };
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Ends the session on every orchestrator, not only in this browser.
pub async fn sign_out(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Posted(_): Posted<NoFields>,
) -> PageResult<Response> {
    let cleared = sessions::end(&state, &headers).await?;
    Ok(with_cookie(Redirect::to("/"), &cleared))
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
