//! The client's network address, for login throttling and the audit log (with the user
//! agent, as [`Origin`]).
//!
//! Rules:
//! - By default the TCP peer address: a client cannot choose it.
//! - With `--trust-forwarded-for`, the last `X-Forwarded-For` entry: the address the proxy
//!   in front of us (an ALB) saw and appended. Earlier entries are written by the client and
//!   never trusted. Off by default, since without such a proxy any client could pick an
//!   address per request and escape the per-address budgets.
//! - Throttling cuts IPv6 addresses to their /64: one subscriber commonly holds a whole /64,
//!   so a budget per single address would be no budget. The audit log keeps the address.
//! - A request served without connection info (an in-process router) has no address.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::AppState;
use crate::audit::Origin;
use crate::http::error::ApiError;

/// The address a request came from, as throttling counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Served without connection info (a router driven in-process): one shared bucket.
        let ip = address(parts, state.config.server.trust_forwarded_for)
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        Ok(ClientIp(prefix(ip)))
    }
}

/// The client's address (whole, not cut to a prefix): the last `X-Forwarded-For` entry when
/// `trust_forwarded_for`, else the TCP peer; `None` without connection info. The one place
/// that decides it, for throttling and the audit log alike.
pub fn address(parts: &Parts, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = if trust_forwarded_for {
        last_forwarded_for(&parts.headers)
    } else {
        None
    };
    forwarded.or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    })
}

/// Who is on the other end, as audit entries record it: the whole address and the user agent.
impl FromRequestParts<AppState> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Origin::new(
            address(parts, state.config.server.trust_forwarded_for),
            ua,
        ))
    }
}

/// The last entry of the last `X-Forwarded-For` header, if it is an address (with or
/// without a port).
fn last_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// IPv4 as is (IPv4-mapped IPv6 too); IPv6 cut to its /64.
fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn last_hop_of_forwarded_for() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            last_forwarded_for(&headers(&["1.1.1.1, 2.2.2.2"])),
            Some(ip("2.2.2.2"))
        );
        assert_eq!(
            last_forwarded_for(&headers(&["1.1.1.1", "3.3.3.3:4000"])),
            Some(ip("3.3.3.3"))
        );
        assert_eq!(
            last_forwarded_for(&headers(&["[2001:db8::1]:443"])),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(last_forwarded_for(&headers(&["1.1.1.1, garbage"])), None);
        assert_eq!(last_forwarded_for(&HeaderMap::new()), None);
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        let a = prefix("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = prefix("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = prefix("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            prefix("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
