//! A small W3C WebDriver client over reqwest, driving Debian's chromedriver and headless
//! Chromium; and the scripts the tests run in the page.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait may take on a busy two-core machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One headless Chromium behind its own chromedriver.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    profile: PathBuf,
}

/// Waits until chromedriver at `base` says it is ready.
async fn until_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ready = match http.get(format!("{base}/status")).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["value"]["ready"].as_bool()),
            Err(_) => None,
        };
        if ready == Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A headless Chromium with its own profile directory. Finding an element waits up to 5 s
/// for it (W3C's implicit wait): a live page may be swapping in its refreshed content while
/// the machine is loaded, and an element missing for good still fails, 5 s later.
fn capabilities(profile: &std::path::Path) -> Value {
    json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "timeouts": { "implicit": 5000 },
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    }}})
}

impl Browser {
    /// Starts chromedriver on a free port and a fresh Chromium; fails loudly when either is
    /// not installed, never skips.
    pub async fn start() -> Browser {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(bin).exists(),
                "the browser tests need Debian's chromium and chromium-driver, and {bin} is missing: \
                 run `apt-get install -y chromium chromium-driver` (.ci/run does)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = crate::common::http();
        let base = format!("http://127.0.0.1:{port}");
        until_ready(&http, &base).await;
        let profile = std::env::temp_dir().join(format!(
            "conveyor-chromium-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities(&profile))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {res}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res: Value = req
            .send()
            .await
            .expect("webdriver answers")
            .json()
            .await
            .expect("JSON");
        if let Some(err) = res["value"]["error"].as_str() {
            panic!("webdriver {path}: {err}: {}", res["value"]["message"]);
        }
        res["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    /// Emulates a system that prefers a dark colour scheme (Chrome DevTools protocol).
    pub async fn prefer_dark(&self) {
        let features = json!([{ "name": "prefers-color-scheme", "value": "dark" }]);
        self.post(
            "/goog/cdp/execute",
            json!({ "cmd": "Emulation.setEmulatedMedia", "params": { "features": features } }),
        )
        .await;
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` as usual) and returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// The first element matching `css`, waited for up to [`PATIENCE`]: a page under load
    /// may be slow to arrive, or be swapping its content (the live pages).
    pub async fn find(&self, css: &str) -> String {
        let present = format!("return document.querySelector({}) !== null;", json!(css));
        self.wait_for(&format!("an element `{css}`"), &present)
            .await;
        let v = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    /// The visible text of the first element matching `css`, or "" when there is none.
    pub async fn text(&self, css: &str) -> String {
        let v = self
            .exec(
                "const e = document.querySelector(arguments[0]); return e ? (e.innerText === undefined ? e.textContent : e.innerText) : '';",
                json!([css]),
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Polls `script` until it returns something truthy; panics naming `what` (and saves a
    /// screenshot) when it never does.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            // A page being replaced (a reload, a form's redirect) may fail a script: try again.
            let res: Option<reqwest::Response> = self
                .http
                .post(format!("{}/execute/sync", self.session))
                .json(&json!({ "script": script, "args": [] }))
                .send()
                .await
                .ok();
            let value = match res {
                Some(r) => r.json::<Value>().await.ok().map(|v| v["value"].clone()),
                None => None,
            };
            if let Some(v) = value
                && v.get("error").is_none()
                && !(v.is_null() || v == json!(false) || v == json!(0) || v == json!(""))
            {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", slug(what))).await;
                let page = self.text("body").await;
                panic!("timed out waiting for {what}; the page says:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// Saves a PNG of the viewport under `target/ui-screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then chromedriver goes.
        let (http, session) = (self.http.clone(), self.session.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), http.delete(&session).send())
                        .await
                });
            }
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("ui-screenshots")
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The checks every page must pass: labelled inputs and buttons, titled SVGs, one `h1`,
/// headings in order, a language, a `main`, states in words, text contrast of at least
/// 4.5:1. Returns the problems found.
pub const ACCESSIBILITY: &str = r#"
const problems = [];
for (const i of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  const label = (i.id && document.querySelector('label[for="' + i.id + '"]')) || i.getAttribute('aria-label') || i.closest('label');
  if (!label) problems.push('an input without a label: ' + (i.name || i.id));
}
for (const b of document.querySelectorAll('button')) {
  if (!(b.textContent.trim() || b.getAttribute('aria-label'))) problems.push('a button without a name');
}
for (const i of document.querySelectorAll('img')) if (!i.hasAttribute('alt')) problems.push('an image without alt text');
for (const s of document.querySelectorAll('svg')) {
  if (!s.querySelector(':scope > title') && !s.getAttribute('aria-label')) problems.push('an svg without a title');
}
for (const a of document.querySelectorAll('svg a')) {
  if (!a.querySelector('title')) problems.push('an svg link without a title');
  const state = a.querySelector('text.state');
  if (!state || !/[a-z]/.test(state.textContent)) problems.push('a graph node whose state is not in words');
}
for (const b of document.querySelectorAll('.badge')) {
  if (!/[a-z]/.test(b.textContent)) problems.push('a state badge without words');
}
const h1 = document.querySelectorAll('h1').length;
if (h1 !== 1) problems.push(h1 + ' h1 elements');
let last = 0;
for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
  const level = Number(h.tagName[1]);
  if (level > last + 1) problems.push(h.tagName + ' "' + h.textContent.trim() + '" after h' + last);
  last = level;
}
if (!document.documentElement.lang) problems.push('no lang on html');
if (document.querySelectorAll('main').length !== 1) problems.push('not exactly one main');
if (!document.title) problems.push('no title');
const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const ground = el => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
  }
  return [255, 255, 255];
};
const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
for (const el of document.querySelectorAll('body *')) {
  if (el.closest('svg') || el.closest('.skip')) continue;
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const r = ratio(rgb(getComputedStyle(el).color), ground(el));
  if (r < 4.5) problems.push('contrast ' + r.toFixed(2) + ':1 for "' + el.textContent.trim().slice(0, 40) + '"');
}
for (const n of document.querySelectorAll('svg .node')) {
  const r = ratio(rgb(getComputedStyle(n.querySelector('text')).fill), rgb(getComputedStyle(n.querySelector('rect')).fill));
  if (r < 4.5) problems.push('contrast ' + r.toFixed(2) + ':1 in graph node ' + n.dataset.name);
}
return problems;
"#;

/// Whether the page is no wider than the window (nothing to scroll sideways).
pub const FITS: &str = "return document.documentElement.scrollWidth <= window.innerWidth ? true : document.documentElement.scrollWidth + ' > ' + window.innerWidth;";
