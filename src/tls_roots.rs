//! The CA certificates a TLS client checks its server against: the PEM file configured (one or
//! more CAs), else the system's roots (rustls-native-certs). One piece for the MQTT broker
//! (`[mqtt] ca_file`) and the PostgreSQL store (`[store] ca_file`), so both read and refuse a CA
//! file the same way.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The roots of `ca_file`, else the system's. `key` names the setting in errors
/// (`store.ca_file`); `needs` names what wanted the system's roots (`sslmode verify-full`).
pub fn roots(ca_file: Option<&Path>, key: &str, needs: &str) -> Result<RootCertStore, String> {
    match ca_file {
        Some(file) => file_roots(file, key),
        None => system_roots(key, needs),
    }
}

fn file_roots(file: &Path, key: &str) -> Result<RootCertStore, String> {
    let shown = file.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(file).map_err(|e| format!("{key} {shown}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{key} {shown}: {e}"))?;
        roots.add(cert).map_err(|e| format!("{key} {shown}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{key} {shown} holds no PEM certificate"));
    }
    Ok(roots)
}

fn system_roots(key: &str, needs: &str) -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(format!(
            "{needs}: no CA certificates on this system (install ca-certificates) and no {key}"
        ));
    }
    Ok(roots)
}
