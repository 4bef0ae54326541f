//! `edgeimg run` and `test` build only when stale. A digest of everything a build reads (the
//! plan, the files it names, the mirror's local indexes, our device binaries and this edgeimg
//! itself) is kept in the manifest; a build whose digest matches and whose outputs are intact
//! is reused. Secret files (the bearer token, the TLS key) count by their size and time, never
//! their bytes, in a stamp kept beside the outputs and not in the manifest (whose digest must be
//! the same for two checkouts, and times differ there); a token from an environment variable
//! does not count (`--rebuild` after changing it).

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::image::device::DeviceBinaries;
use crate::outputs::manifest::{Manifest, MANIFEST_FILE};
use crate::plan::{FileSource, Plan, Secret};
use crate::writers::record::OutputRecord;

pub fn inputs_digest(plan: &Plan, binaries: &DeviceBinaries) -> Result<String> {
    let mut hasher = Sha256::new();
    // What the outputs are made of, by content: where the recipe, its files, the outputs and a
    // local mirror are on this host is not (and would differ between two checkouts, and the
    // digest is in the manifest). Each file is hashed below under its role instead.
    let local =
        |location: &str| !(location.starts_with("https://") || location.starts_with("http://"));
    let mut what = Plan {
        out_dir: Default::default(),
        recipe_path: Default::default(),
        ..plan.clone()
    };
    if local(&plan.alpine.mirror) {
        what.alpine.mirror = String::new();
    }
    for repo in &mut what.alpine.third_party {
        if local(&repo.url) {
            repo.url = String::new();
        }
    }
    what.alpine
        .extra_keys
        .iter_mut()
        .for_each(|k| *k = Default::default());
    for model in &mut what.models {
        model.path = Default::default();
        if let Some(download) = model.download.as_mut().filter(|d| local(&d.url)) {
            download.url = String::new();
        }
    }
    for file in &mut what.files {
        if let FileSource::Host(path) = &mut file.source {
            *path = Default::default();
        }
    }
    if let Some(lock) = &mut what.lock {
        lock.path = Default::default();
    }
    if let Some(tls) = &mut what.runtime.tls {
        (tls.cert, tls.key) = Default::default();
    }
    if let Some(Secret::File(path)) = &mut what.runtime.bearer_token {
        *path = Default::default();
    }
    if let Some(key) = what
        .runtime
        .model_updates
        .as_mut()
        .and_then(|u| u.public_key.as_mut())
    {
        *key = Default::default();
    }
    hasher.update(format!("{what:?}"));
    let mut files = vec![
        ("recipe".to_string(), plan.recipe_path.clone()),
        ("edge-init".to_string(), binaries.init.clone()),
        ("edge-runtime".to_string(), binaries.runtime.clone()),
    ];
    files.extend(
        binaries
            .runtime_libraries
            .iter()
            .map(|l| (format!("library {}", l.file_name), l.source.clone())),
    );
    files.extend(
        plan.models
            .iter()
            .map(|m| (format!("model {}", m.name), m.path.clone())),
    );
    files.extend(
        plan.alpine
            .extra_keys
            .iter()
            .map(|k| ("key".to_string(), k.clone())),
    );
    files.extend(plan.files.iter().filter_map(|f| match &f.source {
        FileSource::Host(path) => Some((format!("file {}", f.dest), path.clone())),
        FileSource::Inline(_) => None,
    }));
    files.extend(
        plan.runtime
            .tls
            .iter()
            .map(|tls| ("tls cert".to_string(), tls.cert.clone())),
    );
    files.extend(
        plan.runtime
            .model_updates
            .iter()
            .filter_map(|u| u.public_key.clone())
            .map(|key| ("model public key".to_string(), key)),
    );
    // A rebuilt edgeimg may write different images from the same inputs.
    files.push((
        "edgeimg".to_string(),
        std::env::current_exe().context("cannot find the running edgeimg")?,
    ));
    for (role, file) in &files {
        hasher.update(role.as_bytes());
        hash_file(&mut hasher, file)?;
    }
    // A local mirror's indexes: a package update there makes the image stale. (Remote mirrors
    // are not asked; `--rebuild` forces a build.)
    for repo in plan.alpine.repo_specs() {
        let index = Path::new(&repo.source)
            .join(plan.arch.alpine())
            .join("APKINDEX.tar.gz");
        if index.is_file() {
            hash_file(&mut hasher, &index)?;
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Beside a build's outputs: its secret files as the build read them (size and time).
pub const SECRETS_STAMP: &str = ".secrets-stamp";

/// The plan's secret files by role, size and modification time, never their bytes.
pub fn secrets_stamp(plan: &Plan) -> Result<String> {
    let mut secrets: Vec<(&str, &Path)> = plan
        .runtime
        .tls
        .iter()
        .map(|tls| ("tls key", tls.key.as_path()))
        .collect();
    if let Some(Secret::File(path)) = &plan.runtime.bearer_token {
        secrets.push(("bearer token", path));
    }
    let mut stamp = String::new();
    for (role, secret) in secrets {
        let meta = std::fs::metadata(secret)
            .with_context(|| format!("cannot read {}", secret.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        stamp.push_str(&format!("{role}:{}:{mtime:?}\n", meta.len()));
    }
    Ok(stamp)
}

/// Records the secrets a build just read, for [`reusable_build`].
pub fn write_secrets_stamp(plan: &Plan) -> Result<()> {
    let path = plan.out_dir.join(SECRETS_STAMP);
    std::fs::write(&path, secrets_stamp(plan)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The manifest of the build in the plan's output folder, if it was made from `digest` and
/// every output is still there unchanged.
pub fn reusable_build(plan: &Plan, digest: &str) -> Option<Manifest> {
    let manifest = Manifest::read(&plan.out_dir.join(MANIFEST_FILE)).ok()?;
    if manifest.inputs_sha256.as_deref() != Some(digest) {
        return None;
    }
    let stamp = std::fs::read_to_string(plan.out_dir.join(SECRETS_STAMP)).ok()?;
    if secrets_stamp(plan).ok()? != stamp {
        return None;
    }
    let intact = manifest.outputs.iter().all(|out| {
        OutputRecord::of_file(&out.kind, &plan.out_dir.join(&out.file))
            .is_ok_and(|now| now.size == out.size && now.sha256 == out.sha256)
    });
    intact.then_some(manifest)
}

fn hash_file(hasher: &mut Sha256, path: &Path) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    crate::writers::extents::copy_sparse_to(&file, hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Overrides;
    use crate::recipe::LoadedRecipe;

    struct Fixture {
        dir: tempfile::TempDir,
        binaries: DeviceBinaries,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("model.onnx"), b"model v1").unwrap();
        std::fs::write(root.join("edge-init"), b"init").unwrap();
        std::fs::write(root.join("edge-runtime"), b"runtime").unwrap();
        let binaries = DeviceBinaries {
            init: root.join("edge-init"),
            runtime: root.join("edge-runtime"),
            runtime_libraries: Vec::new(),
            origin: crate::image::device::Origin {
                kind: "folder",
                found_as: "test".into(),
                base: root.to_path_buf(),
                source_commit: "unknown".into(),
            },
        };
        Fixture { dir, binaries }
    }

    fn plan(fx: &Fixture, hostname: &str) -> Plan {
        let path = fx.dir.path().join("r.toml");
        let text = format!(
            "[image]\nname = \"d\"\nboard = \"qemu-x86_64\"\nhostname = \"{hostname}\"\n[model]\npath = \"model.onnx\"\n"
        );
        std::fs::write(&path, &text).unwrap();
        let loaded = LoadedRecipe::parse(&path, text).unwrap();
        let overrides = Overrides {
            out_dir: Some(fx.dir.path().join("out")),
            ..Default::default()
        };
        Plan::new(&loaded, &overrides).unwrap()
    }

    #[test]
    fn digest_follows_recipe_model_and_binaries() {
        let fx = fixture();
        let first = inputs_digest(&plan(&fx, "a"), &fx.binaries).unwrap();
        assert_eq!(first, inputs_digest(&plan(&fx, "a"), &fx.binaries).unwrap());
        assert_ne!(first, inputs_digest(&plan(&fx, "b"), &fx.binaries).unwrap());
        std::fs::write(fx.dir.path().join("model.onnx"), b"model v2").unwrap();
        let model_changed = inputs_digest(&plan(&fx, "a"), &fx.binaries).unwrap();
        assert_ne!(first, model_changed);
        std::fs::write(&fx.binaries.runtime, b"runtime v2").unwrap();
        assert_ne!(
            model_changed,
            inputs_digest(&plan(&fx, "a"), &fx.binaries).unwrap()
        );
    }

    #[test]
    fn digest_is_the_same_for_the_same_inputs_in_another_folder() {
        let (here, there) = (fixture(), fixture());
        assert_ne!(here.dir.path(), there.dir.path());
        assert_eq!(
            inputs_digest(&plan(&here, "a"), &here.binaries).unwrap(),
            inputs_digest(&plan(&there, "a"), &there.binaries).unwrap()
        );
    }

    #[test]
    fn a_token_file_counts_by_its_size_and_time_never_its_bytes() {
        let fx = fixture();
        let path = fx.dir.path().join("r.toml");
        let text = "[image]\nname = \"d\"\nboard = \"qemu-x86_64\"\n[model]\npath = \"model.onnx\"\n[runtime]\nbearer_token_file = \"token\"\n";
        std::fs::write(&path, text).unwrap();
        let loaded = LoadedRecipe::parse(&path, text.to_string()).unwrap();
        let plan = Plan::new(&loaded, &Overrides::default()).unwrap();
        let token = fx.dir.path().join("token");
        let at = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let write = |bytes: &str, secs| {
            std::fs::write(&token, bytes).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&token)
                .unwrap()
                .set_modified(at(secs))
                .unwrap();
        };
        write("first-token\n", 1000);
        let first = secrets_stamp(&plan).unwrap();
        let digest = inputs_digest(&plan, &fx.binaries).unwrap();
        // Other bytes, same size and time: the stamp cannot tell (it never read them).
        write("other-token\n", 1000);
        assert_eq!(first, secrets_stamp(&plan).unwrap());
        // A token written anew has a new time: the image is stale.
        write("other-token\n", 2000);
        assert_ne!(first, secrets_stamp(&plan).unwrap());
        // The published digest does not move with a secret's time: two checkouts agree.
        assert_eq!(digest, inputs_digest(&plan, &fx.binaries).unwrap());
    }

    #[test]
    fn a_build_is_reused_only_with_the_same_digest_and_intact_outputs() {
        let fx = fixture();
        let plan = plan(&fx, "a");
        std::fs::create_dir_all(&plan.out_dir).unwrap();
        let output = plan.out_dir.join("d.img");
        std::fs::write(&output, b"image").unwrap();
        let manifest = Manifest {
            name: "d".into(),
            board: "qemu-x86_64".into(),
            arch: "x86_64".into(),
            recipe: String::new(),
            source_date_epoch: 0,
            alpine: crate::outputs::manifest::AlpineSource {
                mirror: String::new(),
                branch: String::new(),
                repositories: Vec::new(),
            },
            packages: Vec::new(),
            rootfs: crate::outputs::manifest::RootfsSummary {
                entries: 0,
                file_bytes: 0,
            },
            models: Vec::new(),
            engine: None,
            device_binaries: None,
            boot: None,
            disk: None,
            kernel_modules: Vec::new(),
            outputs: vec![OutputRecord::of_file("disk", &output).unwrap()],
            warnings: Vec::new(),
            inputs_sha256: Some("abc".into()),
            left_out: Vec::new(),
        };
        manifest.write(&plan.out_dir).unwrap();
        assert!(reusable_build(&plan, "abc").is_none(), "no secrets stamp");
        write_secrets_stamp(&plan).unwrap();
        assert!(reusable_build(&plan, "abc").is_some());
        assert!(reusable_build(&plan, "other").is_none());
        std::fs::write(&output, b"imagX").unwrap();
        assert!(reusable_build(&plan, "abc").is_none(), "a changed output");
    }
}
