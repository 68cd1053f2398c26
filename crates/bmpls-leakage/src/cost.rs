//! What each layout costs in bytes: a stored record and a carer's answer per record, measured
//! on the real encodings (`LocationRecord`, `RecordView`, `Cell`): a level the layout puts
//! under ORE counts its `Cell::Ore` from the ORE record, an OPE level its `Cell::Ope`.

use bmpls_grid::LevelIndex;
use bmpls_types::{Canonical, Cell};

use crate::observe::{Layout, Scheme, Sealed};

fn cell_len(cell: &Cell) -> usize {
    borsh::object_length(cell).unwrap_or(0)
}

/// Bytes of each level of `sealed` under `layout`, finest first.
pub fn level_bytes(sealed: &Sealed, layout: &Layout) -> Vec<usize> {
    sealed
        .record
        .cells
        .iter()
        .enumerate()
        .map(|(i, ope)| {
            let ore = sealed.ore.as_ref().and_then(|r| r.cells.get(i));
            match (layout.scheme(i), ore) {
                (Scheme::Ore, Some(cell @ Cell::Ore(_))) => cell_len(cell),
                _ => cell_len(ope),
            }
        })
        .collect()
}

/// Bytes of the stored record under `layout`.
pub fn record_bytes(sealed: &Sealed, layout: &Layout) -> usize {
    let ope: usize = sealed.record.cells.iter().map(cell_len).sum();
    let levels: usize = level_bytes(sealed, layout).iter().sum();
    sealed.record.encoded_len() - ope + levels
}

/// Bytes of the record as an answer at `level` carries it (that level and the coarser ones,
/// one hash for the rest) under `layout`.
pub fn view_bytes(sealed: &Sealed, layout: &Layout, level: LevelIndex) -> usize {
    let view = sealed.record.view(bmpls_types::LevelIndex(level.0));
    let encoded = borsh::object_length(&view).unwrap_or(0);
    let first = usize::from(level.0);
    let ope: usize = view.cells.iter().map(cell_len).sum();
    let carried = level_bytes(sealed, layout);
    let carried = carried.get(first..).unwrap_or(&[]);
    encoded - ope + carried.iter().sum::<usize>()
}
