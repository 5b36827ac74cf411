//! Connecting to NATS: the servers and credentials of a URL list, TLS.

use crate::LogError;

/// TLS to NATS: the certificate authority that signed the servers' certificates (else the
/// system's roots), and a client certificate and key for mutual TLS.
#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    /// The CA certificate(s), PEM.
    pub ca: Option<std::path::PathBuf>,
    /// The client certificate, PEM.
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's key, PEM.
    pub key: Option<std::path::PathBuf>,
}

/// The servers of a comma-separated URL list, and the options carrying the credentials
/// their URLs hold (the client does not read them from URLs itself). Every URL must carry the
/// same credentials, or none.
pub(super) fn connect_options(
    urls: &str,
    tls: &NatsTls,
) -> Result<(Vec<async_nats::ServerAddr>, async_nats::ConnectOptions), LogError> {
    let invalid = |url: &str, e: &dyn std::fmt::Display| {
        LogError::Misconfigured(format!("NATS URL `{url}`: {e}"))
    };
    let mut servers = Vec::new();
    let mut credentials = None;
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let server: async_nats::ServerAddr = url.parse().map_err(|e| invalid(url, &e))?;
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|e| invalid(url, &e))
        };
        let found = match (server.username(), server.password()) {
            (Some(user), Some(password)) => Some((decode(user)?, Some(decode(password)?))),
            (Some(token), None) => Some((decode(token)?, None)),
            (None, _) => None,
        };
        if servers.is_empty() {
            credentials = found;
        } else if found.is_some() && found != credentials {
            return Err(invalid(
                url,
                &"every URL of the list must carry the same credentials",
            ));
        }
        servers.push(server);
    }
    if servers.is_empty() {
        return Err(LogError::Misconfigured("no NATS URL given".into()));
    }
    let options = match credentials {
        Some((user, Some(password))) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        Some((token, None)) => async_nats::ConnectOptions::with_token(token),
        None => async_nats::ConnectOptions::new(),
    };
    let readable = |path: &std::path::Path| {
        std::fs::metadata(path)
            .map_err(|e| LogError::Misconfigured(format!("NATS TLS file {}: {e}", path.display())))
    };
    let mut options = options;
    if let Some(ca) = &tls.ca {
        readable(ca)?;
        options = options.add_root_certificates(ca.clone());
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            readable(cert)?;
            readable(key)?;
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        (None, None) => {}
        _ => {
            return Err(LogError::Misconfigured(
                "a NATS client certificate needs its key, and the key its certificate".into(),
            ));
        }
    }
    // A tls:// URL, or any TLS setting, means TLS or nothing: never plain text instead.
    let wants_tls =
        servers.iter().any(|s| s.tls_required()) || tls.ca.is_some() || tls.cert.is_some();
    Ok((servers, options.require_tls(wants_tls)))
}
