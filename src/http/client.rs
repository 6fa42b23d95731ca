//! Who is on the other end of a request: the client IP and user agent, as audit entries
//! record them.
//!
//! Rules: the IP is the one `client_ip::address` decides (the TCP peer, or the proxy's
//! `X-Forwarded-For` entry with `--trust-forwarded-for`);
//! a request served without connection info (an in-process test router) has none.

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::audit::Origin;

/// The client's IP address ([`super::client_ip::address`] decides it).
pub fn client_ip(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    super::client_ip::address(parts, state.config.trust_forwarded_for)
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Origin::new(client_ip(parts, state), ua))
    }
}
