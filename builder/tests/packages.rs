//! The packages stage against signed repositories built from real Alpine 3.23 files: a good
//! install, and every way a repository, a cache or a package can be wrong.

#[path = "packages/http.rs"]
mod http;
#[path = "packages/malicious.rs"]
mod malicious;
#[path = "packages/repo.rs"]
mod repo;

use std::path::{Path, PathBuf};

use edgeimg_test_support::alpine::AlpineRoot;
use edgeimg_test_support::mirror::mirror;
use edgeimg_test_support::Arch;

use edgeimg::packages::{self, PackageRequest, Progress, RepoSpec};
use edgeimg::rootfs::{NodeKind, RootPath, RootfsTree};
use repo::{repo_key, SigningKey, TarBuilder, TestPackage};

/// What the image's /etc/apk/repositories names for the branch repositories.
const DEVICE_MIRROR: &str = "https://dl-cdn.alpinelinux.org/alpine";

const BASE: &[&str] = &[
    "musl",
    "busybox",
    "busybox-binsh",
    "alpine-baselayout",
    "alpine-baselayout-data",
];

fn real_packages() -> Vec<TestPackage> {
    let root = AlpineRoot::get(Arch::X86_64);
    BASE.iter()
        .map(|n| repo::real_package(&root.dir, n))
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    mirror: PathBuf,
    cache: PathBuf,
    extra_keys: Vec<PathBuf>,
}

impl Fixture {
    fn new(packages: &[TestPackage], key: &SigningKey) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        repo::write_repo(&mirror, packages, key);
        Fixture {
            mirror,
            cache: dir.path().join("cache"),
            extra_keys: vec![repo_key().pub_path.clone()],
            _dir: dir,
        }
    }

    fn repo_dir(&self) -> PathBuf {
        self.mirror.join("v3.23/main/x86_64")
    }

    fn request(&self, world: &[&str]) -> PackageRequest {
        PackageRequest {
            arch: "x86_64".into(),
            repositories: vec![RepoSpec::branch(
                &self.mirror.display().to_string(),
                "v3.23",
                "main",
                DEVICE_MIRROR,
            )],
            extra_keys: self.extra_keys.clone(),
            world: world.iter().map(|s| s.to_string()).collect(),
            leave_out: Default::default(),
            cache_dir: self.cache.clone(),
        }
    }

    fn install(&self, world: &[&str]) -> anyhow::Result<(RootfsTree, packages::InstalledSet)> {
        let mut tree = RootfsTree::new(1_700_000_000);
        let set = packages::install(&self.request(world), &mut tree, &Progress::hidden())?;
        Ok((tree, set))
    }

    fn install_err(&self, world: &[&str]) -> String {
        let err = format!("{:#}", self.install(world).expect_err("install must fail"));
        eprintln!("{world:?}: {err}");
        err
    }
}

fn p(s: &str) -> RootPath {
    RootPath::new(s).unwrap()
}

fn text(tree: &RootfsTree, path: &str) -> String {
    String::from_utf8(
        tree.file_data(&p(path))
            .unwrap_or_else(|| panic!("{path} missing"))
            .to_vec(),
    )
    .unwrap()
}

