//! End-to-end checks of the mirror: built once into a scratch directory, then read back with an
//! independent parser here and with Alpine's own apk-tools.

use base64::Engine as _;
use edgeimg_mirror::{cache, mirror, Arch};
use flate2::bufread::GzDecoder;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Builds the mirror once per test run into the target's scratch space, reusing the
/// wheel/Debian/extraction cache, which the builder fills when it is missing. nextest runs each
/// test in a process of its own: the first builds (its run's folder, older runs' wiped), the
/// others wait on the lock and read that build.
fn mirror_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let lock = fs::File::create(scratch.join("edgeimg-mirror-test.lock")).unwrap();
        lock.lock().unwrap();
        let run =
            std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| std::process::id().to_string());
        let dir = scratch.join(format!("edgeimg-mirror-test-{run}"));
        let built = dir.join(".built");
        if !built.exists() {
            for entry in fs::read_dir(&scratch).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy();
                if name.starts_with("edgeimg-mirror-test") && path.is_dir() {
                    fs::remove_dir_all(&path).unwrap();
                }
            }
            let out = run_builder(&dir);
            assert!(
                out.status.success(),
                "mirror build failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            fs::write(&built, "").unwrap();
        }
        dir
    })
}

fn run_builder(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeimg-mirror"))
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run edgeimg-mirror")
}

/// The `.apk` in `repo` whose file name starts with `prefix` (`busybox-1`).
fn package_file(repo: &Path, prefix: &str) -> PathBuf {
    fs::read_dir(repo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* package in {}", repo.display()))
}

fn public_key(dir: &Path) -> (String, RsaPublicKey) {
    let keys: Vec<PathBuf> = fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1, "exactly one public key expected: {keys:?}");
    let name = keys[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("edgeimg-mirror-") && name.ends_with(".rsa.pub"),
        "{name}"
    );
    let pem = fs::read_to_string(&keys[0]).unwrap();
    (
        name,
        RsaPublicKey::from_public_key_pem(&pem).expect("public key is SubjectPublicKeyInfo PEM"),
    )
}

/// Splits concatenated gzip members: (compressed bytes, decompressed bytes) for each.
fn gzip_members(mut bytes: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut members = Vec::new();
    while !bytes.is_empty() {
        let start = bytes;
        let mut out = Vec::new();
        let mut decoder = GzDecoder::new(&mut bytes);
        decoder.read_to_end(&mut out).expect("valid gzip member");
        drop(decoder);
        let used = start.len() - bytes.len();
        members.push((&start[..used], out));
    }
    members
}

fn tar_files(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut files = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.push((name, data));
    }
    files
}

/// Checks the signature member over the member after it; returns that member's tar files.
fn verify_signed(bytes: &[u8], key_name: &str, key: &RsaPublicKey) -> Vec<(String, Vec<u8>)> {
    let members = gzip_members(bytes);
    let signature = tar_files(&members[0].1);
    assert_eq!(signature.len(), 1);
    assert_eq!(signature[0].0, format!(".SIGN.RSA256.{key_name}"));
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(members[1].0),
        &signature[0].1,
    )
    .expect("signature verifies with the mirror's public key");
    tar_files(&members[1].1)
}

type IndexEntry = HashMap<char, String>;

