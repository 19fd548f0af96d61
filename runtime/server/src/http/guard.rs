//! What requests pass before a handler, and the bounds handlers keep.
//!
//! - Every answer carries the browser protections (a Content-Security-Policy without inline script, no MIME
//!   sniffing, no referrer, no framing).
//! - A request whose `Host` is a name not allowed is refused, so a page on another site cannot reach the
//!   server through a DNS name it rebinds to this address. IP addresses and `localhost` are always allowed:
//!   a browser that reached the server by address is on the server's own origin.
//! - Admin routes (`/api/tap`, which shows raw events and dead letters) need `Authorization: Bearer` with the
//!   admin token; without a configured token they answer loopback clients only.
//! - Tap clients and costly requests are counted, so that many clients cannot make the process hold much.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Bounds, HttpPlan};

/// The dashboard loads its script and styles from `/assets/` and talks to its own API only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// How long a costly request waits for its turn before a 503.
const HEAVY_WAIT: Duration = Duration::from_secs(10);

/// The HTTP server's access rules and counters.
pub struct Guard {
    http: HttpPlan,
    bounds: Bounds,
    taps: Arc<AtomicUsize>,
    heavy: Arc<Semaphore>,
}

/// A connected tap client; the slot is given back when it is dropped (the client went away).
#[derive(Debug)]
pub struct TapSlot(Arc<AtomicUsize>);

impl Drop for TapSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Guard {
    /// The rules of `http`, with the bounds of `bounds`.
    pub fn new(http: HttpPlan, bounds: Bounds) -> Guard {
        Guard {
            heavy: Arc::new(Semaphore::new(bounds.max_heavy_requests)),
            http,
            bounds,
            taps: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The bounds handlers keep.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// Whether the server answers a request for `host` (the `Host` header, with or without a port).
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || self
                .http
                .allowed_hosts
                .iter()
                .any(|allowed| allowed == "*" || *allowed == name)
    }

    /// A place for one more tap client, or the reason there is none.
    pub fn tap_slot(&self) -> Result<TapSlot, Refusal> {
        let max = self.bounds.max_tap_clients;
        let taken = self.taps.fetch_add(1, Ordering::SeqCst);
        let slot = TapSlot(self.taps.clone());
        if taken >= max {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{max} tap clients are connected already (bounds.max_tap_clients); try again later"
                ),
            ));
        }
        Ok(slot)
    }

    /// A turn for one costly request: waits for one of `max_heavy_requests`, at most ten seconds.
    pub async fn heavy_turn(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        match tokio::time::timeout(HEAVY_WAIT, self.heavy.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} costly requests are being computed (bounds.max_heavy_requests); try again later",
                    self.bounds.max_heavy_requests
                ),
            )),
        }
    }

    /// Whether an admin request from `peer` with `authorization` may pass, or why not.
    fn admit(&self, peer: Option<IpAddr>, authorization: Option<&str>) -> Result<(), Refusal> {
        match &self.http.admin_token {
            Some(token) => {
                let given = authorization
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim);
                if given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
                    Ok(())
                } else {
                    Err(Refusal {
                        status: StatusCode::UNAUTHORIZED,
                        message: "this route needs `Authorization: Bearer <FORGECAST_ADMIN_TOKEN>`"
                            .into(),
                        ask_for_token: true,
                    })
                }
            }
            None if peer.is_some_and(|ip| ip.is_loopback()) => Ok(()),
            None => Err(refuse(
                StatusCode::FORBIDDEN,
                "this route answers loopback clients only; set FORGECAST_ADMIN_TOKEN to open it to others".into(),
            )),
        }
    }
}

/// The host name of a `Host` header: without the port, IPv6 brackets removed.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, &b) in expected.iter().enumerate() {
        diff |= usize::from(b ^ given.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// A request refused, with the rule it broke; answered as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status.
    pub status: StatusCode,
    /// The rule, in a sentence.
    pub message: String,
    /// Whether the answer asks for a bearer token (`WWW-Authenticate`).
    pub ask_for_token: bool,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        if self.ask_for_token {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A refusal that names the rule.
pub fn refuse(status: StatusCode, message: String) -> Refusal {
    Refusal {
        status,
        message,
        ask_for_token: false,
    }
}

/// A 400 with `message` as its text.
pub fn bad(message: impl Into<String>) -> Response {
    refuse(StatusCode::BAD_REQUEST, message.into()).into_response()
}

/// Adds the browser protections to every answer.
pub async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Refuses requests for host names that are not allowed.
pub async fn check_host(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().host());
    match host {
        Some(host) if !guard.host_allowed(host) => refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "host {:?} is not served here; add it to FORGECAST_ALLOWED_HOSTS (allowed_hosts)",
                host_name(host)
            ),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Lets admin requests through with the token, or from loopback when there is no token.
pub async fn admin_only(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match guard.admit(peer, authorization) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(token: Option<&str>, hosts: &[&str]) -> Guard {
        Guard::new(
            HttpPlan {
                admin_token: token.map(str::to_string),
                allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            },
            Bounds {
                max_tap_clients: 2,
                ..Bounds::default()
            },
        )
    }

    #[test]
    fn hosts_are_addresses_localhost_or_allowed_names() {
        let g = guard(None, &["forgecast.example"]);
        for ok in [
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST",
            "forgecast.example:443",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8080",
            "forgecast.example.attacker.example",
            "localhost.attacker.example",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        assert!(guard(None, &["*"]).host_allowed("anything.example"));
    }

    #[test]
    fn admin_routes_need_the_token_or_loopback() {
        let loopback = Some(IpAddr::from([127, 0, 0, 1]));
        let remote = Some(IpAddr::from([10, 0, 0, 7]));
        let open = guard(None, &[]);
        assert!(open.admit(loopback, None).is_ok());
        assert_eq!(
            open.admit(remote, None).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let locked = guard(Some("s3cret-admin-token-value"), &[]);
        assert_eq!(
            locked.admit(loopback, None).unwrap_err().status,
            StatusCode::UNAUTHORIZED,
            "with a token, loopback needs it too"
        );
        assert!(
            locked
                .admit(remote, Some("Bearer s3cret-admin-token-value"))
                .is_ok()
        );
        assert!(
            locked
                .admit(remote, Some("Bearer s3cret-admin-token-valuf"))
                .is_err()
        );
        assert!(locked.admit(remote, Some("Bearer s3cret")).is_err());
    }

    #[test]
    fn tap_slots_are_given_back() {
        let g = guard(None, &[]);
        let a = g.tap_slot().unwrap();
        let _b = g.tap_slot().unwrap();
        assert_eq!(
            g.tap_slot().unwrap_err().status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        drop(a);
        assert!(g.tap_slot().is_ok());
    }
}
