//! A polite GitHub REST client: one GET with everything a careful client does around it.
//!
//! - Identifies itself (User-Agent, API version) and sends the token, which is never printed: not in logs, not
//!   in errors, not in `Debug` output.
//! - Conditional requests: an ETag sent as `If-None-Match`; a 304 answer is "nothing new" and costs no quota.
//! - Primary rate limit: when `x-ratelimit-remaining` reaches 0, waits until `x-ratelimit-reset`.
//! - Secondary rate limits (403 or 429 that are not the primary limit): waits `retry-after` when given,
//!   otherwise at least a minute, then backs off exponentially with jitter.
//! - Server errors (5xx), timeouts and refused connections: retried with exponential backoff and jitter.
//! - The search API's 30 requests per minute: requests to `/search/` wait for room in a one-minute window.
//! - The token goes to the configured API only: a full URL (from a `Link` header) is requested only when its
//!   scheme, host and port are the base URL's ([`GithubClient::is_api_url`]); any other is refused unsent.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use forgecast_core::backoff::Backoff;
use forgecast_core::time::now_unix;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use tokio::time::Instant;

/// A GitHub token; shown as `***` everywhere.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token; empty text is no token.
    pub fn new(text: impl Into<String>) -> Option<Token> {
        let text = text.into();
        (!text.trim().is_empty()).then(|| Token(text.trim().to_string()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API root, `https://api.github.com` or a GitHub Enterprise / test server URL.
    pub base_url: String,
    /// Token, if any (60 requests an hour without, 5,000 with).
    pub token: Option<Token>,
    /// Time allowed per request; `None` waits as long as the server takes.
    pub timeout: Option<Duration>,
    /// Attempts per request before giving up (rate-limit waits included).
    pub max_attempts: u32,
    /// First wait after a server error or network failure; doubles per attempt, up to 60 times this.
    pub retry_base: Duration,
    /// Least wait after a secondary rate limit without `retry-after` (GitHub asks for a minute).
    pub secondary_wait: Duration,
    /// Search requests allowed per minute.
    pub search_per_minute: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: "https://api.github.com".into(),
            token: None,
            timeout: Some(Duration::from_secs(30)),
            max_attempts: 6,
            retry_base: Duration::from_secs(1),
            secondary_wait: Duration::from_secs(60),
            search_per_minute: 30,
        }
    }
}

/// The rate-limit state, as the last response told it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RateState {
    /// Requests allowed per window.
    pub limit: Option<u64>,
    /// Requests left in the window.
    pub remaining: Option<u64>,
    /// When the window resets, Unix seconds.
    pub reset: Option<i64>,
    /// Until when requests are held back, Unix seconds.
    pub paused_until: Option<i64>,
    /// Why they are held back.
    pub paused_for: Option<String>,
}

/// One page as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// New content.
    Fresh {
        /// The JSON body.
        body: Vec<u8>,
        /// Its ETag, for the next conditional request.
        etag: Option<String>,
        /// The `rel="next"` URL of the `Link` header.
        next: Option<String>,
        /// Seconds to wait before polling again (`X-Poll-Interval`).
        poll_interval: Option<u64>,
    },
    /// 304: nothing changed since the ETag.
    NotModified {
        /// Seconds to wait before polling again.
        poll_interval: Option<u64>,
    },
}

/// Why a request failed for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// An answer that retrying will not change (404, 401, 422, …).
    #[error("{path}: GitHub answered {status}: {message}")]
    Status {
        /// The request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// A full URL outside the configured API, which would receive the token: refused, nothing sent.
    #[error("{url}: not on the configured GitHub API ({base}); the request is not sent")]
    Foreign {
        /// The URL without its query string.
        url: String,
        /// The configured API base.
        base: String,
    },
    /// Still failing after every attempt.
    #[error("{path}: gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        /// The request path.
        path: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// One GET.
pub struct Request<'a> {
    /// A path under the base URL (`/events`) or a full URL from a `Link` header.
    pub path: &'a str,
    /// Query parameters (ignored for full URLs, which carry their own).
    pub params: &'a BTreeMap<String, String>,
    /// ETag of the last answer, for a conditional request.
    pub etag: Option<&'a str>,
}

