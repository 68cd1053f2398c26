//! Every bound on what bmpls accepts, in one place, with the relations between them asserted at
//! compile time. Decoding checks lengths against these before allocating.

/// Precision levels per record (the key hierarchy's limit).
pub const MAX_LEVELS: usize = 16;
/// Sealed exact fix: nonce, AEAD tag and a fixed-layout plaintext of well under 200 bytes.
pub const MAX_SEALED_BYTES: usize = 256;
/// An ORE right ciphertext's canonical encoding at most (header, 16-byte nonce, per block
/// 2^block_bits trits five to a byte) for a cell of at most 52 bits (the grid's depth 26): 124
/// bytes at 50 bits in 6-bit blocks, 384 at 52 bits in 8-bit blocks.
pub const MAX_ORE_RIGHT_BYTES: usize = 384;
/// An ORE left ciphertext's canonical encoding at most (header, per block a slot byte and a
/// 16-byte key) for a cell of at most 52 bits: 157 bytes at 50 bits in 6-bit blocks, 446 at 52
/// bits in 2-bit blocks.
pub const MAX_ORE_LEFT_BYTES: usize = 448;
/// Epoch-tree nodes in a grant's cover (two per level of a 32-level tree).
pub const MAX_COVER_NODES: usize = 64;
/// Serialised grant keys at most: header, then per node its name and one key per level.
pub const MAX_GRANT_KEY_BYTES: usize = 12 + MAX_COVER_NODES * (5 + 32 * MAX_LEVELS);
/// HPKE adds the 32-byte encapsulated key and a 16-byte tag.
pub const MAX_WRAPPED_KEY_BYTES: usize = MAX_GRANT_KEY_BYTES + 32 + 16;
/// A grant's purpose text, UTF-8.
pub const MAX_PURPOSE_BYTES: usize = 200;
/// Encrypted ranges of one fence in one epoch (the grid's covering cap).
pub const MAX_FENCE_RANGES: usize = 128;
/// Epochs one `SetFence` covers (a custodian renews fences ahead of time).
pub const MAX_FENCE_EPOCHS: usize = 16;
/// Encrypted ranges of one ORE fence in one epoch: two left tokens per range (157 bytes each at
/// 50 bits in 6-bit blocks). A whole ORE fence is bounded by [`MAX_TX_BYTES`], not by
/// [`MAX_FENCE_BYTES`]: a custodian sets it for fewer epochs at a time when it would not fit.
pub const MAX_ORE_FENCE_RANGES: usize = 32;
/// Encoded size of an OPE fence's ranges at most: per epoch its number, scheme and length
/// prefix, then two 16-byte ciphertexts per range.
pub const MAX_FENCE_BYTES: usize = MAX_FENCE_EPOCHS * (4 + 1 + 4 + MAX_FENCE_RANGES * 32);
/// Transactions per block.
pub const MAX_BLOCK_TXS: usize = 10_000;
/// Validators in a consortium.
pub const MAX_VALIDATORS: usize = 128;
/// Chain identifier length.
pub const MAX_CHAIN_ID_BYTES: usize = 64;
/// Largest encoded transaction.
pub const MAX_TX_BYTES: usize = 96 * 1024;
/// Largest encoded block: header plus the largest transactions, bounded by a byte budget too.
pub const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;
/// Largest encoded block header (or precommit): chain id plus fixed-width fields.
pub const MAX_HEADER_BYTES: usize = 512;
/// Largest encoded commit certificate: every validator's 32-byte key and 64-byte signature.
pub const MAX_CERTIFICATE_BYTES: usize = 64 + MAX_VALIDATORS * (32 + 64);
/// Earliest fix time clients accept, ms since the Unix epoch: 2000-01-01T00:00:00Z. An earlier
/// time is a unit mistake (Unix seconds read as milliseconds: 1970) or a device without a clock.
/// The ledger does not apply it: a chain's clock may start anywhere (the simulator's at 1 ms).
pub const MIN_FIX_TIME_MS: u64 = 946_684_800_000;
/// How far a fix time may lie ahead of the clock, ms: one day, room for a device whose clock or
/// time zone is wrong; further ahead is a unit mistake (milliseconds read as seconds: the year
/// 58,900). Clients measure it from their clock; the ledger from the block's time, so that
/// every validator decides alike.
pub const MAX_FIX_AHEAD_MS: u64 = 86_400_000;
/// Largest encoded value of any kind (the decoder refuses longer input outright).
pub const MAX_ENCODED_BYTES: usize = MAX_BLOCK_BYTES;

const _: () = assert!(MAX_WRAPPED_KEY_BYTES + MAX_PURPOSE_BYTES + 1024 < MAX_TX_BYTES);
const _: () = assert!(MAX_FENCE_BYTES + 1024 < MAX_TX_BYTES);
const _: () =
    assert!(4 + 1 + 4 + MAX_ORE_FENCE_RANGES * 2 * (4 + MAX_ORE_LEFT_BYTES) + 1024 < MAX_TX_BYTES);
const _: () = assert!(MAX_TX_BYTES < MAX_BLOCK_BYTES);
const _: () =
    assert!(MAX_SEALED_BYTES + MAX_LEVELS * (5 + MAX_ORE_RIGHT_BYTES) + 200 < MAX_TX_BYTES);
const _: () = assert!(1 + 4 + MAX_CHAIN_ID_BYTES + 8 + 32 + 8 + 32 + 32 + 4 <= MAX_HEADER_BYTES);
const _: () = assert!(MAX_HEADER_BYTES + 4 + MAX_BLOCK_TXS < MAX_BLOCK_BYTES);
const _: () = assert!(MAX_CERTIFICATE_BYTES < MAX_ENCODED_BYTES);
