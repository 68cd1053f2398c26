//! Provisioning a consortium (`bmpls certs init`): a CA, and for each validator an Ed25519
//! consensus key, a TLS certificate naming that key, and the genesis file listing them.
//!
//! Layout written under the output folder (secret files are owner-only):
//!
//! ```text
//! ca.pem  ca.key            the consortium CA (ca.key is secret: keep it offline)
//! genesis.toml              chain id, validators, voting power
//! node1/validator.key       node1's consensus key (secret)
//! node1/tls.pem  tls.key    node1's TLS certificate and key (tls.key is secret)
//! …
//! ```

use std::path::{Path, PathBuf};

use bmpls_crypto::SigningKey;
use bmpls_net::certs::Ca;
use bmpls_types::ValidatorId;

use bmpls_crypto::keyfile::{KeyFileError, read_signing_key, write_private, write_signing_key};

/// Validators a consortium may be provisioned with at once.
pub const MAX_PROVISIONED: usize = 64;

/// Provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A file could not be written or read.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A secret file could not be written or read.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// Certificate generation failed.
    #[error(transparent)]
    Cert(#[from] bmpls_net::certs::CertError),
    /// Bad arguments.
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ProvisionError + '_ {
    move |e| ProvisionError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What was written for one validator.
#[derive(Clone, Debug)]
pub struct Provisioned {
    /// Its name (`node1`…).
    pub name: String,
    /// Its consensus key.
    pub id: ValidatorId,
    /// Its folder.
    pub dir: PathBuf,
}

/// Creates `out` with a new CA, `nodes` validators named `node1`…, and `genesis.toml` for
/// chain `chain_id` starting at `genesis_time_ms`. Refuses to write into a folder that already
/// holds a CA, so existing keys are never overwritten.
pub fn init(
    out: &Path,
    nodes: usize,
    chain_id: &str,
    genesis_time_ms: u64,
) -> Result<Vec<Provisioned>, ProvisionError> {
    if nodes == 0 || nodes > MAX_PROVISIONED {
        return Err(ProvisionError::Invalid(format!(
            "--nodes must be 1 to {MAX_PROVISIONED}"
        )));
    }
    if chain_id.is_empty()
        || chain_id.len() > 64
        || !chain_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ProvisionError::Invalid(
            "the chain id must be 1 to 64 letters, digits, '-' or '_'".into(),
        ));
    }
    if out.join("ca.key").exists() {
        return Err(ProvisionError::Invalid(format!(
            "{} already holds a CA; choose an empty folder (existing keys are never overwritten)",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let ca = Ca::generate(chain_id)?;
    let ca_pem = ca.pem();
    write_public(&out.join("ca.pem"), &ca_pem.cert)?;
    write_private(&out.join("ca.key"), ca_pem.key.as_bytes())?;

    let mut provisioned = Vec::with_capacity(nodes);
    let mut genesis = format!(
        "# Genesis of chain {chain_id:?}, written by `bmpls certs init`. Every validator loads\n\
         # the same file. Consensus parameters take their defaults (see config/genesis.toml).\n\
         chain_id = {chain_id:?}\ngenesis_time_ms = {genesis_time_ms}\n"
    );
    for i in 1..=nodes {
        let name = format!("node{i}");
        let dir = out.join(&name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let id = ValidatorId(key.public().0);
        write_signing_key(&dir.join("validator.key"), &key)?;
        issue_tls(&ca, &dir, &name, &id)?;
        genesis.push_str(&format!(
            "\n[[validator]]\nname = {name:?}\nkey = \"{}\"\npower = 1\n",
            hex::encode(id.0)
        ));
        provisioned.push(Provisioned { name, id, dir });
    }
    write_public(&out.join("genesis.toml"), &genesis)?;
    Ok(provisioned)
}

/// Replaces validator `name`'s TLS certificate and key in `dir` (made by [`init`]) with new
/// ones from the same CA. The consensus key is unchanged; restart the validator to use them.
pub fn rotate_tls(dir: &Path, name: &str) -> Result<PathBuf, ProvisionError> {
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(io(&p));
    let ca = Ca::from_pem(&read(dir.join("ca.pem"))?, &read(dir.join("ca.key"))?)?;
    let node = dir.join(name);
    let id = ValidatorId(read_signing_key(&node.join("validator.key"))?.public().0);
    let fresh = node.join("rotating");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(io(&fresh))?;
    }
    std::fs::create_dir_all(&fresh).map_err(io(&fresh))?;
    issue_tls(&ca, &fresh, name, &id)?;
    for file in ["tls.pem", "tls.key"] {
        std::fs::rename(fresh.join(file), node.join(file)).map_err(io(&node.join(file)))?;
    }
    std::fs::remove_dir(&fresh).map_err(io(&fresh))?;
    Ok(node)
}

fn issue_tls(ca: &Ca, dir: &Path, name: &str, id: &ValidatorId) -> Result<(), ProvisionError> {
    let tls = ca.issue_validator(name, id)?;
    write_public(
        &dir.join("tls.pem"),
        &format!("{}{}", tls.cert, ca.pem().cert),
    )?;
    write_private(&dir.join("tls.key"), tls.key.as_bytes())?;
    Ok(())
}

fn write_public(path: &Path, text: &str) -> Result<(), ProvisionError> {
    std::fs::write(path, text).map_err(io(path))
}
