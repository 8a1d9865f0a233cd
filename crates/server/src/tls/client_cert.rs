//! What a request learns of a verified client certificate.

use x509_parser::extensions::GeneralName;

/// A client certificate that the TLS handshake verified against the client CA
/// (`--tls-client-ca`), put into the extensions of every request of that connection.
/// Authentication maps it to a principal; the server only delivers it.
///
/// Its presence means the certificate chained to the configured CA and was valid at the
/// handshake; it says nothing of what the holder may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The subject's common name (the first CN), if it has one that is a string.
    pub subject_cn: Option<String>,
    /// The DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
    /// The URIs of the subject alternative name extension (e.g. a SPIFFE id).
    pub uris: Vec<String>,
    /// SHA-256 of the certificate's DER encoding, lowercase hex (64 characters).
    pub sha256_fingerprint: String,
}

impl ClientCertificate {
    /// Reads a DER certificate.
    pub(crate) fn from_der(der: &[u8]) -> Result<ClientCertificate, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let subject_cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let mut dns_names = Vec::new();
        let mut uris = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => dns_names.push((*n).to_owned()),
                    GeneralName::URI(u) => uris.push((*u).to_owned()),
                    _ => {}
                }
            }
        }
        Ok(ClientCertificate {
            subject_cn,
            dns_names,
            uris,
            sha256_fingerprint: sha256_hex(der),
        })
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
