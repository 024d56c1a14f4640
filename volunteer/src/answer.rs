//! One answer of the Kubernetes API: decoding it within a byte bound, and what each failure
//! means (retry or not, and the message, which names the RBAC permission a 403 lacks).
//!
//! Decoding streams from the response into a serde seed, so skipped fields cost no memory,
//! but the decoder buffers every string it looks at (values it keeps, and keys, even of
//! objects it skips), so `MAX_ANSWER_BYTES` bounds the largest buffer. It does not send
//! requests; that is `kube.rs`.

use std::io::{BufReader, Read};

use serde::de::DeserializeSeed;

use crate::error::{bounded, Error};
use crate::objects::Status;
use crate::retry::{self, Failure};
use crate::tls;

/// The most bytes of one answer: a page of the node list (64 KB a node in a page of 250),
/// `/version`, the namespace.
pub const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// A bound on the bytes of one answer, and the rule to name when it is hit.
pub struct Limit {
    pub bytes: u64,
    pub rule: String,
}

impl Limit {
    /// `MAX_ANSWER_BYTES`.
    pub fn answer() -> Limit {
        Limit {
            bytes: MAX_ANSWER_BYTES,
            rule: format!("the answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20),
        }
    }
}

/// One kind of request, for messages: `shown` is the path without query (continue tokens are
/// long and meaningless to a reader), `permission` the RBAC verb and resource it needs.
pub struct Call<'a> {
    pub path: &'a str,
    pub shown: &'a str,
    pub permission: &'a str,
}

impl Call<'_> {
    /// Decodes an answer with `seed`, reading at most `limit.bytes`; gives the bytes read too.
    pub fn decode<S, T>(
        &self,
        body: ureq::Body,
        seed: S,
        limit: &Limit,
    ) -> Result<(T, u64), Failure>
    where
        S: for<'de> DeserializeSeed<'de, Value = T>,
    {
        // Our own limit rather than ureq's, so that hitting it can be told from a connection
        // that dropped: an answer this large will be as large on a retry.
        let reader = body.into_with_config().limit(u64::MAX).reader();
        let mut limited = BufReader::with_capacity(64 * 1024, reader).take(limit.bytes);
        let mut json = serde_json::Deserializer::from_reader(&mut limited);
        let value = seed
            .deserialize(&mut json)
            .and_then(|value| json.end().map(|()| value));
        drop(json);
        let value = value.map_err(|e| {
            // An end at our bound, not any error there: after a refused value serde_json
            // still reads the closing bracket of each level, which may reach the bound.
            if e.is_eof() && limited.limit() == 0 {
                return Failure::Final(self.broken(&limit.rule));
            }
            // A connection that drops or stalls mid-body is transient; a well-delivered answer
            // we cannot decode will not improve on retry.
            let cut_short = e.is_io() || e.is_eof();
            let error = Error::Kube(format!(
                "kubernetes api: GET {}: cannot decode the answer: {e}",
                self.shown
            ));
            if cut_short {
                Failure::Transient { error, after: None }
            } else {
                Failure::Final(error)
            }
        })?;
        Ok((value, limit.bytes - limited.limit()))
    }

    /// An answer that breaks one of our bounds; retrying cannot help.
    pub fn broken(&self, rule: &str) -> Error {
        Error::Kube(format!("kubernetes api: GET {}: {rule}", self.shown))
    }

    pub fn transport(&self, e: ureq::Error) -> Failure {
        if tls::is_tls_failure(&e) {
            return Failure::Final(Error::Kube(format!(
                "kubernetes api: GET {}: tls: {e} ({})",
                self.shown,
                tls::tls_hint(&e)
            )));
        }
        let error = Error::Kube(format!("kubernetes api: GET {}: {e}", self.shown));
        Failure::Transient { error, after: None }
    }

    pub fn refused(&self, status: u16, mut response: ureq::http::Response<ureq::Body>) -> Failure {
        let after = retry::retry_after(&response);
        let on = format!("on GET {}", self.shown);
        let message = match status {
            401 => format!(
                "kubernetes api: 401 unauthorized {on}: the token was refused; check the service \
                 account token or --token-file"
            ),
            403 => format!(
                "kubernetes api: 403 forbidden {on}: the service account needs permission to {}",
                self.permission
            ),
            _ => {
                let said = retry::error_body::<Status>(&mut response)
                    .and_then(|s| s.message)
                    .map(|m| format!(": {}", bounded(&m, 200)))
                    .unwrap_or_default();
                format!("kubernetes api: {status} {on}{said}")
            }
        };
        retry::by_status(status, Error::Kube(message), after)
    }

    pub fn gone(&self) -> Error {
        Error::Kube(format!("kubernetes api: 410 gone on GET {}", self.shown))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the continue token.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::objects::Page;

    const CALL: Call = Call {
        path: "/api/v1/nodes",
        shown: "/api/v1/nodes",
        permission: "list nodes",
    };

    /// Decodes `json` as a node page within `bytes`: the bytes read, or the final error.
    fn decode(json: &str, bytes: u64) -> Result<u64, String> {
        let body = ureq::Body::builder().data(json);
        let limit = Limit {
            bytes,
            rule: "over the bound".into(),
        };
        match CALL.decode(body, Page { room: 9 }, &limit) {
            Ok((_, read)) => Ok(read),
            Err(Failure::Final(e)) => Err(e.to_string()),
            Err(Failure::Transient { error, .. }) => panic!("not transient: {error}"),
        }
    }

    #[test]
    fn an_answer_past_the_bound_names_the_bound_and_a_refused_value_its_own_rule() {
        let skipped = r#"{"items": [{"metadata": {"uid": "u", "name": "a long name"}}]}"#;
        assert_eq!(decode(skipped, 100), Ok(skipped.len() as u64));
        let cut = u64::try_from(skipped.len()).expect("a short answer") - 1;
        assert_eq!(
            decode(skipped, cut),
            Err("kubernetes api: GET /api/v1/nodes: over the bound".into())
        );
        // Refused right at the bound: serde_json still reads the closing brackets.
        let refused = r#"{"items":[{"metadata":{"uid":""}}]}"#;
        let e = decode(refused, refused.len() as u64).expect_err("an empty uid");
        assert!(e.contains("metadata.uid must be 1 to 128 bytes"), "{e}");
    }

    #[test]
    fn continue_tokens_are_percent_encoded() {
        assert_eq!(percent_encode("eyJvZmZzZXQiOjJ9"), "eyJvZmZzZXQiOjJ9");
        assert_eq!(percent_encode("a+b/c=&d e"), "a%2Bb%2Fc%3D%26d%20e");
    }
}
