//! Which webhook URLs reel will call: `http(s)` only, and (unless
//! `webhooks.allow_private_targets`) only hosts whose every address is public, so an endpoint
//! cannot make reel reach loopback, private or link-local services (SSRF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

/// How long a host may take to resolve.
const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Why a URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Not an absolute `http` or `https` URL with a host.
    #[error("the url must be an absolute http(s) url with a host")]
    NotHttp,
    /// The host does not resolve.
    #[error("the url's host does not resolve")]
    Unresolvable,
    /// The host resolves to an address reel does not call.
    #[error("the url resolves to a loopback, private or link-local address ({0})")]
    Private(IpAddr),
}

/// Parses `raw` and checks where it points.
pub async fn check(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = Url::parse(raw).map_err(|_| TargetError::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::NotHttp);
    }
    let host = match url.host() {
        Some(url::Host::Domain(domain)) => domain.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(TargetError::NotHttp),
    };
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)));
    let addrs: Vec<_> = match lookup.await {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => return Err(TargetError::Unresolvable),
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable);
    }
    match addrs.iter().map(|a| a.ip()).find(|ip| !is_public(*ip)) {
        Some(ip) => Err(TargetError::Private(ip)),
        None => Ok(url),
    }
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => !is_private_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || shared
        || a == 0)
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_other_schemes_and_private_addresses() {
        assert_eq!(check("ftp://example.com/x", true).await, Err(TargetError::NotHttp));
        assert_eq!(check("not a url", true).await, Err(TargetError::NotHttp));
        assert_eq!(check("http://user:pw@example.com/", true).await, Err(TargetError::NotHttp));
        for private in [
            "http://127.0.0.1:9/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://localhost/",
        ] {
            assert!(matches!(check(private, false).await, Err(TargetError::Private(_))), "{private}");
        }
        assert!(check("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check("https://93.184.215.14/hook", false).await.is_ok());
    }
}
