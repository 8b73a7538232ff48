//! The client address used for rate limits and the audit: the socket peer,
//! or the right-most `X-Forwarded-For` entry when the peer is the configured
//! trusted proxy.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::state::AppState;
use crate::service::Client;

/// Extracts the [`Client`] of a request.
pub struct ClientAddr(pub Client);

/// Resolves the client address from the peer and the forwarded header.
pub fn resolve(peer: IpAddr, trusted_proxy: Option<IpAddr>, forwarded_for: Option<&str>) -> IpAddr {
    if trusted_proxy == Some(peer) {
        if let Some(ip) = forwarded_for
            .and_then(|h| h.rsplit(',').next())
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
        {
            return ip;
        }
    }
    peer
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let xff = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let addr = resolve(peer, state.services.config.trusted_proxy, xff);
        Ok(ClientAddr(Client { addr }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_only_from_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let xff = Some("1.2.3.4, 5.6.7.8");
        assert_eq!(resolve(proxy, Some(proxy), xff).to_string(), "5.6.7.8");
        assert_eq!(resolve(other, Some(proxy), xff), other);
        assert_eq!(resolve(proxy, None, xff), proxy);
        assert_eq!(resolve(proxy, Some(proxy), Some("garbage")), proxy);
    }
}
