//! Route groups, one file per group of URLs: the JSON API (and its
//! liveness challenge), the public and dashboard pages, the profile pages,
//! the staff pages and the staff audit trail. The shared pieces live one
//! level up: extractors in `web/extract.rs`, page rendering in
//! `web/render.rs`, multipart reading in `web/upload.rs`.

pub mod admin;
pub mod api;
pub mod audit;
pub mod liveness;
pub mod oidc;
pub mod oidc_api;
pub mod oidc_pages;
pub mod pages;
pub mod profile;
