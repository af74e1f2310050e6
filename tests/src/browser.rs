//! A real headless Chromium, driven through chromedriver (Debian's `chromium` and
//! `chromium-driver` packages), for end-to-end tests of the page.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::Signal;
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Headless Chromium's narrowest window; narrower screens (phones) are emulated.
const MIN_WINDOW_WIDTH: u32 = 500;

/// A chromedriver process and one browser session, both ended when dropped.
pub struct Browser {
    driver: Child,
    _profile: tempfile::TempDir,
    /// The WebDriver session.
    pub client: Client,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile and the given window size
    /// (a page width under 500 px is an emulated phone screen).
    pub async fn start(width: u32, height: u32) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver (./dev setup)"
        );
        let port = free_port();
        // A process group of its own, which the Chromium it starts joins: dropping the browser
        // ends them all.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        wait_for_port(port);
        let profile = tempfile::tempdir().expect("a temporary profile directory");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({ "binary": CHROMIUM, "args": args });
        if width < MIN_WINDOW_WIDTH {
            // Chromium will not make a window this narrow: emulate a screen of that width.
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 }
            });
        }
        let capabilities = json!({ "goog:chromeOptions": options });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        // A loaded machine can make the first session start time out: try a few times.
        let mut failures = Vec::new();
        let client = loop {
            let attempt = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match attempt {
                Ok(client) => break client,
                Err(error) if failures.len() < 2 => failures.push(error.to_string()),
                Err(error) => {
                    panic!("chromedriver could not start Chromium: {error} (earlier: {failures:?})")
                }
            }
        };
        Browser { driver, _profile: profile, client }
    }

    /// Grants the page a permission (`clipboard-read`, `clipboard-sanitized-write`) without the
    /// prompt a headless browser cannot answer, through WebDriver's "Set Permission" command.
    pub async fn grant(&self, permission: &str) {
        let command = SetPermission { name: permission.to_owned() };
        self.client
            .issue_cmd(command)
            .await
            .unwrap_or_else(|error| panic!("chromedriver grants {permission}: {error}"));
    }

    /// Saves a screenshot of the page as a test artefact and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let directory = crate::workspace_root().join("artifacts");
        std::fs::create_dir_all(&directory).expect("artifacts/ can be created");
        let path = directory.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }
}

impl Drop for Browser {
    /// Ends chromedriver and every Chromium process it started: they share its process group
    /// (killing chromedriver alone would leave Chromium running, reparented to init).
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// WebDriver's "Set Permission" (W3C Permissions, section "Automation"), for the current origin.
#[derive(Debug)]
struct SetPermission {
    name: String,
}

impl WebDriverCompatibleCommand for SetPermission {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/permissions", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "descriptor": { "name": self.name }, "state": "granted" });
        (http::Method::POST, Some(body.to_string()))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "chromedriver did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// WebDriver's code for the Tab key, for `send_keys`.
pub const TAB: &str = "\u{E004}";
/// WebDriver's code for the Enter key, for `send_keys`.
pub const ENTER: &str = "\u{E007}";

/// The element `css` selects once it appears, failing the test after `patience`.
pub async fn wait_for(client: &Client, css: &str, patience: Duration) -> Element {
    client
        .wait()
        .at_most(patience)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

/// Clears the input `css` selects and types `text` into it, as a user would.
pub async fn fill(client: &Client, css: &str, text: &str) {
    let input = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    input.clear().await.expect("the input clears");
    input.send_keys(text).await.expect("typing works");
}