#[test]
fn installs_real_busybox_musl_and_baselayout() {
    let fx = Fixture::new(&real_packages(), repo_key());
    let (tree, set) = fx
        .install(&["busybox", "musl", "alpine-baselayout"])
        .unwrap();

    let names: Vec<&str> = set.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "alpine-baselayout-data",
            "musl",
            "busybox",
            "busybox-binsh",
            "alpine-baselayout"
        ],
        "dependencies first"
    );
    let bb = set.packages.iter().find(|p| p.name == "busybox").unwrap();
    assert_eq!(
        (bb.version.as_str(), bb.license.as_str()),
        ("1.37.0-r30", "GPL-2.0-only")
    );
    assert_eq!(bb.apk_sha256.len(), 64);

    // Real binaries, root-owned, with their modes.
    let busybox = tree.get(&p("bin/busybox")).unwrap();
    assert!(matches!(&busybox.kind, NodeKind::File(d) if d.starts_with(b"\x7fELF")));
    assert_eq!(
        (busybox.meta.uid, busybox.meta.gid, busybox.meta.mode),
        (0, 0, 0o755)
    );
    assert_eq!(tree.get(&p("root")).unwrap().meta.mode, 0o700);
    assert_eq!(tree.get(&p("tmp")).unwrap().meta.mode, 0o1777);
    assert_eq!(
        tree.get(&p("lib/libc.musl-x86_64.so.1")).unwrap().kind,
        NodeKind::Symlink("ld-musl-x86_64.so.1".into())
    );
    assert!(
        tree.iter().all(|(_, n)| n.meta.uid == 0 && n.meta.gid == 0),
        "all root-owned"
    );

    // Busybox applets, as its post-install would have linked them.
    assert!(set.busybox_links > 300, "{} links", set.busybox_links);
    for applet in ["bin/ls", "usr/bin/[", "sbin/ifconfig", "usr/bin/wget"] {
        assert_eq!(
            tree.get(&p(applet)).unwrap().kind,
            NodeKind::Symlink("/bin/busybox".into()),
            "{applet}"
        );
    }

    // apk's database: the busybox entry matches the real Alpine one, file for file.
    let installed = text(&tree, "lib/apk/db/installed");
    let real_db =
        String::from_utf8(AlpineRoot::get(Arch::X86_64).read("lib/apk/db/installed")).unwrap();
    let block = |db: &str| -> Vec<String> {
        let b = db
            .split("\n\n")
            .find(|b| b.lines().any(|l| l == "P:busybox"))
            .unwrap()
            .to_string();
        b.lines()
            .filter(|l| !l.starts_with("C:") && !l.starts_with("S:"))
            .map(String::from)
            .collect()
    };
    assert_eq!(block(&installed), block(&real_db));
    assert_eq!(
        text(&tree, "etc/apk/world"),
        "alpine-baselayout\nbusybox\nmusl\n"
    );
    assert_eq!(text(&tree, "etc/apk/arch"), "x86_64\n");
    // What a device would use, not the folder the build read.
    assert_eq!(
        text(&tree, "etc/apk/repositories"),
        format!("{DEVICE_MIRROR}/v3.23/main\n")
    );
    assert!(tree.contains(&p(&format!("etc/apk/keys/{}", repo_key().name))));
    assert!(tree.contains(&p("lib/apk/db/lock")));
    assert!(text(&tree, "lib/apk/db/triggers").contains(" /bin /usr/bin /sbin /usr/sbin"));
    assert!(tree.contains(&p("lib/apk/db/scripts.tar.gz")));
    assert!(
        set.warnings.iter().any(|w| w.starts_with(
            "alpine-baselayout-3.7.2-r0: pre-install and post-install script not run"
        )),
        "{:?}",
        set.warnings
    );

    // A second build (packages now from the cache) gives the same tree, byte for byte.
    assert_eq!(
        std::fs::read_dir(fx.cache.join("apk")).unwrap().count(),
        BASE.len()
    );
    let (again, _) = fx
        .install(&["busybox", "musl", "alpine-baselayout"])
        .unwrap();
    assert!(tree.iter().eq(again.iter()), "rebuild differs");
}

/// Where the second gzip member (the signed content) of an index starts.
fn second_gzip_member(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    let mut decoder = flate2::bufread::GzDecoder::new(&mut rest);
    std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
    drop(decoder);
    bytes.len() - rest.len()
}

