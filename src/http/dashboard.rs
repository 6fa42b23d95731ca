//! The dashboard: a static page at `/dashboard` that logs in, lists the users the caller may
//! watch (self and the owners of shares received), follows their insights and analyses live
//! over the WebSocket, and charts steps, heart rate and sleep stages on the user's clock (the
//! caller's own raw samples; a grantee gets the analysis only, as raw samples are not shared).
//!
//! Rules:
//! - The files (page, scripts, style, favicon) are compiled into the binary (`include_str!`):
//!   the page works with the binary alone, with no file-system lookups at run time and no path
//!   taken from the request.
//! - No CDN, framework or build step here: the page loads nothing but these files and the API
//!   of the same origin. The protocol code is the TypeScript SDK's (clients/js), embedded as its
//!   committed bundle `clients/js/dist/clarity.js` (its `npm run gen:check` fails when that
//!   file is not what the sources build) and imported by app.js, a module. The Content-Security-Policy enforces that (no inline script or style, no
//!   other origin, WebSocket to this server), so an injected string cannot run as code.
//! - The page keeps tokens in memory and `sessionStorage` only, never in a URL it navigates
//!   to; the access token in the WebSocket URL is there because browsers cannot set headers on
//!   the upgrade, and request logs never carry query strings.
//! - These are the only non-JSON bodies of the API besides `/metrics`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::AppState;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
/// The SDK (clients/js), bundled into one ES module: tokens, reconnects, subscriptions, REST.
const CLARITY_JS: &str = include_str!("../../clients/js/dist/clarity.js");
/// The user's clock (offsets of the data), loaded before the other scripts.
const CLOCK_JS: &str = include_str!("dashboard/clock.js");
/// Raw samples shaped for the charts (steps per hour, nights of stages).
const SAMPLES_JS: &str = include_str!("dashboard/samples.js");
/// SVG drawing: time axes, bars, the heart-rate line, the hypnogram.
const CHARTS_JS: &str = include_str!("dashboard/charts.js");
/// The chart cards with their captions and legends.
const VIEWS_JS: &str = include_str!("dashboard/views.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");
/// Linked from the page, so browsers do not ask for a `/favicon.ico` the server lacks.
const FAVICON_SVG: &str = include_str!("dashboard/favicon.svg");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "application/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Same-origin everything; `connect-src` adds WebSocket schemes because `'self'` does not
/// cover `ws:` in every browser. No `'unsafe-inline'`: the page has no inline code or style.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(|| file(INDEX_HTML, HTML)))
        .route("/dashboard/", get(|| file(INDEX_HTML, HTML)))
        .route("/dashboard/app.js", get(|| file(APP_JS, JS)))
        .route("/dashboard/clarity.js", get(|| file(CLARITY_JS, JS)))
        .route("/dashboard/clock.js", get(|| file(CLOCK_JS, JS)))
        .route("/dashboard/samples.js", get(|| file(SAMPLES_JS, JS)))
        .route("/dashboard/charts.js", get(|| file(CHARTS_JS, JS)))
        .route("/dashboard/views.js", get(|| file(VIEWS_JS, JS)))
        .route("/dashboard/style.css", get(|| file(STYLE_CSS, CSS)))
        .route("/dashboard/favicon.svg", get(|| file(FAVICON_SVG, SVG)))
}

async fn file(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            // The declared type is the only one: a script is never sniffed from other bytes.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // The files change with the binary; revalidating keeps a new release's page and
            // script in step.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
