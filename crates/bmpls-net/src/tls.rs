//! The consortium's trust and the TLS configurations built on it.
//!
//! A validator's certificate is signed by the consortium CA and names the validator's Ed25519
//! key as a DNS name ([`validator_dns_name`]); that is what binds a TLS peer to a member of the
//! genesis set. The TLS key itself is a separate key: the consensus key never signs anything
//! but consensus messages.
//!
//! | link | server checks | client checks |
//! | --- | --- | --- |
//! | validator → validator | the peer's certificate chains to the CA and names a genesis validator | the same, and that it names the validator dialled |
//! | client → validator | nothing in TLS (every request is signed instead) | the certificate chains to the pinned CA and names a genesis validator |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use bmpls_types::{ChainId, ValidatorId};

use crate::limits::{ALPN, IDLE_TIMEOUT, KEEP_ALIVE, MAX_CLIENT_STREAMS, MAX_PEER_STREAMS};

/// TLS material that cannot be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file is missing, unreadable or not the PEM expected.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The material loaded but rustls or quinn refused it.
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn config_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

/// The crypto provider of every bmpls endpoint: rustls's ring provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The DNS name a validator's certificate carries: its key in hex, in two labels (a DNS label
/// holds at most 63 characters), under `validator.bmpls`.
pub fn validator_dns_name(id: &ValidatorId) -> String {
    let hex = hex::encode(id.0);
    format!("{}.{}.validator.bmpls", &hex[..32], &hex[32..])
}

fn server_name(id: &ValidatorId) -> ServerName<'static> {
    ServerName::try_from(validator_dns_name(id)).expect("hex labels form a valid DNS name")
}

/// A certificate chain and its private key: what an endpoint presents.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = read_certs(cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
            path: key.to_path_buf(),
            reason: format!("no PEM private key: {e}"),
        })?;
        Ok(Self { chain, key })
    }

    /// From PEM text (tests and the in-process demo keep certificates in memory).
    pub fn from_pem(cert: &str, key: &str) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(config_error)?;
        if chain.is_empty() {
            return Err(TlsError::Config("no certificate in PEM text".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(config_error)?;
        Ok(Self { chain, key })
    }

    /// The stateless-reset key of an endpoint presenting this identity, for `purpose`: the
    /// same after a restart (see [`crate::udp::ResetKey`]).
    pub(crate) fn reset_key(&self, purpose: &str) -> crate::udp::ResetKey {
        crate::udp::ResetKey::derive(self.key.secret_der(), purpose)
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error("no PEM certificate in the file".into()));
    }
    Ok(chain)
}

/// What an endpoint trusts: the consortium CA, and the validators of the genesis set.
#[derive(Clone, Debug)]
pub struct Trust {
    roots: Arc<RootCertStore>,
    chain: ChainId,
    members: Arc<Vec<(ValidatorId, ServerName<'static>)>>,
}

impl Trust {
    /// The CA certificate(s) in the PEM file at `ca`, and the chain's genesis validators.
    pub fn load(ca: &Path, chain: &ChainId, validators: &[ValidatorId]) -> Result<Self, TlsError> {
        Self::new(read_certs(ca)?, chain, validators)
    }

    /// From PEM text of the CA certificate.
    pub fn from_pem(
        ca: &str,
        chain: &ChainId,
        validators: &[ValidatorId],
    ) -> Result<Self, TlsError> {
        let certs = CertificateDer::pem_slice_iter(ca.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(config_error)?;
        Self::new(certs, chain, validators)
    }

    /// The chain whose validators these are: every signed request names it.
    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    fn new(
        cas: Vec<CertificateDer<'static>>,
        chain: &ChainId,
        validators: &[ValidatorId],
    ) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in cas {
            roots.add(ca).map_err(config_error)?;
        }
        if roots.is_empty() {
            return Err(TlsError::Config("no CA certificate".into()));
        }
        let members = validators.iter().map(|v| (*v, server_name(v))).collect();
        Ok(Self {
            roots: Arc::new(roots),
            chain: chain.clone(),
            members: Arc::new(members),
        })
    }

    /// The genesis validator a certificate names, if any. Checks the name only: the chain is
    /// verified by rustls during the handshake.
    pub fn member(&self, cert: &CertificateDer<'_>) -> Option<ValidatorId> {
        let cert = webpki::EndEntityCert::try_from(cert).ok()?;
        self.members
            .iter()
            .find(|(_, name)| cert.verify_is_valid_for_subject_name(name).is_ok())
            .map(|(id, _)| *id)
    }

    /// A trust limited to one validator: a dialler accepts only the peer it meant to reach.
    fn only(&self, id: &ValidatorId) -> Self {
        Self {
            roots: self.roots.clone(),
            chain: self.chain.clone(),
            members: Arc::new(vec![(*id, server_name(id))]),
        }
    }
}

/// The genesis validator at the other end of an established connection, from its certificate.
pub fn peer_member(connection: &quinn::Connection, trust: &Trust) -> Option<ValidatorId> {
    let identity = connection.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    trust.member(chain.first()?)
}

/// Checks a server's certificate against the CA and the genesis set, whatever name was dialled.
#[derive(Debug)]
struct MemberServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    trust: Trust,
}

