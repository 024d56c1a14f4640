//! Parsers and checks for single flag values: durations, URLs, cluster ids, the in-pod API URL.
//!
//! Pure functions returning the broken rule as text; `config.rs` adds the flag's name. They
//! do not read files or the environment.

use std::time::Duration;

/// The API server address inside a pod. IPv6 service addresses need brackets in a URL.
pub fn in_cluster_api(host: &str, port: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    }
}

/// Parses durations like 500ms, 30s, 10m, 24h or 1h30m.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let rule = || format!("must be a duration like 30s, 10m, 24h or 1h30m, not {text:?}");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(rule());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| rule())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(rule()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(number)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(rule)?;
        total = total.checked_add(part).ok_or_else(rule)?;
    }
    if total.is_zero() {
        return Err(format!("must be longer than zero, not {text:?}"));
    }
    Ok(total)
}

/// Checks an http(s) URL without query, fragment or credentials; returns whether it is https.
pub fn check_url(url: &str) -> Result<bool, String> {
    // Never the URL itself: it may hold a password or a key.
    let bad = |why: &str| why.to_string();
    let https = if url.starts_with("https://") {
        true
    } else if url.starts_with("http://") {
        false
    } else {
        return Err(bad("must be an http:// or https:// URL"));
    };
    let uri: ureq::http::Uri = url.parse().map_err(|_| bad("must be a valid URL"))?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if uri.host().is_none_or(str::is_empty) || authority.contains('@') {
        return Err(bad("must be a URL with a host and no user:password@"));
    }
    if url.contains('?') || url.contains('#') {
        return Err(bad("must be a URL without ?query or #fragment"));
    }
    Ok(https)
}

/// A cluster id from `--cluster-id`: it goes into every report as is.
pub fn check_cluster_id(id: &str) -> Result<(), String> {
    if id.len() > 253 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be at most 253 printable ASCII characters without spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("30s", 30),
            ("10m", 600),
            ("24h", 86400),
            ("1h30m", 5400),
            ("1m30s", 90),
        ];
        for (text, secs) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in [
            "",
            "10",
            "h",
            "1d",
            "-1s",
            "1.5h",
            "0s",
            "99999999999h",
            "1h 30m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn in_cluster_api_brackets_ipv6_hosts() {
        assert_eq!(in_cluster_api("10.96.0.1", "443"), "https://10.96.0.1:443");
        assert_eq!(
            in_cluster_api("fd00:10:96::1", "443"),
            "https://[fd00:10:96::1]:443"
        );
        assert_eq!(
            in_cluster_api("[fd00::1]", "6443"),
            "https://[fd00::1]:6443"
        );
    }
}