fn read_index(arch: Arch) -> Vec<IndexEntry> {
    let dir = mirror_dir();
    let (key_name, key) = public_key(dir);
    let bytes = fs::read(mirror::repository_dir(dir, arch).join("APKINDEX.tar.gz")).unwrap();
    let files = verify_signed(&bytes, &key_name, &key);
    let index = files
        .iter()
        .find(|(n, _)| n == "APKINDEX")
        .expect("APKINDEX member");
    assert!(files.iter().any(|(n, _)| n == "DESCRIPTION"));
    String::from_utf8(index.1.clone())
        .unwrap()
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            block
                .lines()
                .map(|l| (l.chars().next().unwrap(), l[2..].to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn index_lists_core_packages_for_both_arches() {
    for arch in Arch::ALL {
        let index = read_index(arch);
        let names: Vec<&str> = index.iter().map(|e| e[&'P'].as_str()).collect();
        for wanted in [
            "busybox",
            "musl",
            "linux-virt",
            "apk-tools",
            "alpine-keys",
            "alpine-baselayout",
        ] {
            assert!(
                names.contains(&wanted),
                "{arch} index lacks {wanted}: {names:?}"
            );
        }
        assert!(index.iter().all(|e| e[&'A'] == arch.alpine()));
        let rpi = names.contains(&"linux-rpi") && names.contains(&"raspberrypi-bootloader");
        assert_eq!(
            rpi,
            arch == Arch::Aarch64,
            "Pi packages belong to aarch64 only"
        );
    }
    for entry in read_index(Arch::Aarch64) {
        if entry[&'P'] == "linux-rpi" || entry[&'P'] == "raspberrypi-bootloader" {
            assert!(
                entry[&'T'].contains("repackaged from Debian"),
                "{:?}",
                entry[&'T']
            );
        }
    }
}

#[test]
fn every_package_matches_its_index_entry_and_signature() {
    let dir = mirror_dir();
    let (key_name, key) = public_key(dir);
    for arch in Arch::ALL {
        let repo = mirror::repository_dir(dir, arch);
        for entry in read_index(arch) {
            let file = repo.join(format!("{}-{}.apk", entry[&'P'], entry[&'V']));
            let bytes = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(
                entry[&'S'],
                bytes.len().to_string(),
                "S: of {}",
                file.display()
            );
            let members = gzip_members(&bytes);
            assert_eq!(
                members.len(),
                3,
                "{} must be signature + control + data",
                file.display()
            );
            let identity = format!(
                "Q1{}",
                base64::engine::general_purpose::STANDARD.encode(Sha1::digest(members[1].0))
            );
            assert_eq!(entry[&'C'], identity, "C: of {}", file.display());
            let control = verify_signed(&bytes, &key_name, &key);
            let pkginfo = String::from_utf8(control[0].1.clone()).unwrap();
            assert_eq!(control[0].0, ".PKGINFO");
            let datahash = hex::encode(Sha256::digest(members[2].0));
            assert!(
                pkginfo.contains(&format!("\ndatahash = {datahash}\n")),
                "datahash of {}",
                file.display()
            );
            assert!(pkginfo.contains(&format!("\npkgname = {}\n", entry[&'P'])));
        }
    }
}

#[test]
fn packages_carry_alpine_files_modes_and_scripts() {
    let repo = mirror::repository_dir(mirror_dir(), Arch::X86_64);
    let busybox = package_file(&repo, "busybox-1");
    let bytes = fs::read(busybox).unwrap();
    let members = gzip_members(&bytes);
    let control: Vec<String> = tar_files(&members[1].1)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(control.contains(&".post-install".to_owned()), "{control:?}");
    let mut archive = tar::Archive::new(members[2].1.as_slice());
    let mut found = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("bin/busybox") {
            assert_eq!(entry.header().mode().unwrap(), 0o755);
            let pax = entry
                .pax_extensions()
                .unwrap()
                .expect("PAX checksum record");
            let record = pax
                .map(|r| r.unwrap())
                .find(|r| r.key() == Ok("APK-TOOLS.checksum.SHA1"))
                .unwrap();
            let recorded = record.value().unwrap().to_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert_eq!(recorded, hex::encode(Sha1::digest(&data)));
            found = true;
        }
    }
    assert!(found, "busybox package has no bin/busybox");
}

/// Runs the x86_64 or aarch64 Alpine root's own apk-tools on this host through its musl loader.
fn alpine_apk(command: &str, args: &[&str], target_root: &Path, arch: Arch) -> Output {
    let cache = cache::cache_root().unwrap();
    let host = mirror::host_root(&cache).expect("host-architecture Alpine root");
    let root = &host.dir;
    let dir = mirror_dir();
    let mut cmd = Command::new(root.join(host.arch.musl_loader()));
    cmd.arg("--library-path")
        .arg(format!(
            "{}:{}",
            root.join("lib").display(),
            root.join("usr/lib").display()
        ))
        .arg(root.join("sbin/apk"))
        .arg("--root")
        .arg(target_root)
        .arg("--keys-dir")
        .arg(dir.join("keys"))
        .arg("--repository")
        .arg(mirror::repository_root(dir))
        .args(["--arch", arch.alpine(), "--no-cache", command]);
    if command == "add" {
        cmd.arg("--initdb");
        // Scripts run chrooted, which needs root and a target-architecture CPU.
        if Some(arch) != Arch::host() || !is_root() {
            cmd.arg("--no-scripts");
        }
    }
    cmd.args(args).output().expect("run Alpine's apk")
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn alpine_apk_installs_busybox_from_the_mirror_with_signature_checks() {
    let target = tempfile::tempdir().unwrap();
    let out = alpine_apk("add", &["busybox"], target.path(), Arch::host().unwrap());
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "apk add busybox failed:\n{log}");
    assert!(!log.contains("UNTRUSTED"), "{log}");
    assert!(target.path().join("bin/busybox").is_file(), "{log}");
    let installed = fs::read_to_string(target.path().join("lib/apk/db/installed")).unwrap();
    assert!(
        installed.contains("\nP:musl\n"),
        "musl was not pulled in as a dependency"
    );
}

#[test]
fn alpine_apk_installs_every_aarch64_package_including_the_pi_ones() {
    let index = read_index(Arch::Aarch64);
    let names: Vec<&str> = index.iter().map(|e| e[&'P'].as_str()).collect();
    let target = tempfile::tempdir().unwrap();
    let out = alpine_apk("add", &names, target.path(), Arch::Aarch64);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "apk add failed:\n{log}");
    let root = target.path();
    assert!(root.join("boot/vmlinuz-rpi").is_file());
    assert!(root.join("boot/vmlinuz-virt").is_file());
    assert!(root.join("boot/start4.elf").is_file() && root.join("boot/bootcode.bin").is_file());
    assert!(root
        .join("boot/dtbs-rpi/broadcom/bcm2711-rpi-4-b.dtb")
        .is_file());
    let modules = fs::read_dir(root.join("lib/modules")).unwrap().count();
    assert_eq!(modules, 2, "linux-virt and linux-rpi module trees expected");
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        !passwd.contains("quicksand"),
        "image-local users must not leak into packages"
    );
}

#[test]
fn apk_rejects_a_tampered_package() {
    let dir = mirror_dir();
    let repo = mirror::repository_dir(dir, Arch::host().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let musl = package_file(&repo, "musl-1");
    let mut bytes = fs::read(&musl).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0xff;
    let tampered = scratch.path().join(musl.file_name().unwrap());
    fs::write(&tampered, bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let good = alpine_apk(
        "verify",
        &[musl.to_str().unwrap()],
        target.path(),
        Arch::host().unwrap(),
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    let bad = alpine_apk(
        "verify",
        &[tampered.to_str().unwrap()],
        target.path(),
        Arch::host().unwrap(),
    );
    assert!(!bad.status.success(), "apk accepted a tampered package");
}

#[test]
fn a_second_build_is_skipped_when_inputs_are_unchanged() {
    let dir = mirror_dir();
    let index = mirror::repository_dir(dir, Arch::X86_64).join("APKINDEX.tar.gz");
    let before = fs::read(&index).unwrap();
    let out = run_builder(dir);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("up to date"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(before, fs::read(&index).unwrap());
}
