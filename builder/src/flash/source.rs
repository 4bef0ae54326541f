//! The image to flash and its block map: which byte ranges to write and the sha256 each must
//! have. Everything here reads; nothing touches the target.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bytesize::ByteSize;

use crate::writers::bmap::Bmap;

/// Where the block map comes from.
#[derive(Debug, Clone)]
pub enum BmapChoice {
    /// `IMAGE.bmap`, else the image's name with its extensions stripped one by one and
    /// `.bmap` added (`edge-pi.img` -> `edge-pi.bmap`), as `bmaptool copy` looks for it.
    Auto,
    File(PathBuf),
    /// Write every byte of the image.
    Off,
}

/// One byte range of the image to copy, with the sha256 its bytes must have when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub bytes: Range<u64>,
    pub sha256: Option<[u8; 32]>,
}

#[derive(Debug)]
pub struct Source {
    pub image: PathBuf,
    pub size: u64,
    /// The bmap in use and where it was read from.
    pub bmap: Option<(PathBuf, Bmap)>,
    /// With [`BmapChoice::Auto`] and no bmap found: the names looked for, for the warning.
    pub bmap_not_found: Vec<PathBuf>,
}

impl Source {
    pub fn open(image: &Path, choice: &BmapChoice) -> Result<Source> {
        let meta = std::fs::metadata(image).with_context(|| {
            format!(
                "cannot read the image {}; give the .img file `edgeimg build` wrote (images/<name>/<name>.img)",
                image.display()
            )
        })?;
        if !meta.is_file() {
            bail!("the image {} is not a regular file", image.display());
        }
        if meta.len() == 0 {
            bail!("the image {} is empty; rebuild it", image.display());
        }
        refuse_compressed(image)?;
        let mut source = Source {
            image: image.to_path_buf(),
            size: meta.len(),
            bmap: None,
            bmap_not_found: Vec::new(),
        };
        let path = match choice {
            BmapChoice::Off => return Ok(source),
            BmapChoice::File(p) => p.clone(),
            BmapChoice::Auto => {
                let candidates = bmap_candidates(image);
                match candidates.iter().find(|p| p.is_file()) {
                    Some(p) => p.clone(),
                    None => {
                        source.bmap_not_found = candidates;
                        return Ok(source);
                    }
                }
            }
        };
        let bmap = Bmap::read(&path)?;
        if bmap.image_size != source.size {
            bail!(
                "{} is {} bytes but the bmap {} describes an image of {} bytes: it belongs to another image; rebuild, pass --bmap with the right file, or --no-bmap to write every byte",
                image.display(),
                source.size,
                path.display(),
                bmap.image_size
            );
        }
        source.bmap = Some((path, bmap));
        Ok(source)
    }

    /// What to write: the bmap's ranges, or the whole image as one piece.
    pub fn pieces(&self) -> Vec<Piece> {
        match &self.bmap {
            Some((_, bmap)) => bmap
                .ranges
                .iter()
                .map(|r| Piece {
                    bytes: bmap.byte_range(r),
                    sha256: r.sha256,
                })
                .collect(),
            None => vec![Piece {
                bytes: 0..self.size,
                sha256: None,
            }],
        }
    }

    pub fn mapped_bytes(&self) -> u64 {
        self.pieces()
            .iter()
            .map(|p| p.bytes.end - p.bytes.start)
            .sum()
    }

    /// One line for the user: the image, its size and how much of it will be written.
    pub fn summary(&self) -> String {
        match &self.bmap {
            Some(_) => format!(
                "{} ({}, {} mapped by its bmap)",
                self.image.display(),
                ByteSize(self.size),
                ByteSize(self.mapped_bytes())
            ),
            None => format!("{} ({})", self.image.display(), ByteSize(self.size)),
        }
    }
}

pub fn bmap_candidates(image: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stem = image.to_path_buf();
    loop {
        let mut name = stem.clone().into_os_string();
        name.push(".bmap");
        out.push(PathBuf::from(name));
        if stem.extension().is_none() {
            return out;
        }
        stem.set_extension("");
    }
}

/// Writing a compressed file to a card gives a card that does not boot and no error.
fn refuse_compressed(image: &Path) -> Result<()> {
    let mut magic = [0u8; 6];
    let n = File::open(image)
        .and_then(|mut f| f.read(&mut magic))
        .with_context(|| format!("cannot read {}", image.display()))?;
    let kind = match &magic[..n] {
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(("xz", "xz -dk")),
        [0x1f, 0x8b, ..] => Some(("gzip", "gunzip -k")),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(("zstd", "zstd -d")),
        _ => None,
    };
    if let Some((kind, cmd)) = kind {
        bail!(
            "{} is {kind}-compressed, not a disk image; decompress it first ({cmd} {})",
            image.display(),
            image.display()
        );
    }
    Ok(())
}
