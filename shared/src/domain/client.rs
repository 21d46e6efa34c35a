//! Who is calling: the source address API Gateway saw, and the client's
//! Idempotency-Key.

use std::{fmt, net::IpAddr};

/// The caller's address as the rate limits count it. IPv6 callers are
/// counted per /64, the block one subscriber is usually given, so rotating
/// through one's own addresses does not multiply the limit; and again per
/// /48, the block a site is given, so that one holder of a /48 does not
/// get 65,536 budgets.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIp {
    key: String,
    site: Option<String>,
}

impl ClientIp {
    pub fn parse(input: &str) -> Option<Self> {
        match input.trim().parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => Some(Self::single(v4.to_string())),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Some(Self::single(v4.to_string())),
                None => {
                    let s = v6.segments();
                    Some(Self {
                        key: format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]),
                        site: Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])),
                    })
                }
            },
        }
    }

    fn single(key: String) -> Self {
        Self { key, site: None }
    }

    /// The one budget shared by calls whose address is not known.
    pub fn unknown() -> Self {
        Self::single("unknown".into())
    }

    /// The address, or the IPv6 /64 it belongs to.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The IPv6 /48 the address belongs to; none for IPv4.
    pub fn site(&self) -> Option<&str> {
        self.site.as_deref()
    }
}

impl fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientIp({})", self.key)
    }
}

/// A client-chosen key that makes retries of one request-otp call safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// 1 to 255 visible ASCII characters, as HTTP header values allow.
    pub fn parse(input: &str) -> Option<Self> {
        let valid = !input.is_empty()
            && input.len() <= Self::MAX_LEN
            && input.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_are_counted_one_by_one() {
        assert_eq!(
            ClientIp::parse("203.0.113.7").unwrap().as_str(),
            "203.0.113.7"
        );
        assert_eq!(
            ClientIp::parse("::ffff:203.0.113.7").unwrap().as_str(),
            "203.0.113.7"
        );
    }

    #[test]
    fn ipv6_addresses_are_counted_per_64_block() {
        let a = ClientIp::parse("2001:db8:1:2:aaaa::1").unwrap();
        let b = ClientIp::parse("2001:db8:1:2:bbbb::9").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "2001:db8:1:2::/64");
        assert_eq!(a.site(), Some("2001:db8:1::/48"));
        assert_eq!(ClientIp::parse("203.0.113.7").unwrap().site(), None);
    }

    #[test]
    fn garbage_is_not_an_address() {
        assert!(ClientIp::parse("not-an-ip").is_none());
        assert!(ClientIp::parse("").is_none());
    }

    #[test]
    fn idempotency_keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("7f9c2ba4-e88f-11ee-8c90-0242ac120002").is_some());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("has space").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
    }
}
