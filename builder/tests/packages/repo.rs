//! Build small signed Alpine-format repositories for the tests, the way abuild and
//! `apk index` do: `.apk` = gzip(signature tar) + gzip(control tar) + gzip(data tar), and
//! `APKINDEX.tar.gz` = gzip(signature tar) + gzip(DESCRIPTION + APKINDEX tar). The layout and
//! the signature streams are the offline mirror's own (`edgeimg_mirror::apk::assemble`,
//! `edgeimg_mirror::signing::signature_stream`); what is here is what a hostile package needs:
//! tar entries written verbatim, any control or data stream, any signature.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use edgeimg_mirror::apk::assemble;
use edgeimg_mirror::signing::signature_stream;
use flate2::{write::GzEncoder, Compression};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// An RSA signing key and its public half on disk (named as apk names keys).
pub struct SigningKey {
    pub name: String,
    pub pub_path: PathBuf,
    key: RsaPrivateKey,
}

impl SigningKey {
    /// A key by that name, generated on first use and kept under the cache dir (RSA key
    /// generation takes tens of seconds in a debug build).
    pub fn generate(name: &str) -> SigningKey {
        let dir = edgeimg::packages::default_cache_dir()
            .unwrap()
            .join("test-keys");
        std::fs::create_dir_all(&dir).unwrap();
        let private_path = dir.join(format!("{name}.private.pem"));
        let key = match std::fs::read_to_string(&private_path) {
            Ok(pem) => RsaPrivateKey::from_pkcs8_pem(&pem).unwrap(),
            Err(_) => {
                let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
                let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
                std::fs::write(&tmp, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
                std::fs::rename(&tmp, &private_path).unwrap();
                key
            }
        };
        let pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let pub_path = dir.join(name);
        std::fs::write(&pub_path, pem).unwrap();
        SigningKey {
            name: name.to_string(),
            pub_path,
            key,
        }
    }

    /// An abuild-style `.SIGN.RSA.<key>` stream (PKCS#1 v1.5 over SHA-1) over `signed`.
    fn sign_tar_gz(&self, signed: &[u8]) -> Vec<u8> {
        let sig = self
            .key
            .sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(signed))
            .unwrap();
        signature_stream(&format!(".SIGN.RSA.{}", self.name), &sig, 1_700_000_000).unwrap()
    }
}

/// The key the test repositories are signed with (generated once per test process).
pub fn repo_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate("edgeimg-test@example.org-00000001.rsa.pub"))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A tar stream with full control over entry names (so tests can write malicious ones).
pub struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder { out: Vec::new() }
    }

    /// Append one entry; `name` and `link` go into the header verbatim (no sanitising).
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        kind: tar::EntryType,
        name: &str,
        link: &str,
        mode: u32,
        uid: u64,
        data: &[u8],
        pax: &[(&str, &[u8])],
    ) {
        if !pax.is_empty() {
            let mut records = Vec::new();
            for (k, v) in pax {
                let body_len = k.len() + v.len() + 3; // ' ', '=', '\n'
                let mut len = body_len + body_len.to_string().len();
                if (len).to_string().len() != body_len.to_string().len() {
                    len += 1;
                }
                records.extend_from_slice(format!("{len} {k}=").as_bytes());
                records.extend_from_slice(v);
                records.push(b'\n');
            }
            self.raw(
                tar::EntryType::XHeader,
                "PaxHeader",
                "",
                0o644,
                0,
                &records,
                &[],
            );
        }
        let h = header(kind, name, link, mode, uid, data.len() as u64);
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    /// A regular file whose header claims `claimed` bytes while only `data` follows, so the
    /// archive ends early (what a truncated or hostile archive looks like).
    pub fn lying_file(&mut self, name: &str, claimed: u64, data: &[u8]) {
        let h = header(tar::EntryType::Regular, name, "", 0o644, 0, claimed);
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
    }

    /// A GNU sparse file of `size` bytes stored as its one last byte: reading it yields
    /// `size - 1` zeros first, so a tiny archive holds an arbitrarily large file.
    pub fn sparse(&mut self, name: &str, size: u64) {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(1);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(size);
        gnu.sparse[0].set_offset(size - 1);
        gnu.sparse[0].set_length(1);
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.push(b'x');
        self.out.extend(std::iter::repeat_n(0u8, 511));
    }

    /// Bytes appended as they are: whatever entries (or garbage) the caller made.
    pub fn bytes(&mut self, raw: &[u8]) {
        self.out.extend_from_slice(raw);
    }

    pub fn dir(&mut self, name: &str, mode: u32) {
        self.raw(
            tar::EntryType::Directory,
            &format!("{name}/"),
            "",
            mode,
            0,
            &[],
            &[],
        );
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        let sha = hex::encode(Sha1::digest(data));
        self.raw(
            tar::EntryType::Regular,
            name,
            "",
            mode,
            0,
            data,
            &[("APK-TOOLS.checksum.SHA1", sha.as_bytes())],
        );
    }

    pub fn symlink(&mut self, name: &str, target: &str) {
        self.raw(tar::EntryType::Symlink, name, target, 0o777, 0, &[], &[]);
    }

    /// Without the end-of-archive blocks (abuild cuts them from signature and control).
    pub fn cut(self) -> Vec<u8> {
        self.out
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

fn header(
    kind: tar::EntryType,
    name: &str,
    link: &str,
    mode: u32,
    uid: u64,
    size: u64,
) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "test names fit the ustar fields"
        );
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    if uid == 0 {
        h.set_username("root").unwrap();
        h.set_groupname("root").unwrap();
    }
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h.set_cksum();
    h
}

