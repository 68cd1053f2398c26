//! Certificates made by a tool, never by hand: a consortium CA and one certificate per
//! validator, naming the validator's key ([`crate::tls::validator_dns_name`]). ECDSA P-256
//! keys (rcgen's default, supported by every TLS 1.3 stack).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use bmpls_types::ValidatorId;

use crate::tls::validator_dns_name;

/// Validity of generated certificates, in days.
pub const VALIDITY_DAYS: i64 = 825;

/// Certificate generation failed.
#[derive(Debug, thiserror::Error)]
#[error("certificate generation: {0}")]
pub struct CertError(String);

fn cert_error(e: impl std::fmt::Display) -> CertError {
    CertError(e.to_string())
}

/// A certificate and its private key, in PEM.
#[derive(Clone)]
pub struct PemPair {
    /// The certificate.
    pub cert: String,
    /// Its private key (secret: write it with owner-only permissions).
    pub key: String,
}

impl std::fmt::Debug for PemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPair").finish_non_exhaustive()
    }
}

/// A consortium CA able to issue validator certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
}

impl Ca {
    /// A new CA named after the chain.
    pub fn generate(chain_id: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate().map_err(cert_error)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "bmpls consortium");
        name.push(DnType::CommonName, format!("bmpls CA {chain_id}"));
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params);
        let cert = params.self_signed(&key).map_err(cert_error)?;
        Ok(Self { cert, key })
    }

    /// Reloads a CA from its PEM certificate and key, to issue more certificates (a new
    /// validator, or a rotated one).
    pub fn from_pem(cert: &str, key: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key).map_err(cert_error)?;
        let params = CertificateParams::from_ca_cert_pem(cert).map_err(cert_error)?;
        // Re-signing the same parameters with the same key gives a certificate with the same
        // subject and key identifier: what an issued certificate's issuer fields refer to.
        let cert = params.self_signed(&key).map_err(cert_error)?;
        Ok(Self { cert, key })
    }

    /// The CA's certificate and key in PEM.
    pub fn pem(&self) -> PemPair {
        PemPair {
            cert: self.cert.pem(),
            key: self.key.serialize_pem(),
        }
    }

    /// A certificate for validator `id` (common name `name`), usable both to serve and to dial.
    pub fn issue_validator(&self, name: &str, id: &ValidatorId) -> Result<PemPair, CertError> {
        let key = KeyPair::generate().map_err(cert_error)?;
        let mut params =
            CertificateParams::new(vec![validator_dns_name(id)]).map_err(cert_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "bmpls consortium");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(cert_error)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}