#[test]
fn tampered_index_is_refused_naming_it() {
    let fx = Fixture::new(&real_packages(), repo_key());
    let index = fx.repo_dir().join("APKINDEX.tar.gz");
    let good = std::fs::read(&index).unwrap();

    // One byte of the signature stream's CRC: it no longer decodes. (The signed stream is
    // checked against the signature before it is decompressed at all.)
    let mut bytes = good.clone();
    bytes[second_gzip_member(&good) - 6] ^= 0x01;
    std::fs::write(&index, &bytes).unwrap();
    let err = fx.install_err(&["busybox"]);
    assert!(
        err.contains(&index.display().to_string()) && err.contains("corrupt"),
        "{err}"
    );

    // One byte of the gzip header's timestamp: decodes fine, only the signature catches it.
    let mut bytes = good;
    let content_start = second_gzip_member(&bytes);
    bytes[content_start + 4] ^= 0x01;
    std::fs::write(&index, &bytes).unwrap();
    let err = fx.install_err(&["busybox"]);
    assert!(err.contains(&index.display().to_string()), "{err}");
    assert!(
        err.contains(&format!(
            "is signed by key \"{}\", which is not trusted; the keys tried ({} from ",
            repo_key().name,
            repo_key().name
        )) && err.contains("did not verify it"),
        "{err}"
    );
}

#[test]
fn index_signed_by_an_unknown_key_is_refused_naming_the_key() {
    let stranger = SigningKey::generate("stranger@example.org-deadbeef.rsa.pub");
    let fx = Fixture::new(&real_packages(), &stranger);
    let err = fx.install_err(&["busybox"]);
    assert!(
        err.contains("stranger@example.org-deadbeef.rsa.pub"),
        "{err}"
    );
    assert!(
        err.contains("alpine.keys = [\"path/to/key.rsa.pub\"]"),
        "{err}"
    );
}

#[test]
fn unknown_package_and_impossible_version_are_named() {
    let fx = Fixture::new(&real_packages(), repo_key());
    let err = fx.install_err(&["busybox", "nosuchpkg"]);
    assert!(err.contains("\"nosuchpkg\""), "{err}");
    let err = fx.install_err(&["busybox>=9"]);
    assert!(
        err.contains("busybox>=9") && err.contains("available versions: busybox 1.37.0-r30"),
        "{err}"
    );
}

#[test]
fn corrupt_cached_package_is_named_removed_and_refetched() {
    let fx = Fixture::new(&real_packages(), repo_key());
    fx.install(&["busybox"]).unwrap();
    let apk_dir = fx.cache.join("apk");
    let busybox_apk = largest_file(&apk_dir);
    let mut bytes = std::fs::read(&busybox_apk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&busybox_apk, bytes).unwrap();

    let err = fx.install_err(&["busybox"]);
    assert!(err.contains("busybox-1.37.0-r30"), "{err}");
    assert!(err.contains(&busybox_apk.display().to_string()), "{err}");
    assert!(err.contains("run again to fetch it afresh"), "{err}");
    assert!(!busybox_apk.exists(), "the bad file must leave the cache");
    fx.install(&["busybox"]).unwrap();
    assert!(busybox_apk.exists());
}

fn largest_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

/// Install a package "evil" alone in a repository: it must be refused, and the error must name
/// it and say each of `says`.
fn assert_refused(case: &str, evil: TestPackage, says: &[&str]) {
    let fx = Fixture::new(&[evil], repo_key());
    let err = fx.install_err(&["evil"]);
    for want in ["package evil-1.0-r0"].iter().chain(says) {
        assert!(err.contains(want), "{case}: {want:?} missing from: {err}");
    }
}

/// "evil" with a harmless data tar and `control` after its `.PKGINFO`.
fn evil_with_control(control: TarBuilder) -> TestPackage {
    let mut evil = TestPackage::new("evil", "1.0-r0", "", malicious::data_tar(|_| {}));
    evil.control_extra = control.cut();
    evil
}

/// gzip of `size` zero bytes: a few MB that unpack to `size`.
fn gzip_bomb(size: u64) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        gz.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    gz.finish().unwrap()
}

/// The malicious-archive corpus: each package is refused, and the error names the package,
/// the entry (where the archive got that far) and why.
#[test]
fn malicious_packages_are_refused_with_the_entry_named() {
    for case in malicious::cases() {
        let evil = TestPackage::new("evil", "1.0-r0", "", case.data);
        let entry = format!("{:?}", case.entry);
        assert_refused(case.name, evil, &[&entry, case.why]);
    }
}

