//! Keeping secrets out of errors, logs and `EXPLAIN`.
//!
//! Table URIs and endpoints may carry credentials (`s3://AKID:SECRET@bucket/t`,
//! `http://user:pass@minio:9000`, pre-signed `?X-Amz-Signature=...`). Every plugin error passes
//! through [`redact_urls`] (see [`crate::PluginError::new`]), and code that logs or displays a
//! location uses it too.

use std::borrow::Cow;

/// Query parameters whose values are credentials (compared without case).
const SECRET_PARAMETERS: &[&str] = &[
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "sig",
    "signature",
    "token",
    "access_token",
    "sas",
    "se",
    "sv",
    "password",
    "secret",
];

/// The redaction marker.
pub const REDACTED: &str = "***";

/// Whether an option key names a secret (`aws_secret_access_key`, `AWS_SESSION_TOKEN`,
/// `password`, `client_secret`, `access_key_id`, ...), compared without case.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "token", "credential", "access_key", "account_key", "sas_key", "private_key", "signature"]
        .iter()
        .any(|word| key.contains(word))
}

/// `text` with the credentials of every URL in it replaced by [`REDACTED`]: user information
/// (`scheme://user:pass@host` → `scheme://***@host`) and secret query parameters.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") && !text.contains('?') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#', whitespace or quote.
        let end = after.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"' || c == '`').unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
        // The URL's path and query, up to whitespace or a quote.
        let url_end = rest.find(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '`').unwrap_or(rest.len());
        let (url_tail, remainder) = rest.split_at(url_end);
        let redacted = redact_query(url_tail);
        changed |= matches!(redacted, Cow::Owned(_));
        out.push_str(&redacted);
        rest = remainder;
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn redact_query(path_and_query: &str) -> Cow<'_, str> {
    let Some(q) = path_and_query.find('?') else { return Cow::Borrowed(path_and_query) };
    let (path, query) = path_and_query.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(f) => query.split_at(f),
        None => (query, ""),
    };
    let mut changed = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) => {
                changed = true;
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    if changed {
        Cow::Owned(format!("{path}{}{fragment}", parts.join("&")))
    } else {
        Cow::Borrowed(path_and_query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_and_signed_queries_are_redacted() {
        let text = "delta table 's3://AKIDEXAMPLE:wJalrSECRET@bucket/t' failed; endpoint http://user:pa55@minio:9000 \
                    and https://h/x?X-Amz-Signature=abc123&part=1&X-Amz-Credential=AKID%2F2024";
        let out = redact_urls(text);
        for secret in ["AKIDEXAMPLE", "wJalrSECRET", "pa55", "abc123", "AKID%2F2024"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("s3://***@bucket/t") && out.contains("http://***@minio:9000") && out.contains("part=1"), "{out}");
    }

    #[test]
    fn text_without_credentials_is_untouched() {
        for text in ["delta table '/data/t' not found", "file:///tmp/a/b?x=1", "no url here"] {
            assert!(matches!(redact_urls(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn secret_option_keys() {
        for key in ["AWS_SECRET_ACCESS_KEY", "aws_session_token", "password", "AZURE_STORAGE_ACCOUNT_KEY", "AWS_ACCESS_KEY_ID"] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["AWS_REGION", "endpoint", "allow_http"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }
}