impl ServerCertVerifier for MemberServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let member = self
            .trust
            .member(end_entity)
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))?;
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            &server_name(&member),
            ocsp_response,
            now,
        )
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

/// Checks a validator's client certificate: signed by the CA, and naming a genesis validator.
#[derive(Debug)]
struct MemberClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust: Trust,
}

impl ClientCertVerifier for MemberClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.trust.member(end_entity).is_none() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(verified)
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

fn transport(max_bidi: u32, max_uni: u32) -> Arc<quinn::TransportConfig> {
    Arc::new(transport_parts(max_bidi, max_uni))
}

fn transport_parts(max_bidi: u32, max_uni: u32) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(IDLE_TIMEOUT).expect("idle timeout fits a VarInt"),
        ))
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_concurrent_bidi_streams(max_bidi.into())
        .max_concurrent_uni_streams(max_uni.into());
    transport
}

fn server_verifier(trust: &Trust) -> Result<Arc<MemberServerVerifier>, TlsError> {
    let inner = WebPkiServerVerifier::builder_with_provider(trust.roots.clone(), provider())
        .build()
        .map_err(config_error)?;
    Ok(Arc::new(MemberServerVerifier {
        inner,
        trust: trust.clone(),
    }))
}

fn tls13_server()
-> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier>, TlsError> {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)
}

fn tls13_client()
-> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, TlsError> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)
}

fn quic_server(
    mut tls: rustls::ServerConfig,
    max_bidi: u32,
    max_uni: u32,
) -> Result<quinn::ServerConfig, TlsError> {
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // No 0-RTT, ever: early data can be replayed, and every bmpls request either changes state
    // (a submission) or is signed with a nonce that a replay would burn. (rustls's default;
    // said here so that nobody turns it on for a faster reconnect.)
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls).map_err(config_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(max_bidi, max_uni));
    Ok(config)
}

fn quic_client(mut tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, TlsError> {
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // No 0-RTT (see `quic_server`); `Client` never calls `into_0rtt` either.
    tls.enable_early_data = false;
    let crypto = QuicClientConfig::try_from(tls).map_err(config_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(0, MAX_PEER_STREAMS));
    Ok(config)
}

/// The listening side of validator ↔ validator links: mutual TLS, genesis members only.
pub fn peer_server(identity: &Identity, trust: &Trust) -> Result<quinn::ServerConfig, TlsError> {
    let inner = WebPkiClientVerifier::builder_with_provider(trust.roots.clone(), provider())
        .build()
        .map_err(config_error)?;
    let verifier = Arc::new(MemberClientVerifier {
        inner,
        trust: trust.clone(),
    });
    let tls = tls13_server()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(config_error)?;
    quic_server(tls, 0, MAX_PEER_STREAMS)
}

/// The dialling side of a link to validator `peer`: presents `identity`, accepts only `peer`.
pub fn peer_client(
    identity: &Identity,
    trust: &Trust,
    peer: &ValidatorId,
) -> Result<quinn::ClientConfig, TlsError> {
    let tls = tls13_client()?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier(&trust.only(peer))?)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(config_error)?;
    quic_client(tls)
}

/// The listening side for clients (reporters and carers): server-authenticated only.
pub fn client_server(identity: &Identity) -> Result<quinn::ServerConfig, TlsError> {
    let tls = tls13_server()?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(config_error)?;
    let mut config = quic_server(tls, MAX_CLIENT_STREAMS, 0)?;
    // No path MTU discovery towards clients either: its probes wake a phone's radio for
    // nothing it asked (see `client`).
    let mut transport = transport_parts(MAX_CLIENT_STREAMS, 0);
    transport.mtu_discovery_config(None);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A client's configuration: the CA pinned, any genesis validator accepted.
pub fn client(trust: &Trust) -> Result<quinn::ClientConfig, TlsError> {
    let tls = tls13_client()?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier(trust)?)
        .with_no_client_auth();
    let mut config = quic_client(tls)?;
    // No path MTU discovery: its probes (padded packets of up to 1,452 bytes after every
    // handshake) cost a phone that wakes for one fix more than they could save, since a
    // request of a batch of records fits a few 1,200-byte packets anyway (`bmpls bench phone`:
    // 9.1 KB sent per one-fix wake-up with them, 3.6 KB without). Validators' links keep it.
    let mut transport = transport_parts(0, MAX_PEER_STREAMS);
    transport.mtu_discovery_config(None);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The name a client dials: any valid DNS name, since the verifier matches the certificate
/// against every genesis validator.
pub const CLIENT_SERVER_NAME: &str = "validator.bmpls";