/// A package to put into a test repository.
pub struct TestPackage {
    /// Index fields other than `C:` and `S:` (which are computed), in index order.
    pub fields: Vec<(char, String)>,
    /// The data tar (finished).
    pub data: Vec<u8>,
    /// (`post-install`, body).
    pub scripts: Vec<(String, Vec<u8>)>,
    pub triggers: Vec<String>,
    /// Raw tar bytes put into the control stream after `.PKGINFO` and the scripts.
    pub control_extra: Vec<u8>,
    /// The data stream exactly as stored (e.g. a gzip bomb) instead of `gzip(data)`.
    pub data_gz: Option<Vec<u8>>,
}

impl TestPackage {
    pub fn field(&self, k: char) -> &str {
        self.fields
            .iter()
            .find(|(f, _)| *f == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn new(name: &str, version: &str, deps: &str, data: Vec<u8>) -> Self {
        let mut fields = vec![
            ('P', name.to_string()),
            ('V', version.to_string()),
            ('A', "x86_64".to_string()),
            ('I', data.len().to_string()),
            ('T', format!("test package {name}")),
            ('L', "MIT".to_string()),
            ('o', name.to_string()),
        ];
        if !deps.is_empty() {
            fields.push(('D', deps.to_string()));
        }
        TestPackage {
            fields,
            data,
            scripts: Vec::new(),
            triggers: Vec::new(),
            control_extra: Vec::new(),
            data_gz: None,
        }
    }

    fn pkginfo(&self, datahash: &str) -> String {
        let mut s = String::from("# Generated by abuild 3.15\n");
        let mut kv = |k: &str, v: &str| s.push_str(&format!("{k} = {v}\n"));
        for (k, v) in &self.fields {
            match k {
                'P' => kv("pkgname", v),
                'V' => kv("pkgver", v),
                'T' => kv("pkgdesc", v),
                'U' => kv("url", v),
                't' => kv("builddate", v),
                'I' => kv("size", v),
                'A' => kv("arch", v),
                'o' => kv("origin", v),
                'L' => kv("license", v),
                'c' => kv("commit", v),
                'k' => kv("provider_priority", v),
                'q' => kv("replaces_priority", v),
                'i' => kv("install_if", v),
                'D' => v.split_whitespace().for_each(|d| kv("depend", d)),
                'p' => v.split_whitespace().for_each(|d| kv("provides", d)),
                'r' => v.split_whitespace().for_each(|d| kv("replaces", d)),
                _ => {}
            }
        }
        if !self.triggers.is_empty() {
            kv("triggers", &self.triggers.join(" "));
        }
        kv("datahash", datahash);
        s
    }

    /// The .apk bytes and the index entry text for it.
    pub fn build(&self, key: &SigningKey) -> (Vec<u8>, String) {
        self.build_with_signature(|control_gz| key.sign_tar_gz(control_gz))
    }

    /// Like [`TestPackage::build`], with the signature stream `sign` makes from the control
    /// stream (empty: an unsigned package, trusted through the index checksum alone).
    pub fn build_with_signature(&self, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> (Vec<u8>, String) {
        let data_gz = self.data_gz.clone().unwrap_or_else(|| gzip(&self.data));
        let datahash = hex::encode(Sha256::digest(&data_gz));
        let mut control = TarBuilder::new();
        control.file(".PKGINFO", 0o644, self.pkginfo(&datahash).as_bytes());
        for (kind, body) in &self.scripts {
            control.file(&format!(".{kind}"), 0o755, body);
        }
        control.bytes(&self.control_extra);
        let apk = assemble(&control.cut(), data_gz, |control_gz| Ok(sign(control_gz))).unwrap();
        let checksum = format!(
            "Q1{}",
            base64::engine::general_purpose::STANDARD.encode(apk.control_sha1)
        );
        let apk = apk.bytes;
        let mut entry = format!("C:{checksum}\n");
        for (k, v) in &self.fields {
            if *k == 'A' {
                entry.push_str(&format!("A:{v}\nS:{}\n", apk.len()));
            } else if !matches!(k, 'r' | 'q') {
                entry.push_str(&format!("{k}:{v}\n"));
            }
        }
        (apk, entry)
    }
}

/// Write `<root>/v3.23/main/x86_64/` with the packages and a signed index; returns that folder.
pub fn write_repo(root: &Path, packages: &[TestPackage], key: &SigningKey) -> PathBuf {
    let dir = root.join("v3.23/main/x86_64");
    std::fs::create_dir_all(&dir).unwrap();
    let mut index = String::new();
    for p in packages {
        let (apk, entry) = p.build(key);
        std::fs::write(
            dir.join(format!("{}-{}.apk", p.field('P'), p.field('V'))),
            apk,
        )
        .unwrap();
        index.push_str(&entry);
        index.push('\n');
    }
    std::fs::write(dir.join("APKINDEX.tar.gz"), signed_index(&index, key)).unwrap();
    dir
}

pub fn signed_index(text: &str, key: &SigningKey) -> Vec<u8> {
    let mut tar = TarBuilder::new();
    tar.file("DESCRIPTION", 0o644, b"v3.23.0-edgeimg-test");
    tar.file("APKINDEX", 0o644, text.as_bytes());
    let content = gzip(&tar.finish());
    [key.sign_tar_gz(&content), content].concat()
}

/// A package from the real Alpine root: its installed-db fields, its files (contents, modes,
/// symlinks as installed), its scripts and triggers.
pub fn real_package(root: &Path, name: &str) -> TestPackage {
    let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    let block = db
        .split("\n\n")
        .find(|b| b.lines().any(|l| l == format!("P:{name}")))
        .unwrap_or_else(|| panic!("{name} is not in the Alpine root's installed db"));
    let mut fields = Vec::new();
    let mut tar = TarBuilder::new();
    let mut dir = String::new();
    let mut pending: Option<(bool, String, u32)> = None; // (is_dir, path, mode)
    let flush = |tar: &mut TarBuilder, pending: &mut Option<(bool, String, u32)>| {
        if let Some((is_dir, path, mode)) = pending.take() {
            let full = root.join(&path);
            let meta = std::fs::symlink_metadata(&full).unwrap();
            if is_dir {
                tar.dir(&path, mode);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&full).unwrap();
                tar.symlink(&path, target.to_str().unwrap());
            } else {
                let mut data = Vec::new();
                std::fs::File::open(&full)
                    .unwrap()
                    .read_to_end(&mut data)
                    .unwrap();
                tar.file(&path, mode, &data);
            }
        }
    };
    for line in block.lines() {
        let (k, v) = line.split_at(2);
        match k {
            "F:" => {
                flush(&mut tar, &mut pending);
                dir = v.to_string();
                pending = Some((true, dir.clone(), 0o755));
            }
            "R:" => {
                flush(&mut tar, &mut pending);
                pending = Some((false, format!("{dir}/{v}"), 0o644));
            }
            "M:" | "a:" => {
                let mode = u32::from_str_radix(v.rsplit(':').next().unwrap(), 8).unwrap();
                if let Some(p) = pending.as_mut() {
                    p.2 = mode;
                }
            }
            "Z:" | "C:" | "S:" => {}
            _ => fields.push((k.as_bytes()[0] as char, v.to_string())),
        }
    }
    flush(&mut tar, &mut pending);
    let version = fields.iter().find(|(k, _)| *k == 'V').unwrap().1.clone();
    let checksum = block
        .lines()
        .find_map(|l| l.strip_prefix("C:"))
        .unwrap()
        .to_string();
    TestPackage {
        fields,
        data: tar.finish(),
        scripts: real_scripts(root, &format!("{name}-{version}.")),
        triggers: real_triggers(root, &checksum),
        control_extra: Vec::new(),
        data_gz: None,
    }
}

fn real_scripts(root: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(root.join("lib/apk/db/scripts.tar.gz")).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if let Some(rest) = path.strip_prefix(prefix) {
            let kind = rest.rsplit('.').next().unwrap().to_string();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            out.push((kind, body));
        }
    }
    out
}

fn real_triggers(root: &Path, checksum: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("lib/apk/db/triggers")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix(checksum))
        .flat_map(|rest| rest.split_whitespace().map(String::from))
        .collect()
}
