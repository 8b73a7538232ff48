//! The sealing layer: [`SealingStore`] puts any backend
//! ([`crate::store::backend::Backend`]) behind the
//! [`crate::store::Store`] the services use. Biometric data (template
//! embeddings, their photos, kept probes) is sealed with the [`crate::crypto::Vault`]'s
//! primary key before it reaches the backend and opened when it comes
//! back; everything else passes through untouched (`forward.rs`).
//!
//! Nothing unsealed is ever used: a stored blob without a key id, that is
//! not an envelope, whose key id disagrees with its envelope, or that does
//! not open with its record's binding is refused — left out of the answer
//! (never matched, never shown), logged and audited as tampering.

mod forward;
mod layer;
pub mod legacy;
mod oidc;
mod rotation;
mod templates;
mod unlock;

pub use layer::SealingStore;
pub use unlock::{unlock, Keys};
