//! The kernel stage: turn the packaged kernel into what QEMU and firmware boot, and cut the
//! packaged modules down to the ones the image needs (chosen from the board's device trees,
//! [`select`], and what the board and recipe name), decompressed, with `modules.*` to match.
//! [`prepare_kernel`] does both for a plan's installed kernel package.

mod closure;
pub mod devicetree;
pub mod drivers;
mod index_files;
mod moddep;
mod modules;
mod prepare;
pub mod select;
mod unwrap;

pub use index_files::index_files;
pub use moddep::ModuleName;
pub use modules::{Loaded, Module, ModuleError, ModuleSet};
pub use prepare::{prepare_kernel, BootKernel};
pub use unwrap::{packaged_gzip, unwrap_kernel, KernelFormat};

#[cfg(test)]
pub(crate) mod testdata;
#[cfg(test)]
mod tests;
