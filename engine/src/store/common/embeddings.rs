//! Checks shared by both stores' embedding writes.

use crate::error::{Error, Result};
use crate::store::StoredEmbedding;

/// Checks each row's shape: a positive `dim` and a `vectors` length that is
/// a multiple of `dim * 4`.
pub(in crate::store) fn check_embeddings(rows: &[StoredEmbedding]) -> Result<()> {
    for (i, r) in rows.iter().enumerate() {
        let Some(stride) = usize::try_from(r.dim)
            .ok()
            .filter(|&d| d > 0)
            .map(|d| d * 4)
        else {
            let message = format!("must be positive, not {}", r.dim);
            return Err(Error::invalid(format!("rows[{i}].dim"), message));
        };
        if !r.vectors.len().is_multiple_of(stride) {
            let message = format!(
                "length {} is not a multiple of dim * 4 = {stride}",
                r.vectors.len()
            );
            return Err(Error::invalid(format!("rows[{i}].vectors"), message));
        }
    }
    Ok(())
}
