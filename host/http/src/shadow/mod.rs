//! The shadow tee (placeholder).

/// The shadow tee.
pub struct ShadowTee;