/// The GitHub client; share one per process so that rate-limit state is shared.
pub struct GithubClient {
    http: reqwest::Client,
    config: ClientConfig,
    rate: Mutex<RateState>,
    searches: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubClient")
            .field("base_url", &self.config.base_url)
            .field("token", &self.config.token)
            .finish()
    }
}

enum Attempt {
    Done(Fetched),
    Fatal(FetchError),
    Retry { wait: Duration, why: String },
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    header(headers, name).and_then(|v| v.trim().parse().ok())
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// A URL without its query string and fragment, fit for a log line.
pub fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// A repository's API path, `/repos/{owner}/{name}`, when `full_name` is a name GitHub could have given:
/// an owner of letters, digits, `-` and `_`, a name of those and `.`, neither too long, nothing else.
/// A name from an event is data from anyone: this keeps it inside the one path it is meant for.
pub fn repo_path(full_name: &str) -> Option<String> {
    let (owner, name) = full_name.split_once('/')?;
    let owner_ok = (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let name_ok = (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (owner_ok && name_ok).then(|| format!("/repos/{}/{}", encode(owner), encode(name)))
}

impl GithubClient {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<GithubClient, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "accept",
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        if let Some(Token(token)) = &config.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                "the GitHub token contains characters a header cannot carry".to_string()
            })?;
            value.set_sensitive(true);
            headers.insert("authorization", value);
        }
        let builder = crate::http::client_builder().default_headers(headers);
        let builder = match config.timeout {
            Some(timeout) => builder.timeout(timeout),
            None => builder,
        };
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(GithubClient {
            http,
            config,
            rate: Mutex::new(RateState::default()),
            searches: tokio::sync::Mutex::new(VecDeque::new()),
        })
    }

    /// Whether `url` is on the configured API: same scheme, host and port as the base URL. Only such URLs are
    /// requested, since every request carries the token.
    pub fn is_api_url(&self, url: &str) -> bool {
        let (Ok(base), Ok(url)) = (
            reqwest::Url::parse(&self.config.base_url),
            reqwest::Url::parse(url),
        ) else {
            return false;
        };
        base.scheme() == url.scheme()
            && base.host_str() == url.host_str()
            && base.port_or_known_default() == url.port_or_known_default()
    }

    /// The rate-limit state now.
    pub fn rate(&self) -> RateState {
        self.rate.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_pause(&self, until: Option<i64>, why: Option<String>) {
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        rate.paused_until = until;
        rate.paused_for = why;
    }

    /// How long to wait before the next request because of the primary limit.
    fn primary_wait(&self) -> Option<Duration> {
        let rate = self.rate();
        match (rate.remaining, rate.reset) {
            (Some(0), Some(reset)) if reset >= now_unix() => {
                Some(Duration::from_secs((reset - now_unix() + 1) as u64))
            }
            _ => None,
        }
    }

    async fn search_slot(&self) {
        let window = Duration::from_secs(60);
        let mut sent = self.searches.lock().await;
        loop {
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                sent.pop_front();
            }
            if sent.len() < self.config.search_per_minute {
                sent.push_back(now);
                return;
            }
            let oldest = *sent.front().expect("the window is full");
            tokio::time::sleep_until(oldest + window).await;
        }
    }

    /// Fetches one page, waiting and retrying as GitHub asks. `observe` is told every answer's status (or
    /// `error` for a failure without one), for metrics.
    pub async fn get(
        &self,
        request: &Request<'_>,
        observe: &(dyn Fn(&str) + Sync),
    ) -> Result<Fetched, FetchError> {
        let mut last = String::new();
        for attempt in 1..=self.config.max_attempts {
            if let Some(wait) = self.primary_wait() {
                self.set_pause(
                    Some(now_unix() + wait.as_secs() as i64),
                    Some("primary rate limit".into()),
                );
                tracing::warn!(
                    component = "github",
                    path = request.path,
                    wait_s = wait.as_secs(),
                    "Rate limit used up; waiting for the reset."
                );
                tokio::time::sleep(wait).await;
                self.set_pause(None, None);
            }
            if request.path.contains("/search/") {
                self.search_slot().await;
            }
            match self.attempt(request, attempt, observe).await {
                Attempt::Done(fetched) => return Ok(fetched),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { wait, why } => {
                    if attempt == self.config.max_attempts {
                        last = why;
                        break;
                    }
                    tracing::warn!(component = "github", path = request.path, attempt, wait_ms = wait.as_millis() as u64, reason = %why, "Request failed; retrying.");
                    self.set_pause(Some(now_unix() + wait.as_secs() as i64), Some(why.clone()));
                    tokio::time::sleep(wait).await;
                    self.set_pause(None, None);
                    last = why;
                }
            }
        }
        Err(FetchError::GaveUp {
            path: request.path.to_string(),
            attempts: self.config.max_attempts,
            last,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        // Spread by a fifth either way, so that many clients failing together do not come back together.
        Backoff {
            first: self.config.retry_base,
            max: self.config.retry_base.saturating_mul(60),
            jitter: 0.2,
        }
        .wait(attempt)
    }

    async fn attempt(
        &self,
        request: &Request<'_>,
        attempt: u32,
        observe: &(dyn Fn(&str) + Sync),
    ) -> Attempt {
        let builder = if request.path.starts_with("http://") || request.path.starts_with("https://")
        {
            if !self.is_api_url(request.path) {
                observe("foreign_url");
                return Attempt::Fatal(FetchError::Foreign {
                    url: without_query(request.path).to_string(),
                    base: self.config.base_url.clone(),
                });
            }
            self.http.get(request.path)
        } else {
            let url = format!(
                "{}{}",
                self.config.base_url.trim_end_matches('/'),
                request.path
            );
            let params: Vec<(&String, &String)> = request.params.iter().collect();
            let query: String = params
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            self.http.get(if query.is_empty() {
                url
            } else {
                format!("{url}?{query}")
            })
        };
        let builder = match request.etag {
            Some(etag) => builder.header("if-none-match", etag),
            None => builder,
        };
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                observe(if e.is_timeout() { "timeout" } else { "error" });
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                return Attempt::Retry {
                    wait: self.backoff(attempt),
                    why: format!("{kind}: {}", without_url(&e)),
                };
            }
        };
        let status = response.status().as_u16();
        observe(&status.to_string());
        let headers = response.headers().clone();
        {
            let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
            rate.limit = number(&headers, "x-ratelimit-limit").or(rate.limit);
            rate.remaining = number(&headers, "x-ratelimit-remaining").or(rate.remaining);
            rate.reset = number(&headers, "x-ratelimit-reset").or(rate.reset);
        }
        let poll_interval = number(&headers, "x-poll-interval");
        match status {
            200..=299 => match response.bytes().await {
                Ok(body) => Attempt::Done(Fetched::Fresh {
                    body: body.to_vec(),
                    etag: header(&headers, "etag").map(str::to_string),
                    next: header(&headers, "link").and_then(next_link),
                    poll_interval,
                }),
                Err(e) => Attempt::Retry {
                    wait: self.backoff(attempt),
                    why: format!("body cut short: {}", without_url(&e)),
                },
            },
            304 => Attempt::Done(Fetched::NotModified { poll_interval }),
            403 | 429 => {
                let primary = number::<u64>(&headers, "x-ratelimit-remaining") == Some(0);
                let retry_after = number::<u64>(&headers, "retry-after").map(Duration::from_secs);
                let wait = if primary {
                    // The next attempt waits for the reset (primary_wait); nothing more here.
                    Duration::ZERO
                } else {
                    retry_after
                        .unwrap_or_else(|| self.config.secondary_wait.max(self.backoff(attempt)))
                };
                let body = response.text().await.unwrap_or_default();
                if !primary
                    && retry_after.is_none()
                    && status == 403
                    && !body.to_lowercase().contains("rate limit")
                {
                    return Attempt::Fatal(FetchError::Status {
                        path: request.path.to_string(),
                        status,
                        message: message(&body),
                    });
                }
                let kind = if primary {
                    "primary rate limit"
                } else {
                    "secondary rate limit"
                };
                Attempt::Retry {
                    wait,
                    why: format!("{status} {kind}"),
                }
            }
            500..=599 => Attempt::Retry {
                wait: self.backoff(attempt),
                why: format!("server error {status}"),
            },
            _ => {
                let body = response.text().await.unwrap_or_default();
                Attempt::Fatal(FetchError::Status {
                    path: request.path.to_string(),
                    status,
                    message: message(&body),
                })
            }
        }
    }
}

