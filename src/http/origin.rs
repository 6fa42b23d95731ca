//! Browser origins: which web pages may open a WebSocket here, and CORS for REST.
//!
//! Rules:
//! - With `--allowed-origins` empty (the default) nothing changes: WebSockets from any
//!   origin, and no CORS headers (browsers keep REST calls same-origin).
//! - With a list, a WebSocket handshake whose `Origin` is neither listed nor the server's own
//!   is refused with 403 JSON before the upgrade. The server's own origin is the one whose
//!   host (and port) equals the request's `Host` header, so the built-in dashboard keeps
//!   working whatever the list says. Requests without `Origin` do not come from a browser
//!   page (native apps, websocat, curl) and pass.
//! - REST answers to an allowed origin carry `Access-Control-Allow-Origin: <that origin>`;
//!   other origins get no CORS header (the browser then hides the answer from the page), and
//!   their preflights get 403. With a list, every answer carries `Vary: Origin`, since it
//!   depends on it.
//! - No credentials mode: the API authenticates with bearer tokens, never cookies.
//!
//! Since tokens are not ambient credentials, a foreign page cannot ride a user's session
//! anyway; the allow-list keeps other sites' scripts from using the API in a user's browser
//! at all, which is what operators usually expect of it.

use std::collections::HashSet;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::http::error::ApiError;

/// How long browsers may cache a preflight answer, seconds (Chromium caps it at 7200).
const PREFLIGHT_MAX_AGE: &str = "3600";
const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type";
/// Headers a page may read besides the safelisted ones: retry hints and the auth challenge.
const EXPOSE_HEADERS: &str = "retry-after, www-authenticate";

/// The parsed `--allowed-origins`.
#[derive(Debug, Default)]
pub struct OriginPolicy {
    /// Lower-case `scheme://host[:port]`, default ports dropped (as browsers send them).
    allowed: HashSet<String>,
}

impl OriginPolicy {
    /// Checks and normalises each origin; an error names the first malformed one.
    pub fn new(list: &[String]) -> anyhow::Result<OriginPolicy> {
        let mut allowed = HashSet::new();
        for raw in list.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            let origin = normalise(raw).ok_or_else(|| {
                anyhow::anyhow!(
                    "--allowed-origins: `{raw}` is not an origin; write `scheme://host[:port]` \
                     without path or trailing slash, e.g. `https://app.example.com`"
                )
            })?;
            allowed.insert(origin);
        }
        Ok(OriginPolicy { allowed })
    }

    /// No list: every origin may open a WebSocket, and REST has no CORS.
    pub fn is_open(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Whether a page of `origin` may use the API, `host` being the request's `Host` header.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let Some(origin) = normalise(origin) else {
            return false;
        };
        if self.allowed.contains(&origin) {
            return true;
        }
        // The server's own pages (the dashboard): same host and port as the request.
        let (scheme, authority) = origin.split_once("://").unwrap_or_default();
        host.is_some_and(|h| {
            let h = h.trim().to_ascii_lowercase();
            strip_default_port(scheme, &h) == authority
        })
    }
}

/// `scheme://host[:port]` in lower case with the scheme's default port dropped; `None` for
/// anything else (paths, `null`, user info, empty parts).
fn normalise(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let authority_ok = !authority.is_empty()
        && !authority.starts_with(':')
        && !authority.ends_with(':')
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !scheme_ok || !authority_ok {
        return None;
    }
    Some(format!(
        "{scheme}://{}",
        strip_default_port(scheme, authority)
    ))
}

fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// The middleware: answers preflights, refuses foreign WebSocket handshakes, labels answers.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let policy = &state.origins;
    if policy.is_open() {
        return next.run(req).await;
    }
    let headers = req.headers();
    // A header that is not even text is a foreign origin, not a missing one.
    let Some(origin) = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
    else {
        let mut resp = next.run(req).await;
        vary_origin(&mut resp);
        return resp;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let allowed = policy.allows(&origin, host);
    let preflight = req.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = if preflight {
        if allowed {
            preflight_answer()
        } else {
            refuse("this origin may not call the API (not in --allowed-origins)")
        }
    } else if !allowed && is_websocket(headers) {
        tracing::debug!("WebSocket handshake from an origin not allowed refused");
        refuse("this origin may not open WebSockets here (not in --allowed-origins)")
    } else {
        next.run(req).await
    };
    if allowed && let Ok(v) = HeaderValue::from_str(&origin) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        if !preflight {
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
    vary_origin(&mut resp);
    resp
}

fn preflight_answer() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    resp
}

fn refuse(message: &str) -> Response {
    ApiError::Forbidden {
        code: "origin_not_allowed",
        message: message.into(),
    }
    .into_response()
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn vary_origin(resp: &mut Response) {
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        let p = OriginPolicy::new(&[
            " https://App.Example.com ".into(),
            "http://localhost:3000".into(),
            "https://x.example.com:443".into(),
            String::new(),
        ])
        .unwrap();
        assert!(p.allows("https://app.example.com", None));
        assert!(p.allows("HTTPS://APP.EXAMPLE.COM", None));
        assert!(p.allows("https://x.example.com", None));
        assert!(p.allows("http://localhost:3000", None));
        assert!(!p.allows("http://localhost:3001", None));
        assert!(!p.allows("http://app.example.com", None));
        assert!(!p.allows("https://app.example.com.evil.com", None));
        assert!(!p.allows("null", None));
        assert!(!p.allows("", None));
        // The server's own origin, whatever the list.
        assert!(p.allows("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(p.allows("https://api.example.com", Some("api.example.com")));
        assert!(p.allows("https://api.example.com", Some("api.example.com:443")));
        assert!(!p.allows("https://evil.com", Some("api.example.com")));
        assert!(!p.allows("http://127.0.0.1:8081", Some("127.0.0.1:8080")));
    }

    #[test]
    fn malformed_origins_are_refused_at_start() {
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/path",
            "app.example.com",
            "null",
            "https://user@app.example.com",
            "https://",
            "*",
        ] {
            let err = OriginPolicy::new(&[bad.into()]).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert!(OriginPolicy::new(&[]).unwrap().is_open());
    }
}
