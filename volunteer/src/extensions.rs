//! Operator-supplied extensions: string pairs added to every report under `payload.extensions`.
//!
//! It owns reading them (one JSON file, or a directory of files as a ConfigMap mount makes)
//! and the key rules. An invalid file is always an error naming the file and the key; nothing
//! is silently skipped except dot-files, which in a ConfigMap mount are Kubernetes' own
//! bookkeeping (`..data`, `..2024_01_01...`). It does not decide when they are read; see `app.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Larger files are refused: extensions are a handful of short pairs, and a report must stay small.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Reads the extensions at `path`: a JSON object of strings, or a directory of such files read in
/// name order. The same key in two files is an error, so the outcome never depends on order.
pub fn load(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    let meta = fs::metadata(path).map_err(|e| fail(path, format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return load_file(path);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let entries = fs::read_dir(path).map_err(|e| fail(path, format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| fail(path, format!("cannot list: {e}")))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            files.push(entry.path());
        }
    }
    files.sort();
    let mut all = BTreeMap::new();
    let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        for (key, value) in load_file(&file)? {
            if let Some(first) = origin.get(&key) {
                let why = format!("key {key:?} is also set in {}", first.display());
                return Err(fail(&file, why));
            }
            origin.insert(key.clone(), file.clone());
            all.insert(key, value);
        }
    }
    Ok(all)
}

fn load_file(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    // fs::metadata follows symlinks, which is how a ConfigMap mount presents its keys.
    let meta = fs::metadata(path).map_err(|e| fail(path, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail(path, "not a regular file".into()));
    }
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| fail(path, format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(path, format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let pairs: BTreeMap<String, String> = serde_json::from_str(&text)
        .map_err(|e| fail(path, format!("must be a JSON object of string values: {e}")))?;
    for key in pairs.keys() {
        check_key(key).map_err(|why| fail(path, format!("key {key:?}: {why}")))?;
    }
    Ok(pairs)
}

/// A key is `[prefix/]name`, as Kubernetes label and annotation keys: the prefix a DNS
/// subdomain (RFC 1123, at most 253 characters), the name at most 63 characters of
/// alphanumerics with `-`, `_` or `.` inside.
pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if !is_dns_subdomain(prefix) {
            return Err("prefix must be a DNS subdomain like example.com".into());
        }
    }
    let inner_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.len() > 63 || !ends_ok || !name.chars().all(inner_ok) {
        return Err("name must be 1-63 alphanumerics, with - _ . inside".into());
    }
    Ok(())
}

fn is_dns_subdomain(text: &str) -> bool {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    !text.is_empty() && text.len() <= 253 && text.split('.').all(label_ok)
}

fn fail(path: &Path, why: String) -> Error {
    Error::config("--extensions", format!("{}: {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        let good = [
            "a",
            "example.com/key",
            "k8s.io/a-b_c.d",
            "x/Y9",
            &"n".repeat(63),
        ];
        for key in good {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
        let long_prefix = format!("{}/a", ["abc"; 64].join("."));
        let long_name = "n".repeat(64);
        let bad = [
            "",
            "-a",
            "a-",
            "a b",
            "/a",
            "Example.com/a",
            "ex_ample.com/a",
            "a/b/c",
            "a/",
            "é",
            &long_prefix,
            &long_name,
        ];
        for key in bad {
            assert!(check_key(key).is_err(), "{key:?} should be refused");
        }
    }
}
