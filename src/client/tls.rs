//! TLS for the CLI: one rustls configuration (the ring provider; Mozilla's root certificates,
//! plus a private CA from `--ca-cert` / `SWITCHYARD_CA_CERT`) shared by the HTTP client
//! (`https://`) and the WebSocket client (`wss://`), so every command reaches a switchyard
//! behind an HTTPS proxy, and one behind a company's own CA, the same way.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Makes ring the process's default rustls provider, once. reqwest is built with
/// `rustls-no-provider` (its `rustls` feature would compile aws-lc-sys), so any reqwest
/// client built without a preconfigured TLS config (the tests', the load tools') needs a
/// process default, or reqwest panics when building it. Called by `cli::run` and
/// `Application::build`; harmless when a provider is installed already.
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The client configuration: the webpki roots, and every certificate in `ca_cert` (PEM) when
/// given. A file that holds no certificate is an error, not a silent fallback to the public
/// roots.
pub fn client_config(ca_cert: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("cannot read --ca-cert {}: {e}", path.display()))?;
        if certs.is_empty() {
            anyhow::bail!(
                "--ca-cert {} holds no PEM certificate (BEGIN CERTIFICATE)",
                path.display()
            );
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                anyhow::anyhow!("--ca-cert {}: unusable certificate: {e}", path.display())
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_private_ca_the_public_roots_are_trusted() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let error = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!("no-cert-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = client_config(Some(&path)).unwrap_err();
        std::fs::remove_file(&path).ok();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }
}
