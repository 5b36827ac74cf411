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

/// `urls` with the credentials they carry left out, for messages and logs.
pub fn redacted(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    format!("{}://***@{}", &url[..scheme], &url[at + 1..])
                }
                _ => url.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Logs the client's connection events as Laurel's own lines: a lost or regained connection
/// once each, the attempts in between only at `debug` (the client would say each at `info`).
pub(super) fn log_event(event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => tracing::info!("connected to NATS"),
        Event::Disconnected => tracing::warn!("lost the connection to NATS; reconnecting"),
        Event::LameDuckMode => {
            tracing::warn!(
                "the NATS server is shutting down (lame duck mode); reconnecting elsewhere"
            )
        }
        Event::SlowConsumer(sid) => tracing::warn!(sid, "NATS: slow consumer"),
        Event::ServerError(e) => tracing::warn!(error = %e, "NATS server error"),
        Event::ClientError(e) => tracing::debug!(error = %e, "NATS client error"),
        Event::Draining | Event::Closed => tracing::debug!(%event, "NATS connection"),
    }
}

/// Why `server` cannot be reached, as the operating system says it (the client's own error
/// says only "IO error").
pub(super) async fn why_unreachable(server: &async_nats::ServerAddr) -> String {
    let target = (server.host().to_string(), server.port());
    match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::net::TcpStream::connect(target),
    )
    .await
    {
        Ok(Ok(_)) => {
            "it takes TCP connections but no NATS session was made: check TLS and credentials"
                .into()
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "connecting timed out".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_left_out_of_urls_shown() {
        assert_eq!(
            redacted("nats://laurel:secret@10.0.0.5:4222, nats://tok@n2:4222,nats://n3:4222"),
            "nats://***@10.0.0.5:4222,nats://***@n2:4222,nats://n3:4222"
        );
    }
}
