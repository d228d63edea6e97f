//! Keeping passwords out of `Debug` output and error messages.

/// `scheme://user:***@host/...`: the URL with any password replaced.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme_end], &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// `text` with the password of `url` (if any) replaced by `***`.
pub(crate) fn redact_text(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .map(|(_, r)| &r[..r.find(['/', '?', '#']).unwrap_or(r.len())])
        .and_then(|a| a.rsplit_once('@'))
        .and_then(|(ui, _)| ui.split_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty());
    let mut out = text.replace(url, &redact_url(url));
    if let Some(p) = password {
        out = out.replace(p, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        let cases = [
            ("http://h:1/x", "http://h:1/x"),
            ("http://u:pw@h/x?y=1", "http://u:***@h/x?y=1"),
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            ("http://u@h/", "http://u:***@h/"),
            ("nonsense", "nonsense"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want);
        }
        assert_eq!(
            redact_text(
                "failed to reach http://u:hunter2@h/: hunter2 refused",
                "http://u:hunter2@h/"
            ),
            "failed to reach http://u:***@h/: *** refused"
        );
    }
}
