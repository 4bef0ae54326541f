//! The writable ext4 data partition, made by `mke2fs` from e2fsprogs: no well-kept Rust crate
//! writes ext4, and mke2fs on a regular file needs no privileges.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use uuid::Uuid;

use super::atomic::AtomicFile;
use super::ids::derived_uuid;
use super::tool;

/// An empty ext4 file system (root directory and `lost+found`, both root:root).
#[derive(Debug, Clone)]
pub struct Ext4Options {
    /// Image size in bytes; a multiple of 4096, at least 2 MiB.
    pub size_bytes: u64,
    /// Volume label (at most 16 bytes), e.g. `edge-data`; init can mount by it.
    pub label: String,
    /// Seeds the file-system UUID and directory hash seed (e.g. the image name).
    pub seed: String,
    /// Creation and write time recorded in the superblock (the build's SOURCE_DATE_EPOCH).
    pub mtime: u64,
}

/// What was made, for the manifest and for init's fstab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Info {
    pub uuid: Uuid,
    pub label: String,
    pub size_bytes: u64,
}

/// The mke2fs profile, pinned so the result does not depend on the host's /etc/mke2fs.conf.
/// No orphan_file or metadata_csum_seed: older kernels (the Pi's 6.1) lack them.
const MKE2FS_CONF: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

pub fn write_ext4(opts: &Ext4Options, out: &Path) -> Result<Ext4Info> {
    if !opts.size_bytes.is_multiple_of(4096) || opts.size_bytes < 2 << 20 {
        bail!(
            "ext4 size {} bytes is not a multiple of 4096 of at least 2 MiB; give the data partition a size like \"64M\"",
            opts.size_bytes
        );
    }
    if opts.label.len() > 16 {
        bail!(
            "ext4 label {:?} is longer than 16 bytes; shorten it",
            opts.label
        );
    }
    let mke2fs = tool::find(&tool::MKE2FS)?;
    let uuid = derived_uuid(&opts.seed, "ext4-uuid");
    let hash_seed = derived_uuid(&opts.seed, "ext4-hash-seed");

    let mut conf = tempfile::NamedTempFile::new().context("cannot write the mke2fs profile")?;
    conf.write_all(MKE2FS_CONF.as_bytes())?;

    let mut file = AtomicFile::create(out)?;
    file.file()
        .set_len(opts.size_bytes)
        .with_context(|| format!("cannot size {}", out.display()))?;
    // e2fsprogs takes a fake time of 0 for "none" and stamps the clock instead, so a build
    // dated the epoch (no SOURCE_DATE_EPOCH) is dated one second after it here.
    let time = opts.mtime.max(1).to_string();
    tool::run(
        Command::new(mke2fs)
            .env("MKE2FS_CONFIG", conf.path())
            .env("E2FSPROGS_FAKE_TIME", &time)
            .env("SOURCE_DATE_EPOCH", &time)
            .args(["-q", "-F", "-t", "ext4", "-m", "0", "-L", &opts.label])
            .args(["-U", &uuid.to_string()])
            // lazy_itable_init + nodiscard: mke2fs neither relies on the file's holes reading
            // as zeros nor marks inode tables zeroed, so flashing only the mapped blocks
            // (bmap) onto a used card stays correct; the kernel zeroes the tables later.
            .arg("-E")
            .arg(format!(
                "hash_seed={hash_seed},root_owner=0:0,lazy_itable_init=1,nodiscard"
            ))
            .arg(file.path()),
    )?;
    file.commit()?;
    Ok(Ext4Info {
        uuid,
        label: opts.label.clone(),
        size_bytes: opts.size_bytes,
    })
}
