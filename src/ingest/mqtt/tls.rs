//! TLS to the broker (`mqtts://`): rustls with the aws-lc-rs provider (the one the billing API
//! and the PostgreSQL store use), TLS 1.2 at least. The broker's certificate must chain to
//! `ca_file` (else the system's roots) and carry the broker's name (or `server_name`); a
//! certificate that does not verify fails the connection attempt with the reason, and the
//! session retries with its backoff: it is never downgraded to plain TCP.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rumqttc::{TlsConfiguration, Transport};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::config::{Broker, TlsSettings};

/// The rustls client configuration of `settings` (files read now: a missing or malformed file,
/// or a key readable by others, is an error naming it).
pub fn client_config(settings: &TlsSettings) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = Arc::new(
        crate::tls_roots::roots(settings.ca_file.as_deref(), "mqtt.ca_file", "mqtts://").map_err(anyhow::Error::msg)?,
    );
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS")?;
    let builder = match &settings.server_name {
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|_| anyhow::anyhow!("server_name {name:?} is not a DNS name or IP address"))?;
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .context("TLS verifier")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NamedAs { inner, name }))
        }
        None => builder.with_root_certificates(roots),
    };
    let config = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            if chain.is_empty() {
                bail!("cert_file {}: no PEM certificate in it", cert.display());
            }
            let pem = crate::secrets::read_private(key)?;
            let key_der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .with_context(|| format!("key_file {}: no PEM private key in it", key.display()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .with_context(|| format!("cert_file {} / key_file {}", cert.display(), key.display()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => bail!("cert_file and key_file go together (client certificate login)"),
    };
    Ok(Arc::new(config))
}

/// Sets the TLS transport on `options` when `broker` is `mqtts://`.
pub fn apply(options: &mut rumqttc::v5::MqttOptions, broker: &Broker, settings: &TlsSettings) -> anyhow::Result<()> {
    settings.check(broker.tls).map_err(anyhow::Error::msg)?;
    if broker.tls {
        let config = client_config(settings)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    }
    Ok(())
}

fn certificates(file: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let shown = file.display();
    CertificateDer::pem_file_iter(file)
        .with_context(|| format!("{shown}"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{shown}"))
}

/// Verifies the broker's certificate for `name` instead of the host the connection goes to
/// (`server_name`: a broker reached by address, or by another name).
#[derive(Debug)]
struct NamedAs {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
