//! HTTPS: a PEM certificate chain and key (`--tls-cert`, `--tls-key`) served with rustls,
//! TLS 1.2 and 1.3 only, and reloaded when the files change, without a restart (a renewed
//! certificate takes over for new connections; open ones keep theirs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use laurel_runtime::Shutdown;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The certificate and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the pair: the chain parses, the key parses and is the chain's leaf's.
fn load(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", files.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate",
        files.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the private key {}", files.key.display()))?;
    let certified = CertifiedKey::from_der(certs, key, &provider()).with_context(|| {
        format!(
            "{} is not the key of {}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(certified)
}

/// When the files last changed.
fn stamp(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(&files.cert)?, modified(&files.key)?))
}

/// The certificate in force, swapped when the files change.
#[derive(Debug)]
pub struct Reloading {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("tls lock").clone())
    }
}

impl Reloading {
    /// Loads the pair whose files changed since `seen`; a pair that does not load is logged
    /// and the one in force kept. Returns the stamp now seen.
    fn reload_if_changed(
        &self,
        seen: Option<(SystemTime, SystemTime)>,
    ) -> Option<(SystemTime, SystemTime)> {
        let now = stamp(&self.files);
        if now.is_none() || now == seen {
            return seen;
        }
        match load(&self.files) {
            Ok(pair) => {
                *self.current.write().expect("tls lock") = Arc::new(pair);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                now
            }
            Err(e) => {
                // Perhaps caught between writing the certificate and the key: tried again
                // at the next look, the old pair serving meanwhile.
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the new TLS certificate does not load; keeping the one in force"
                );
                seen
            }
        }
    }

    /// Looks at the files every `every` until shutdown.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: Shutdown) {
        let mut seen = stamp(&self.files);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(every) => {}
            }
            seen = self.reload_if_changed(seen);
        }
    }
}

/// The acceptor for `files` (checked now: a pair that does not load refuses to start), and
/// the reloader to run beside it.
pub fn acceptor(files: TlsFiles) -> anyhow::Result<(TlsAcceptor, Arc<Reloading>)> {
    let pair = load(&files)?;
    let reloading = Arc::new(Reloading {
        files,
        current: RwLock::new(Arc::new(pair)),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(reloading.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), reloading))
}
