//! Which connection failures retrying cannot fix, said in terms of the setting to change.
//!
//! | what the connection reports                     | meaning here                            |
//! |-------------------------------------------------|-----------------------------------------|
//! | refused, reset, timed out, DNS, unavailable     | the server is not up yet: keep retrying |
//! | `invalid peer certificate` (`UnknownIssuer`, …) | the server's certificate is not signed by the CA in `server_ca_cert_path` (or names another host) |
//! | TLS alerts about our certificate (`certificate required`, `unknown ca`, `bad certificate`) | the server wants a client certificate it can verify |
//! | HTTP 400 before any gRPC status                 | a TLS terminator (nginx, a load balancer) refused the request; without a client certificate configured, that is what mTLS terminators answer |
//!
//! `saga worker` waits for a server that is not up yet, but a certificate problem stays until
//! someone changes a setting: it stops at start with one of these explanations instead.

/// Why `error` will not go away by retrying, naming the settings to look at; `None` when a retry
/// may well succeed.
pub fn permanent(error: &anyhow::Error, client_certificate_configured: bool) -> Option<String> {
    let chain = format!("{error:#}").to_ascii_lowercase();
    let has = |needle: &str| chain.contains(needle);
    if has("invalid peer certificate") || has("certificate verify failed") {
        let detail = if has("notvalidforname") || has("not valid for name") {
            "the server's certificate does not name the address connected to \
             (set tls.server_name to a name it carries)"
        } else if has("expired") {
            "the server's certificate has expired"
        } else {
            "the server's certificate is not signed by the CA configured in \
             tls.server_ca_cert_path / TEMPORAL_TLS_SERVER_CA_CERT_PATH (nor by one this machine \
             trusts)"
        };
        return Some(format!("TLS: {detail}"));
    }
    if has("certificaterequired") || has("certificate required") {
        return Some(missing_client_certificate());
    }
    if has("unknownca") || has("unknown ca") || has("badcertificate") || has("bad certificate") {
        return Some(
            "TLS: the server does not accept this client certificate: it is not signed by a CA \
             the server trusts (tls.client_cert_path / TEMPORAL_TLS_CLIENT_CERT_PATH)"
                .to_owned(),
        );
    }
    let http_400 = has("400 bad request") || (has("400") && has("bad request"));
    if http_400 {
        return Some(if client_certificate_configured {
            "the server's TLS terminator refused the request (HTTP 400): it does not accept this \
             client certificate (tls.client_cert_path / TEMPORAL_TLS_CLIENT_CERT_PATH), or the \
             address is not a Temporal frontend"
                .to_owned()
        } else {
            missing_client_certificate()
        });
    }
    None
}

fn missing_client_certificate() -> String {
    "TLS: the server requires a client certificate and none is configured: set \
     tls.client_cert_path and tls.client_key_path in the temporal.toml profile (or \
     TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, with_cert: bool) -> Option<String> {
        permanent(&anyhow::anyhow!("{text}"), with_cert)
    }

    #[test]
    fn a_server_not_up_yet_is_retried() {
        assert!(
            check(
                "transport error: tcp connect error: Connection refused (os error 111)",
                false
            )
            .is_none()
        );
        assert!(check("status: Unavailable, message: \"dns error\"", true).is_none());
    }

    #[test]
    fn certificate_problems_name_the_setting() {
        let e = check(
            "transport error: invalid peer certificate: UnknownIssuer",
            true,
        )
        .unwrap();
        assert!(e.contains("server_ca_cert_path"), "{e}");
        let e = check(
            "status: Internal, message: \"HTTP status client error (400 Bad Request)\"",
            false,
        )
        .unwrap();
        assert!(
            e.contains("client certificate") && e.contains("client_cert_path"),
            "{e}"
        );
        let e = check("received fatal alert: CertificateRequired", false).unwrap();
        assert!(e.contains("client_cert_path"), "{e}");
        let e = check("received fatal alert: UnknownCA", true).unwrap();
        assert!(e.contains("not signed by a CA the server trusts"), "{e}");
    }
}
