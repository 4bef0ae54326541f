//! The kernel stage: turn the packaged kernel into what QEMU and firmware boot, and cut the
//! packaged modules down to the ones the image needs, decompressed, with `modules.*` to match.

mod image;
mod moddep;
mod modules;

pub use image::{unwrap_kernel, KernelFormat};
pub use moddep::ModuleName;
pub use modules::{ModuleError, ModuleSet};

#[cfg(test)]
pub(crate) mod testdata;
#[cfg(test)]
mod tests;
