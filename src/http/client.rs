//! Who is on the other end of a request: the client IP and user agent, as audit entries
//! record them.
//!
//! Rules: the IP is the socket peer's ([`client_ip`] is the one place that decides it);
//! a request served without connection info (an in-process test router) has none.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::audit::Origin;

/// The client's IP address: the TCP peer of the connection.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Origin::new(client_ip(parts), ua))
    }
}
