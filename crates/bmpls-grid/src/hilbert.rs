//! The Hilbert curve on a `2^d × 2^d` grid: cell coordinates ↔ curve index.
//!
//! Consecutive indices are edge-adjacent cells, and the curve nests: the index of a cell at
//! depth `d` is the index of any of its descendants at depth `D` shifted right by `2(D−d)`, so
//! a coarse cell is one contiguous run of fine indices.

/// The curve index of cell `(x, y)` on the `2^depth` grid (`x, y < 2^depth`).
pub(crate) fn index_of(depth: u8, mut x: u64, mut y: u64) -> u64 {
    let n = 1u64 << depth;
    let mut index = 0u64;
    let mut s = n >> 1;
    while s > 0 {
        let rx = u64::from(x & s != 0);
        let ry = u64::from(y & s != 0);
        index += s * s * ((3 * rx) ^ ry);
        rotate(n, &mut x, &mut y, rx, ry);
        s >>= 1;
    }
    index
}

/// The cell `(x, y)` of curve index `index` on the `2^depth` grid (`index < 4^depth`).
pub(crate) fn cell_of(depth: u8, index: u64) -> (u64, u64) {
    let n = 1u64 << depth;
    let (mut x, mut y) = (0u64, 0u64);
    let mut t = index;
    let mut s = 1u64;
    while s < n {
        let rx = 1 & (t / 2);
        let ry = 1 & (t ^ rx);
        rotate(s, &mut x, &mut y, rx, ry);
        x += s * rx;
        y += s * ry;
        t /= 4;
        s <<= 1;
    }
    (x, y)
}

/// Reflects and transposes a quadrant so that every sub-curve starts and ends where its
/// neighbours need it.
fn rotate(n: u64, x: &mut u64, y: &mut u64, rx: u64, ry: u64) {
    if ry == 0 {
        if rx == 1 {
            // Both callers keep x, y < n here.
            *x = n - 1 - *x;
            *y = n - 1 - *y;
        }
        std::mem::swap(x, y);
    }
}
