//! Plivo's webhook signatures, so that only Plivo can make us speak a code,
//! lift a cooldown or place a fallback call.
//!
//! - V3 (`X-Plivo-Signature-V3`): base64(HMAC-SHA256(auth token, message)),
//!   where the message is the URL without its query, then `?` and the query
//!   re-sorted by key (when there is a query or there are POST params), a
//!   `.` when both are present, the POST params sorted by key as
//!   `keyvalue`, and finally `.` and the nonce. The header may list several
//!   signatures (one per active token); any one is enough.
//! - V2 (`X-Plivo-Signature-V2`): base64(HMAC-SHA256(auth token, URL
//!   without its query + nonce)). It signs neither the query nor the body,
//!   which is why callers also refuse a nonce seen before.
//!
//! The `-Ma-` variants are the same, signed with the main account's token.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

/// Which token a signature claims to be made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The (sub)account whose credentials the service uses.
    Account,
    /// The main account above it (`X-Plivo-Signature-Ma-*`).
    MainAccount,
}

/// One signature header with its nonce, as received.
#[derive(Debug, Clone)]
pub struct Signature {
    pub version: Version,
    pub signer: Signer,
    /// One or more base64 signatures, comma-separated.
    pub value: String,
    pub nonce: String,
}

/// What was signed: the full URL Plivo requested and its POST params.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub url: &'a str,
    pub params: &'a [(String, String)],
}

/// The HTTP headers that carry each kind of signature, with their nonce's.
pub const HEADERS: [(Version, Signer, &str, &str); 4] = [
    (
        Version::V3,
        Signer::Account,
        "x-plivo-signature-v3",
        "x-plivo-signature-v3-nonce",
    ),
    (
        Version::V3,
        Signer::MainAccount,
        "x-plivo-signature-ma-v3",
        "x-plivo-signature-v3-nonce",
    ),
    (
        Version::V2,
        Signer::Account,
        "x-plivo-signature-v2",
        "x-plivo-signature-v2-nonce",
    ),
    (
        Version::V2,
        Signer::MainAccount,
        "x-plivo-signature-ma-v2",
        "x-plivo-signature-v2-nonce",
    ),
];

/// Whether `signature` is a valid signature of `signed` under `token`.
/// Candidates are compared by `Mac::verify_slice`, in constant time.
pub fn verify(signature: &Signature, token: &str, signed: Signed<'_>) -> bool {
    let message = match signature.version {
        Version::V3 => v3_message(signed, &signature.nonce),
        Version::V2 => format!("{}{}", without_query(signed.url), signature.nonce),
    };
    let Ok(mac) = Hmac::<Sha256>::new_from_slice(token.as_bytes()) else {
        return false;
    };
    let mac = mac.chain_update(message.as_bytes());
    signature
        .value
        .split(',')
        .filter_map(|candidate| STANDARD.decode(candidate.trim()).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok())
}

/// Signs `signed` as Plivo would: for tests and the local sandbox's peers.
pub fn sign(version: Version, token: &str, signed: Signed<'_>, nonce: &str) -> String {
    let message = match version {
        Version::V3 => v3_message(signed, nonce),
        Version::V2 => format!("{}{}", without_query(signed.url), nonce),
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// The string V3 signs, as Plivo's SDKs build it for a POST.
fn v3_message(signed: Signed<'_>, nonce: &str) -> String {
    let base = without_query(signed.url);
    let query = signed
        .url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default())
        .unwrap_or_default();
    let mut query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut params: Vec<&(String, String)> = signed.params.iter().collect();
    params.sort();
    let mut message = String::from(base);
    if !query.is_empty() || !params.is_empty() {
        message.push('?');
        message.push_str(&query);
    }
    if !query.is_empty() && !params.is_empty() {
        message.push('.');
    }
    for (k, v) in params {
        message.push_str(k);
        message.push_str(v);
    }
    message.push('.');
    message.push_str(nonce);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vectors published with Plivo's Go and Python SDKs
    // (utils_test.go, tests/resources/test_signature.py).
    const V3_TOKEN: &str = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
    const V3_NONCE: &str = "31627761595286130198";

    fn sdk_params() -> Vec<(String, String)> {
        [
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            (
                "To",
                "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
            ),
            ("ALegRequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("RequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            (
                "SIP-H-To",
                "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
            ),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn v3(value: &str) -> Signature {
        Signature {
            version: Version::V3,
            signer: Signer::Account,
            value: value.to_owned(),
            nonce: V3_NONCE.to_owned(),
        }
    }

    #[test]
    fn v3_matches_plivos_vector_for_a_post_with_a_query() {
        let params = sdk_params();
        let signed = Signed {
            url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d",
            params: &params,
        };
        let expected = "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=";
        assert_eq!(sign(Version::V3, V3_TOKEN, signed, V3_NONCE), expected);
        assert!(verify(&v3(expected), V3_TOKEN, signed));
    }

    #[test]
    fn v3_matches_plivos_vector_for_a_post_without_a_query() {
        let params = sdk_params();
        let signed = Signed {
            url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml",
            params: &params,
        };
        let expected = "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=";
        assert_eq!(sign(Version::V3, V3_TOKEN, signed, V3_NONCE), expected);
        assert!(verify(&v3(expected), V3_TOKEN, signed));
    }

    #[test]
    fn v3_accepts_any_one_of_several_comma_separated_signatures() {
        let params = sdk_params();
        let signed = Signed {
            url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml",
            params: &params,
        };
        let header = "bm90IGl0=,iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=";
        assert!(verify(&v3(header), V3_TOKEN, signed));
    }

    #[test]
    fn v3_refuses_a_changed_param_query_token_or_nonce() {
        let expected = "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=";
        let url = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d";
        let mut params = sdk_params();
        params[1].1 = "19792014279".into();
        assert!(!verify(
            &v3(expected),
            V3_TOKEN,
            Signed {
                url,
                params: &params
            }
        ));
        let params = sdk_params();
        let other_query =
            "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=e";
        assert!(!verify(
            &v3(expected),
            V3_TOKEN,
            Signed {
                url: other_query,
                params: &params
            }
        ));
        assert!(!verify(
            &v3(expected),
            "another-token",
            Signed {
                url,
                params: &params
            }
        ));
        let mut other_nonce = v3(expected);
        other_nonce.nonce = "31627761595286130199".into();
        assert!(!verify(
            &other_nonce,
            V3_TOKEN,
            Signed {
                url,
                params: &params
            }
        ));
        assert!(!verify(
            &v3(""),
            V3_TOKEN,
            Signed {
                url,
                params: &params
            }
        ));
        assert!(!verify(
            &v3("not base64!"),
            V3_TOKEN,
            Signed {
                url,
                params: &params
            }
        ));
    }

    #[test]
    fn v2_matches_plivos_vector() {
        let signature = Signature {
            version: Version::V2,
            signer: Signer::Account,
            value: "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=".into(),
            nonce: "12345".into(),
        };
        let signed = Signed {
            url: "https://answer.url",
            params: &[],
        };
        assert!(verify(&signature, "my_auth_token", signed));
        assert!(!verify(&signature, "my_auth_tokens", signed));
        // V2 ignores the query: the same signature holds with one.
        let with_query = Signed {
            url: "https://answer.url?send=1",
            params: &[],
        };
        assert!(verify(&signature, "my_auth_token", with_query));
    }
}
