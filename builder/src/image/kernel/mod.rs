//! The kernel stage: turn the packaged kernel into what QEMU and firmware boot, and cut the
//! packaged modules down to the ones the image needs, decompressed, with `modules.*` to match.
//! [`prepare_kernel`] does both for a plan's installed kernel package.

mod moddep;
mod modules;
mod prepare;
mod unwrap;

pub use moddep::ModuleName;
pub use modules::{ModuleError, ModuleSet};
pub use prepare::{prepare_kernel, BootKernel};
pub use unwrap::{unwrap_kernel, KernelFormat};

#[cfg(test)]
pub(crate) mod testdata;
#[cfg(test)]
mod tests;