/// GitHub's `message` field of an error body, or the start of the body.
fn message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// A reqwest error without its URL (which may carry query parameters nobody asked to log).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// Percent-encodes a query component.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_next_link() {
        let link = r#"<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel="prev", <https://api.github.com/repositories/1000/issues?per_page=3&page=3>; rel="next", <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/repositories/1000/issues?per_page=3&page=3")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="first""#), None);
    }

    #[test]
    fn only_urls_of_the_configured_api_are_followed() {
        let client = GithubClient::new(ClientConfig::default()).unwrap();
        assert!(client.is_api_url("https://api.github.com/repositories/1/issues?page=2"));
        assert!(client.is_api_url("https://API.github.com:443/x"));
        for foreign in [
            "http://api.github.com/x",
            "https://api.github.com:8443/x",
            "https://evil.example/x",
            "https://api.github.com.evil.example/x",
            "http://127.0.0.1:9/steal?page=2",
            "not a url",
        ] {
            assert!(!client.is_api_url(foreign), "{foreign}");
        }
        assert_eq!(without_query("http://h/steal?token=1#x"), "http://h/steal");
    }

    #[test]
    fn repository_names_are_checked_and_encoded() {
        assert_eq!(
            repo_path("rust-lang/rust").as_deref(),
            Some("/repos/rust-lang/rust")
        );
        assert_eq!(
            repo_path("user_emu/dot.name_-x").as_deref(),
            Some("/repos/user_emu/dot.name_-x")
        );
        for bad in [
            "x/../../admin/secret?",
            "x/..",
            "x/.",
            "noslash",
            "/name",
            "owner/",
            "a/b/c",
            "owner/na me",
            "owner/name?x=1",
            "owner/name#frag",
            "own%2Fer/name",
            "ünïcode/name",
        ] {
            assert_eq!(repo_path(bad), None, "{bad}");
        }
        assert_eq!(repo_path(&format!("{}/x", "a".repeat(40))), None);
        assert_eq!(repo_path(&format!("a/{}", "x".repeat(101))), None);
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = ClientConfig {
            token: Token::new("ghp_secret123"),
            ..ClientConfig::default()
        };
        let client = GithubClient::new(config.clone()).unwrap();
        assert!(!format!("{config:?}{client:?}").contains("secret123"));
    }

    #[test]
    fn query_parameters_are_encoded() {
        assert_eq!(
            encode("language:rust created:>=2024-12-25"),
            "language%3Arust%20created%3A%3E%3D2024-12-25"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_search_api_gets_thirty_requests_a_minute() {
        let client = GithubClient::new(ClientConfig::default()).unwrap();
        let started = Instant::now();
        for _ in 0..30 {
            client.search_slot().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        client.search_slot().await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(60),
            "the 31st waits for the window to move"
        );
    }

    #[test]
    fn backoff_grows_and_is_spread() {
        let client = GithubClient::new(ClientConfig::default()).unwrap();
        let first = client.backoff(1).as_secs_f64();
        let third = client.backoff(3).as_secs_f64();
        assert!((0.8..1.2).contains(&first), "{first}");
        assert!((3.2..4.8).contains(&third), "{third}");
    }
}
