//! HTTPS settings for dropshot. The certificate and key are read and checked here, so a
//! wrong path, a non-PEM file or a key that does not match the certificate stops the
//! registry with a message instead of a panic inside dropshot.

use dropshot::ConfigTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSection;

/// The TLS configuration dropshot should serve with.
pub fn load(tls: &TlsSection) -> Result<ConfigTls, String> {
    // dropshot builds its rustls config from the process-wide provider; pin aws-lc-rs so
    // another crate enabling `ring` cannot make that choice ambiguous. Installing fails
    // only when a provider is already set, which is as good.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certs_pem = std::fs::read(&tls.certificate).map_err(|err| {
        format!(
            "reading TLS certificate {}: {err}",
            tls.certificate.display()
        )
    })?;
    let key_pem = std::fs::read(&tls.key)
        .map_err(|err| format!("reading TLS key {}: {err}", tls.key.display()))?;
    let certs = CertificateDer::pem_slice_iter(&certs_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("TLS certificate {}: {err}", tls.certificate.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {} holds no CERTIFICATE block",
            tls.certificate.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|err| format!("TLS key {}: {err}", tls.key.display()))?;
    if !matches!(key, PrivateKeyDer::Pkcs8(_)) {
        return Err(format!(
            "TLS key {} must be PKCS#8 (`-----BEGIN PRIVATE KEY-----`); convert it with `openssl pkcs8 -topk8 -nocrypt`",
            tls.key.display()
        ));
    }
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| {
            format!(
                "TLS key {} does not fit certificate {}: {err}",
                tls.key.display(),
                tls.certificate.display()
            )
        })?;
    Ok(ConfigTls::AsBytes {
        certs: certs_pem,
        key: key_pem,
    })
}
