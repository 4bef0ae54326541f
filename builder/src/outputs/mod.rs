//! What a build records beside its images: the manifest, the bill of materials, the lock that
//! pins the next build, and whether an existing build can be reused.

pub mod freshness;
pub mod lock;
pub mod manifest;
pub mod sbom;
