//! Identifiers and units: newtypes so that a height is never passed as a sequence number.

use borsh::{BorshDeserialize, BorshSerialize};

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; $len]);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl std::fmt::Display for $name {
            /// The first eight bytes in hex, enough to tell values apart in logs.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                for byte in self.0.iter().take(8) {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    };
}

byte_id!(
    /// A patient's pseudonym: 16 random bytes, unrelated to any real-world identity.
    PatientId, 16
);
byte_id!(
    /// A carer's identifier: 16 random bytes chosen at enrolment, like [`PatientId`]. Not the
    /// carer's public key, so that grants and audit entries keep naming the same carer when its
    /// identity key is replaced, and so that the identifier says nothing about the key.
    CarerId, 16
);
byte_id!(
    /// A validator's identifier: its Ed25519 consensus public key. Self-certifying (a signature
    /// names the key that checks it) and independent of the order of the validator set, so a
    /// certificate means the same thing to every reader of any copy of the genesis file.
    ValidatorId, 32
);
byte_id!(
    /// An Ed25519 public (verifying) key.
    PublicKeyBytes, 32
);
byte_id!(
    /// An X25519 public key, to which grant keys are wrapped with HPKE.
    AgreementKey, 32
);
byte_id!(
    /// A SHA-256 digest: a Merkle root or any other digest without a more specific name.
    Hash32, 32
);
byte_id!(
    /// The hash of a block's header (what validators vote for and the next block links to).
    BlockHash, 32
);
byte_id!(
    /// The hash of a transaction's canonical encoding (its identity on the chain).
    TxHash, 32
);
byte_id!(
    /// An Ed25519 signature.
    SignatureBytes, 64
);

impl SignatureBytes {
    /// The all-zero placeholder of a value not yet signed.
    pub const UNSIGNED: Self = Self([0; 64]);
}

impl ValidatorId {
    /// The key that checks this validator's signatures (the identifier itself).
    pub fn public_key(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.0)
    }
}

impl BlockHash {
    /// The all-zero hash: the `prev_hash` of the first block.
    pub const ZERO: Self = Self([0; 32]);
}

macro_rules! number {
    ($(#[$doc:meta])* $name:ident, $ty:ty) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize,
            BorshDeserialize,
        )]
        pub struct $name(pub $ty);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

number!(
    /// Height of a block in the chain; the first block is height 1.
    Height, u64
);
number!(
    /// Consensus round within a height.
    Round, u32
);
number!(
    /// A patient's record sequence number: consecutive from 1, so a missing record is a gap.
    Seq, u64
);
number!(
    /// Key epoch (one UTC day by default).
    Epoch, u32
);
number!(
    /// Precision level, 0 being the finest.
    LevelIndex, u8
);
number!(
    /// An order-preserving ciphertext (randomised mode): compared as an integer by nodes.
    OpeCiphertext, u128
);
