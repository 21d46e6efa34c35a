//! Who is calling: the source address API Gateway saw, the client's
//! Idempotency-Key, and the CAPTCHA token it may carry.

use std::{fmt, net::IpAddr};

/// The caller's address as the rate limits count it. IPv6 callers are
/// counted per /64, the block one subscriber is usually given, so rotating
/// through one's own addresses does not multiply the limit; and again per
/// /48, the block a site is given, so that one holder of a /48 does not
/// get 65,536 budgets. Two addresses the limits count as one are equal.
#[derive(Clone)]
pub struct ClientIp {
    key: String,
    site: Option<String>,
    /// The address itself, for a CAPTCHA provider's `remoteip`.
    address: Option<String>,
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
                        address: Some(v6.to_string()),
                    })
                }
            },
        }
    }

    fn single(address: String) -> Self {
        Self {
            key: address.clone(),
            site: None,
            address: Some(address),
        }
    }

    /// The one budget shared by calls whose address is not known.
    pub fn unknown() -> Self {
        Self {
            key: "unknown".into(),
            site: None,
            address: None,
        }
    }

    /// The address, or the IPv6 /64 it belongs to.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The IPv6 /48 the address belongs to; none for IPv4.
    pub fn site(&self) -> Option<&str> {
        self.site.as_deref()
    }

    /// The full address, when known.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }
}

impl PartialEq for ClientIp {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.site == other.site
    }
}

impl Eq for ClientIp {}

impl fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientIp({})", self.key)
    }
}

/// `input` if it is 1 to `max` visible ASCII characters (no space, no
/// control character): what an opaque client token may be.
fn visible_ascii(input: &str, max: usize) -> Option<String> {
    let valid =
        !input.is_empty() && input.len() <= max && input.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| input.to_owned())
}

/// A client-chosen key that makes retries of one request-otp call safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// 1 to 255 visible ASCII characters, as HTTP header values allow.
    pub fn parse(input: &str) -> Option<Self> {
        visible_ascii(input, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The token a CAPTCHA widget gave the client (`captchaToken`): opaque,
/// short-lived and single-use, handed to the provider as it came.
#[derive(Clone, PartialEq, Eq)]
pub struct CaptchaToken(String);

impl CaptchaToken {
    /// Turnstile documents 2,048 characters at most; hCaptcha's and
    /// reCAPTCHA's run longer, but not past this.
    pub const MAX_LEN: usize = 4096;

    /// 1 to 4,096 visible ASCII characters, as every provider's tokens are.
    pub fn parse(input: &str) -> Option<Self> {
        visible_ascii(input, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A token proves a solved challenge until spent: keep it out of logs.
impl fmt::Debug for CaptchaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaptchaToken(<redacted>)")
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
        assert_eq!(a.address(), Some("2001:db8:1:2:aaaa::1"));
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

    #[test]
    fn captcha_tokens_are_visible_ascii_of_bounded_length_and_never_printed() {
        let token = CaptchaToken::parse("XXXX.DUMMY.TOKEN.XXXX").unwrap();
        assert_eq!(token.as_str(), "XXXX.DUMMY.TOKEN.XXXX");
        assert_eq!(format!("{token:?}"), "CaptchaToken(<redacted>)");
        assert!(CaptchaToken::parse("").is_none());
        assert!(CaptchaToken::parse("a b").is_none());
        assert!(CaptchaToken::parse(&"t".repeat(4097)).is_none());
        assert!(ClientIp::unknown().address().is_none());
    }
}
