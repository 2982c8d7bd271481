//! The client's address as the rate limiter counts it: the socket's peer, or the address a
//! trusted proxy names in `X-Forwarded-For`.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Proxies whose `X-Forwarded-For` is believed (`search_ui.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses the configured entries (addresses or CIDR ranges); entries that parse as neither
    /// were refused by the config check and are skipped here.
    pub fn parse(entries: &[String]) -> Self {
        let nets = entries
            .iter()
            .filter_map(|e| {
                e.parse::<IpNet>().ok().or_else(|| e.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        TrustedProxies(nets)
    }

    fn trusts(&self, address: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(address))
    }

    /// The client of a request that came from `peer`: `peer` itself unless it is a trusted
    /// proxy; then the last address of `X-Forwarded-For` that is not a trusted proxy (each proxy
    /// appends the address it saw, so the addresses before it are the client's to choose).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(&peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect();
        chain.iter().rev().find(|a| !self.trusts(a)).or(chain.first()).copied().unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".to_owned()]);
        let peer: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(proxies.client(peer, &forwarded("203.0.113.9")), peer);
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_entries_before_it_are_ignored() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "192.0.2.1".to_owned()]);
        let peer: IpAddr = "10.1.2.3".parse().expect("ip");
        // The client wrote 1.1.1.1 itself; the outer proxy 192.0.2.1 saw 203.0.113.9.
        let headers = forwarded("1.1.1.1, 203.0.113.9, 192.0.2.1");
        assert_eq!(proxies.client(peer, &headers), "203.0.113.9".parse::<IpAddr>().expect("ip"));
        assert_eq!(proxies.client(peer, &HeaderMap::new()), peer);
    }
}
