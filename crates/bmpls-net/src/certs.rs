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
        // No BasicConstraints at all: `cA FALSE` is its default, and DER forbids encoding a
        // default (rcgen's `ExplicitNoCa` does), which strict parsers in other TLS stacks refuse.
        params.is_ca = IsCa::NoCa;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The BasicConstraints of a PEM certificate, as raw DER (the extension's OCTET STRING
    /// content), if it has one.
    fn basic_constraints(pem: &str) -> Option<Vec<u8>> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
        let (rest, cert) = x509_parser::parse_x509_certificate(&pem.contents).expect("X.509");
        assert!(rest.is_empty(), "trailing bytes after the certificate");
        cert.extensions()
            .iter()
            .find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_BASIC_CONSTRAINTS)
            .map(|e| e.value.to_vec())
    }

    /// Reads one DER TLV (short or long definite length) and returns (tag, content, rest).
    fn tlv(bytes: &[u8]) -> (u8, &[u8], &[u8]) {
        let (&tag, bytes) = bytes.split_first().expect("a tag");
        let (&first, mut bytes) = bytes.split_first().expect("a length");
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            assert!((1..=2).contains(&count), "length of {count} bytes");
            let (len, rest) = bytes.split_at(count);
            bytes = rest;
            let len = len.iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b));
            assert!(len >= 0x80, "DER: a long form for a short length");
            len
        };
        let (content, rest) = bytes.split_at(len);
        (tag, content, rest)
    }

    /// Checks BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLen INTEGER
    /// OPTIONAL } by the DER rules; returns whether it says cA TRUE.
    fn check_der_basic_constraints(value: &[u8]) -> bool {
        let (tag, mut content, rest) = tlv(value);
        assert_eq!(tag, 0x30, "a SEQUENCE");
        assert!(rest.is_empty(), "trailing bytes after the SEQUENCE");
        let mut ca = false;
        if content.first() == Some(&0x01) {
            let (_, boolean, after) = tlv(content);
            assert_eq!(
                boolean,
                [0xff],
                "DER: cA FALSE is the default and must be omitted"
            );
            ca = true;
            content = after;
        }
        if !content.is_empty() {
            let (tag, _, after) = tlv(content);
            assert_eq!(tag, 0x02, "pathLenConstraint is an INTEGER");
            assert!(after.is_empty(), "nothing after pathLenConstraint");
        }
        ca
    }

    #[test]
    fn certificates_encode_basic_constraints_by_the_der_rules() {
        let ca = Ca::generate("bmpls-test").expect("CA");
        let ca_constraints = basic_constraints(&ca.pem().cert).expect("a CA says it is one");
        assert!(
            check_der_basic_constraints(&ca_constraints),
            "the CA says cA TRUE"
        );
        let pair = ca
            .issue_validator("node1", &ValidatorId([9; 32]))
            .expect("validator certificate");
        if let Some(value) = basic_constraints(&pair.cert) {
            assert!(!check_der_basic_constraints(&value), "a validator is no CA");
        }
    }
}
