//! TLS for both transports: the HTTP client (reqwest + rustls) and the `wss://` connector
//! (tokio-tungstenite + rustls), verified by default against the web PKI roots plus an
//! optional CA file.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_tungstenite::Connector;

use crate::config::TlsConfig;
use crate::error::ClientError;

fn read_ca(tls: &TlsConfig) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let Some(path) = &tls.ca_file else {
        return Ok(Vec::new());
    };
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ClientError::Config(format!("tls.ca_file {}: {e}", path.display())))?
        .collect();
    let certs =
        certs.map_err(|e| ClientError::Config(format!("tls.ca_file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ClientError::Config(format!(
            "tls.ca_file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The HTTP client: no redirects (a 302 from `/api/versions` means "no JSON-RPC"),
/// rustls, the CA file added to the roots.
pub(crate) fn http_client(
    tls: &TlsConfig,
    connect: Duration,
) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .user_agent(concat!("ktd/", env!("CARGO_PKG_VERSION")))
        .use_rustls_tls();
    for cert in read_ca(tls)? {
        let cert = reqwest::Certificate::from_der(cert.as_ref())
            .map_err(|e| ClientError::Config(format!("tls.ca_file: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    if !tls.verify {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))
}

/// The `wss://` connector.
pub(crate) fn ws_connector(tls: &TlsConfig) -> Result<Connector, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?;
    let config = if tls.verify {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in read_ca(tls)? {
            roots
                .add(cert)
                .map_err(|e| ClientError::Config(format!("tls.ca_file: {e}")))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    };
    Ok(Connector::Rustls(Arc::new(config)))
}

/// `tls.verify: false`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let tls = TlsConfig {
            verify: true,
            ca_file: Some(path),
        };
        let e = http_client(&tls, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        assert!(ws_connector(&tls).is_err());
        let missing = TlsConfig {
            verify: true,
            ca_file: Some(dir.path().join("missing.pem")),
        };
        assert!(matches!(
            http_client(&missing, Duration::from_secs(1)),
            Err(ClientError::Config(_))
        ));
    }

    #[test]
    fn connectors_build_with_and_without_verification() {
        assert!(ws_connector(&TlsConfig::default()).is_ok());
        let off = TlsConfig {
            verify: false,
            ca_file: None,
        };
        assert!(ws_connector(&off).is_ok());
        assert!(http_client(&off, Duration::from_secs(1)).is_ok());
    }
}
