//! Support shared by the integration tests and the dashboard benchmark: `forgecast` as a child process, copies
//! of the shipped scripts, and a minimal WebDriver client for headless Chromium (plain HTTP and JSON).

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process, killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process leading its own process group, killed with everything it started (chromedriver and the
/// browsers it launched) when dropped.
pub struct KilledGroup(pub Child);

impl Drop for KilledGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The shipped scripts.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// Copies a directory tree (the shipped scripts, to edit a copy).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Fills `data` with one pass of the bundled events, as `forgecast up --replay-once --replay-speed 0` stores them.
pub fn replay_once(data: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_forgecast"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--replay-speed",
            "0",
            "--replay-once",
            "--scripts",
        ])
        .arg(scripts())
        .arg("--data-dir")
        .arg(data)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the one-pass replay failed");
}

/// A running `forgecast up`: its process (killed when dropped), its base URL and its log lines.
pub struct Up {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its stderr, line by line, after the line that named the address.
    pub log: mpsc::Receiver<String>,
    /// Everything it logged so far.
    pub all: Arc<Mutex<String>>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` with its stderr read line by line: each line goes to the receiver and is kept in the text.
/// `NO_COLOR` is left unset: logs into a pipe are plain text by themselves.
pub fn spawn_logged(command: &mut Command) -> (Child, mpsc::Receiver<String>, Arc<Mutex<String>>) {
    let mut child = command
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, log) = mpsc::channel();
    let all = Arc::new(Mutex::new(String::new()));
    let kept = all.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    (child, log, all)
}

/// Starts `forgecast up` on a free port with `scripts`, `data` and further `args`.
pub fn start(scripts: &Path, data: &Path, args: &[&str]) -> Up {
    start_with_env(scripts, data, args, &[])
}

/// As [`start`], with environment variables.
pub fn start_with_env(scripts: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Up {
    let (child, log, all) = spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args(["up", "--listen", "127.0.0.1:0", "--scripts"])
            .arg(scripts)
            .arg("--data-dir")
            .arg(data)
            .args(args)
            // The default log format, whatever the environment running the tests says, unless `env` asks.
            .env_remove("FORGECAST_LOG_FORMAT")
            .envs(env.iter().copied()),
    );
    let mut up = Up {
        child,
        url: String::new(),
        log,
        all,
    };
    let line = wait_for_log(&up, "Serving http://");
    let at = line.find("Serving http://").unwrap() + "Serving ".len();
    up.url = line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    up
}

/// Starts `forgecast up` with the shipped scripts.
pub fn up(data: &Path, args: &[&str]) -> Up {
    start(&scripts(), data, args)
}

/// Waits (a minute at most) for a log line containing `needle`; returns it.
pub fn wait_for_log(up: &Up, needle: &str) -> String {
    loop {
        let line = up
            .log
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// A WebDriver session on headless Chromium.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: KilledGroup,
}

impl Browser {
    /// Starts chromedriver and a headless session.
    pub async fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "Chromium and ChromeDriver are needed: tools/test.sh installs Debian's chromium and chromium-driver"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = forgecast_github::http::client();
        let root = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{root}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap().keep();
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1000", format!("--user-data-dir={}", profile.display())]
        }}}});
        let session = post(&http, &format!("{root}/session"), capabilities).await;
        let id = session["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        Browser {
            http,
            base: format!("{root}/session/{id}"),
            _driver: KilledGroup(driver),
        }
    }

    /// Navigates to `url`.
    pub async fn open(&self, url: &str) {
        post(
            &self.http,
            &format!("{}/url", self.base),
            json!({ "url": url }),
        )
        .await;
    }

    /// Runs `script` in the page; returns its value.
    pub async fn run(&self, script: &str) -> Value {
        post(
            &self.http,
            &format!("{}/execute/sync", self.base),
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Runs `script` until it returns something other than null or false.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script).await;
            if !value.is_null() && value != Value::Bool(false) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let shot = self
            .http
            .get(format!("{}/screenshot", self.base))
            .send()
            .await
            .unwrap();
        let value: Value = serde_json::from_slice(&shot.bytes().await.unwrap()).unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(value["value"].as_str().unwrap())
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// A WebDriver POST; returns its `value`.
pub async fn post(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let value: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    if value["value"]["error"].is_string() {
        panic!("WebDriver error on {url}: {}", value["value"]);
    }
    value["value"].clone()
}

/// GETs JSON.
pub async fn get_json(url: &str) -> Value {
    let response = forgecast_github::http::client()
        .get(url)
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// The bundled input (what a one-pass replay plays), read with plain JSON trees: an implementation independent of the pipeline's parser.
pub fn input_events() -> Vec<Value> {
    forgecast_gharchive::replay::sample_lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

pub fn expected_totals(events: &[Value]) -> BTreeMap<(&'static str, String), u64> {
    let mut totals = BTreeMap::new();
    let mut add = |dimension: &'static str, key: &str| {
        *totals.entry((dimension, key.to_string())).or_insert(0) += 1
    };
    for e in events {
        let kind = e["type"].as_str().unwrap();
        let login = e["actor"]["login"].as_str().unwrap();
        add("all", "*");
        add("type", kind);
        add("repo", e["repo"]["name"].as_str().unwrap());
        if let Some(org) = e["org"]["login"].as_str() {
            add("org", org);
        }
        let language = e["payload"]["pull_request"]["base"]["repo"]["language"].as_str();
        if let Some(language) = language.filter(|_| kind.starts_with("PullRequest")) {
            add("language", language);
            add("type_language", &format!("{kind}/{language}"));
        }
        if login.ends_with("[bot]") || login.ends_with("-bot") || login.ends_with("_bot") {
            add("bot", kind);
        }
    }
    totals
}

/// Every counter the store holds at `granularities`: (granularity, bucket, dimension, key) → count.
pub async fn stored_rows<S: forgecast_core::store::Store>(
    store: &S,
    granularities: &[forgecast_core::aggregate::Granularity],
) -> BTreeMap<(String, i64, String, String), u64> {
    use forgecast_core::aggregate::{AggregateQuery, Dimension};
    let mut rows = BTreeMap::new();
    for &granularity in granularities {
        for dimension in Dimension::ALL {
            let query = AggregateQuery {
                granularity,
                dimension,
                from: i64::MIN,
                to: i64::MAX,
            };
            for row in store.aggregates(query).await.unwrap() {
                let at = (
                    granularity.as_str().to_string(),
                    row.bucket,
                    dimension.as_str().to_string(),
                    row.key,
                );
                rows.insert(at, row.count);
            }
        }
    }
    rows
}

/// Per-key totals, summed over buckets, of every dimension the store counts at `granularity`: what
/// [`expected_totals`] computes from the input.
pub async fn stored_totals<S: forgecast_core::store::Store>(
    store: &S,
    granularity: forgecast_core::aggregate::Granularity,
) -> BTreeMap<(&'static str, String), u64> {
    use forgecast_core::aggregate::Dimension;
    let mut totals = BTreeMap::new();
    for ((_, _, dimension, key), count) in stored_rows(store, &[granularity]).await {
        let dimension = Dimension::ALL
            .into_iter()
            .find(|d| d.as_str() == dimension)
            .expect("a known dimension");
        *totals.entry((dimension.as_str(), key)).or_insert(0) += count;
    }
    totals
}

/// Runs `command` with plain logs; asserts it succeeded and returns what it printed on stdout.
pub fn stdout_of(command: &mut Command) -> String {
    let output = command
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{command:?}: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

/// Waits (a minute at most) until model `name` of the server at `url` has a champion; returns
/// `/api/models/{name}`.
pub async fn champion_of(url: &str, name: &str) -> Value {
    let started = Instant::now();
    loop {
        let response = forgecast_github::http::client()
            .get(format!("{url}/api/models/{name}"))
            .send()
            .await
            .unwrap();
        let model: Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default();
        if model["champion"].is_number() {
            return model;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {name} model registered: {model}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
