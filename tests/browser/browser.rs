//! Headless Chromium for the page tests: one chromedriver per test (tests
//! take turns, the machine has two cores), one browser window per [`Page`].

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);

/// One browser test at a time.
static TURN: Mutex<()> = Mutex::new(());

/// A chromedriver, stopped when dropped.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Browser {
    /// Starts chromedriver, or says SKIPPED and gives None when the
    /// browser is not installed (a failure under CI, which installs it).
    pub async fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{CHROMIUM} and {CHROMEDRIVER} are needed under CI (apt-get install chromium chromium-driver)"
            );
            eprintln!("SKIPPED: no {CHROMIUM} or {CHROMEDRIVER}");
            return None;
        }
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let addr = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let browser = Browser {
            driver,
            addr,
            _turn: turn,
        };
        let began = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                began.elapsed() < PATIENCE,
                "chromedriver did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(browser)
    }

    /// A new browser window.
    pub async fn page(&self) -> Page {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1300,1100",
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://{}", self.addr))
            .await
            .expect("a browser session");
        Page { client }
    }
}

/// One browser window.
pub struct Page {
    client: Client,
}

impl Page {
    pub async fn open(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            let host = url.trim_start_matches("http://").trim_end_matches('/');
            let reachable = host
                .parse::<SocketAddr>()
                .map(|a| TcpStream::connect(a).is_ok());
            panic!("open {url}: {e} (reachable from the test: {reachable:?})");
        }
    }

    /// Signs in with `token` and waits for the ring to be drawn.
    pub async fn sign_in(&self, token: &str) {
        self.sign_in_as(token).await;
        self.wait_for("#app:not([hidden]) #ring[data-nodes]").await;
    }

    /// Types `token` into the sign-in form and sends it.
    pub async fn sign_in_as(&self, token: &str) {
        self.wait_for("#signin:not([hidden]) #token").await;
        self.type_into("#token", token).await;
        self.click("#signin-form button").await;
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.wait_for(css).await;
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Waits until an element matches `css`; on timeout saves a
    /// screenshot and fails naming the selector.
    pub async fn wait_for(&self, css: &str) {
        self.wait_until(css, true).await;
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        self.wait_until(css, false).await;
    }

    async fn wait_until(&self, css: &str, present: bool) {
        let began = Instant::now();
        while (self.count(css).await > 0) != present {
            if began.elapsed() > PATIENCE {
                let shot = self.screenshot("timed-out").await;
                let what = if present {
                    "nothing matched"
                } else {
                    "still there:"
                };
                panic!(
                    "{what} {css} after {PATIENCE:?} (screenshot {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    /// The text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of `script`, run as a function body in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Saves a screenshot as `screenshots/NAME.png` under the tests'
    /// target directory and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