/// Streams that unpack to more than their cap are refused before they fill the memory; the
/// data stream only after its compressed bytes matched the datahash.
#[test]
fn decompression_bombs_are_refused_naming_the_package_and_the_limit() {
    let mut evil = TestPackage::new("evil", "1.0-r0", "", Vec::new());
    evil.data_gz = Some(gzip_bomb(packages::MAX_DATA_BYTES + 1));
    let says = ["data stream: gzip stream 3", "unpacks to more than 1.0 GiB"];
    assert_refused("data bomb", evil, &says);

    let mut control = TarBuilder::new();
    control.file(".post-install", 0o755, &vec![b'#'; 17 << 20]);
    let says = ["gzip stream 2 (at byte", "unpacks to more than 16.0 MiB"];
    assert_refused("control bomb", evil_with_control(control), &says);

    // A GNU sparse entry reads as however many zeros it claims: refused, not read.
    let mut control = TarBuilder::new();
    control.sparse(".pre-install", 1 << 62);
    let says = [
        "entry \".pre-install\"",
        "GNUSparse entry where only a regular file may be",
    ];
    assert_refused("sparse script", evil_with_control(control), &says);
}

#[test]
fn a_package_file_larger_than_the_index_says_is_not_read_whole() {
    let evil = TestPackage::new("evil", "1.0-r0", "", malicious::data_tar(|_| {}));
    let fx = Fixture::new(&[evil], repo_key());
    let apk = fx.repo_dir().join("evil-1.0-r0.apk");
    let mut bytes = std::fs::read(&apk).unwrap();
    let size = bytes.len();
    bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&apk, bytes).unwrap();
    let err = fx.install_err(&["evil"]);
    assert!(
        err.contains(&format!(
            "package evil-1.0-r0: the index says it is {size} bytes"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} is larger than", apk.display())),
        "{err}"
    );
}

