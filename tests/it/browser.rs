//! A small W3C WebDriver client driving Debian's headless Chromium through one chromedriver
//! per test run, plus the page checks the browser tests share (axe-core, screenshots).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Chromium sessions running at once (each is a few hundred MiB and a busy core). The
/// journeys hold two windows each and take the second while holding the first: with two of
/// them, three slots keep one free for whoever waits, so no test can wait forever.
static SESSIONS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| tokio::sync::Semaphore::new(3));

static DRIVER: OnceLock<String> = OnceLock::new();

/// The W3C element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver, started on first use in its own process group; a reaper stops the group
/// (driver and browsers) once this test process is gone.
fn driver() -> &'static str {
    DRIVER.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut child = Command::new("setsid")
            .args(["chromedriver", &format!("--port={port}"), "--allowed-ips=127.0.0.1", "--log-level=SEVERE"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium chromium-driver)");
        let driver_pid = child.id();
        // Reap it when it exits (it lives as long as this process, normally).
        std::thread::spawn(move || child.wait());
        crate::harness::after_this_process(&format!(
            "kill -TERM -{driver_pid} 2>/dev/null; sleep 2; kill -KILL -{driver_pid} 2>/dev/null"
        ));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        url
    })
}

/// One Chromium window.
pub struct Browser {
    client: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// A new headless window, with JavaScript on or off.
    pub async fn start(javascript: bool) -> Self {
        let permit = SESSIONS.acquire().await.expect("browser slot");
        let profile = tempfile::Builder::new().prefix("agora-chromium-").tempdir().expect("profile dir");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "unhandledPromptBehavior": "ignore",
        }}});
        let client = reqwest::Client::new();
        let response: Value = client
            .post(format!("{}/session", driver()))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session answer");
        let session =
            response["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {response}")).to_owned();
        Self { client, session, _profile: profile, _permit: permit }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", driver(), self.session);
        let mut request = self.client.request(method.clone(), &url);
        if method == reqwest::Method::POST {
            request = request.json(&body.unwrap_or_else(|| json!({})));
        }
        let response = request.send().await.expect("webdriver request");
        let answer: Value = response.json().await.expect("webdriver answer");
        answer["value"].clone()
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let value = self.call(method, path, body).await;
        if let Some(error) = value.get("error") {
            panic!("webdriver {path}: {error}: {}", value["message"]);
        }
        value
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.ok(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The address of the current page.
    pub async fn url(&self) -> String {
        self.ok(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let value =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        value.get(ELEMENT).and_then(Value::as_str).map(|id| Element(id.to_owned()))
    }

    /// The element matching `css`, waiting up to 10 s for it.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(element) = self.try_find(css).await {
                return element;
            }
            assert!(Instant::now() < deadline, "no element matches `{css}` on {}", self.url().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        let value =
            self.call(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        value.as_array().map_or(0, Vec::len)
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.ok(reqwest::Method::POST, &format!("/element/{}/click", element.0), None).await;
    }

    /// Clicks the element matching `css` and waits until the browser has left the page (the
    /// old document's root goes stale), as after a form post or a link.
    pub async fn submit(&self, css: &str) {
        let root = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.call(reqwest::Method::GET, &format!("/element/{}/name", root.0), None).await;
            if value.get("error").is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "`{css}` did not lead to a new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses and releases the Tab key.
    pub async fn press_tab(&self) {
        let tab = "\u{E004}";
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": tab}, {"type": "keyUp", "value": tab}]}]});
        self.ok(reqwest::Method::POST, "/actions", Some(actions)).await;
    }

    /// Types `text` into the field matching `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.ok(reqwest::Method::POST, &format!("/element/{}/clear", element.0), None).await;
        self.ok(reqwest::Method::POST, &format!("/element/{}/value", element.0), Some(json!({"text": text}))).await;
    }

    /// Chooses the file at `path` in the file input matching `css`.
    pub async fn choose_file(&self, css: &str, path: &std::path::Path) {
        let element = self.find(css).await;
        let text = path.display().to_string();
        self.ok(reqwest::Method::POST, &format!("/element/{}/value", element.0), Some(json!({"text": text}))).await;
    }

    /// An attribute of the element matching `css` (`None` when it has none).
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css).await;
        let value = self.ok(reqwest::Method::GET, &format!("/element/{}/attribute/{name}", element.0), None).await;
        value.as_str().map(str::to_owned)
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.ok(reqwest::Method::GET, &format!("/element/{}/text", element.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether the element matching `css` is shown.
    pub async fn displayed(&self, css: &str) -> bool {
        let element = self.find(css).await;
        self.ok(reqwest::Method::GET, &format!("/element/{}/displayed", element.0), None)
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// The page's HTML source.
    pub async fn source(&self) -> String {
        self.ok(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub async fn execute(&self, script: &str) -> Value {
        self.ok(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Runs `script`, whose last argument is the callback to call with the result.
    pub async fn execute_async(&self, script: &str) -> Value {
        self.ok(reqwest::Method::POST, "/timeouts", Some(json!({"script": 60_000}))).await;
        self.ok(reqwest::Method::POST, "/execute/async", Some(json!({"script": script, "args": []}))).await
    }

    /// The text of an open alert, if one is open.
    pub async fn alert(&self) -> Option<String> {
        let value = self.call(reqwest::Method::GET, "/alert/text", None).await;
        value.as_str().map(str::to_owned)
    }

    /// The browser console messages since the last call.
    pub async fn console(&self) -> Vec<Value> {
        let value = self.call(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        value.as_array().cloned().unwrap_or_default()
    }

    /// Emulates a device `width` CSS pixels wide and the light or dark colour scheme.
    pub async fn emulate(&self, width: u32, dark: bool) {
        let mobile = width < 600;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": if mobile { 844 } else { 900 }, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
        let scheme = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.ok(reqwest::Method::POST, "/goog/cdp/execute", Some(json!({"cmd": cmd, "params": params}))).await
    }

    /// A PNG of the whole page, saved as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let shot = self
            .cdp("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true, "fromSurface": true}))
            .await;
        let png =
            base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap_or_default()).expect("png");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Runs axe-core on the page and returns its serious and critical violations.
    pub async fn accessibility_violations(&self) -> Vec<Value> {
        let axe = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js"),
        )
        .expect("axe-core is installed: npm ci --prefix tests/browser");
        self.execute(&axe).await;
        let result = self
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary)}))))
                    .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
            )
            .await;
        result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect()
    }
}

impl Drop for Browser {
    /// Closes the window, also when a test fails half-way.
    fn drop(&mut self) {
        let url = format!("{}/session/{}", driver(), self.session);
        let _ = std::thread::spawn(move || reqwest::blocking::Client::new().delete(url).send()).join();
    }
}