#[test]
fn tampered_package_in_the_repository_never_reaches_the_cache() {
    let fx = Fixture::new(&real_packages(), repo_key());
    let apk = fx.repo_dir().join("busybox-1.37.0-r30.apk");
    let mut bytes = std::fs::read(&apk).unwrap();
    // The data stream's gzip timestamp: still valid gzip, but no longer what datahash covers.
    let control_start = second_gzip_member(&bytes);
    let data_start = control_start + second_gzip_member(&bytes[control_start..]);
    bytes[data_start + 4] ^= 0x01;
    std::fs::write(&apk, &bytes).unwrap();
    let err = fx.install_err(&["busybox"]);
    assert!(
        err.contains("package busybox-1.37.0-r30") && err.contains("data checksum mismatch"),
        "{err}"
    );
    let cached = std::fs::read_dir(fx.cache.join("apk"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        cached, 1,
        "only musl (fetched before busybox) may be cached"
    );
}

#[test]
fn remote_repository_is_cached_for_offline_rebuilds() {
    let fx = Fixture::new(&real_packages(), repo_key());
    let server = http::serve(fx.mirror.clone());
    let mut request = fx.request(&["busybox"]);
    request.repositories[0].source = format!("{}/v3.23/main", server.url);
    let install = |request: &PackageRequest| {
        let mut tree = RootfsTree::new(0);
        let set = packages::install(request, &mut tree, &Progress::hidden()).unwrap();
        (tree, set)
    };
    let (tree, online) = install(&request);
    assert!(
        online.warnings.iter().all(|w| !w.contains("cached index")),
        "{:?}",
        online.warnings
    );
    assert_eq!(
        text(&tree, "etc/apk/repositories"),
        format!("{DEVICE_MIRROR}/v3.23/main\n")
    );

    drop(server); // the mirror goes away: indexes and packages now come from the cache
    let (again, offline) = install(&request);
    assert!(
        offline
            .warnings
            .iter()
            .any(|w| w.contains("using the cached index")),
        "{:?}",
        offline.warnings
    );
    assert_eq!(online.packages, offline.packages);
    assert!(tree.iter().eq(again.iter()));

    request.world.push("musl-dev".into());
    let mut tree = RootfsTree::new(0);
    let err = format!(
        "{:#}",
        packages::install(&request, &mut tree, &Progress::hidden()).unwrap_err()
    );
    assert!(err.contains("\"musl-dev\""), "{err}");
}

/// A mirror that cuts off the first answer for every file half way: each download resumes
/// where it stopped (a `Range` request) and the install is the same as from a steady one.
#[test]
fn cut_off_downloads_resume_where_they_stopped() {
    let fx = Fixture::new(&real_packages(), repo_key());
    let steady = http::serve(fx.mirror.clone());
    let mut request = fx.request(&["busybox"]);
    request.repositories[0].source = format!("{}/v3.23/main", steady.url);
    let mut want = RootfsTree::new(0);
    let steady_set = packages::install(&request, &mut want, &Progress::hidden()).unwrap();

    let flaky = http::serve_cutting(fx.mirror.clone());
    let empty_cache = tempfile::tempdir().unwrap();
    request.repositories[0].source = format!("{}/v3.23/main", flaky.url);
    request.cache_dir = empty_cache.path().to_path_buf();
    let mut got = RootfsTree::new(0);
    let flaky_set = packages::install(&request, &mut got, &Progress::hidden()).unwrap();
    let (cut, resumed) = (
        flaky.cut.load(std::sync::atomic::Ordering::SeqCst),
        flaky.resumed.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert!(
        cut >= 2,
        "the index and at least one package were cut off ({cut})"
    );
    assert_eq!(
        resumed, cut,
        "each cut-off download resumed with a Range request"
    );
    // The same packages, byte for byte (the .apk sha256s), and the same files: the image's
    // /etc/apk/repositories names what a device uses, not the mirror the build read.
    let sums = |set: &packages::InstalledSet| {
        set.packages
            .iter()
            .map(|p| (p.name.clone(), p.apk_sha256.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(sums(&flaky_set), sums(&steady_set));
    let files = |tree: &RootfsTree| {
        tree.iter()
            .map(|(path, node)| (path.to_string(), format!("{node:?}")))
            .collect::<Vec<_>>()
    };
    let (got, want) = (files(&got), files(&want));
    let differ: Vec<&String> = got
        .iter()
        .zip(&want)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| &a.0)
        .collect();
    assert!(
        got.len() == want.len() && differ.is_empty(),
        "differ: {differ:?}"
    );
}

#[test]
fn installs_from_the_offline_mirror_for_both_arches() {
    let mirror = mirror();
    let cache = tempfile::tempdir().unwrap();
    for arch in ["x86_64", "aarch64"] {
        let request = PackageRequest {
            arch: arch.into(),
            repositories: vec![RepoSpec::branch(
                &mirror.dir.display().to_string(),
                "v3.23",
                "main",
                DEVICE_MIRROR,
            )],
            extra_keys: vec![mirror.key.clone()],
            world: vec![
                "alpine-baselayout".into(),
                "busybox".into(),
                "apk-tools".into(),
            ],
            leave_out: Default::default(),
            cache_dir: cache.path().to_path_buf(),
        };
        let mut tree = RootfsTree::new(0);
        let set = packages::install(&request, &mut tree, &Progress::hidden()).unwrap();
        let names: Vec<&str> = set.packages.iter().map(|p| p.name.as_str()).collect();
        for want in [
            "musl",
            "busybox",
            "busybox-binsh",
            "apk-tools",
            "libcrypto3",
            "ca-certificates-bundle",
        ] {
            assert!(
                names.contains(&want),
                "{arch}: {want} missing from {names:?}"
            );
        }
        assert!(set
            .packages
            .iter()
            .all(|p| p.arch == arch || p.arch == "noarch"));
        assert!(set.busybox_links > 300, "{arch}");
        let musl = format!("lib/ld-musl-{arch}.so.1");
        assert!(
            matches!(tree.get(&p(&musl)).unwrap().kind, NodeKind::File(_)),
            "{arch}"
        );
        assert!(text(&tree, "lib/apk/db/installed").contains("P:apk-tools\n"));
    }
}
