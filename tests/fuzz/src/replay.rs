//! Runs one fuzz target's committed inputs (`tests/fuzz/corpus/<target>/`, the seeds, and
//! `tests/fuzz/regressions/<target>/`, every crash the fuzzer found, kept after its fix)
//! through the target's body, so `cargo test` catches a regression without cargo-fuzz.

use std::path::Path;

pub fn replay(target: &str, run: fn(&[u8])) {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests/fuzz"))
        .find(|dir| dir.is_dir())
        .expect("tests/fuzz above the crate");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(
                outcome.is_ok(),
                "{} fails the {target} fuzz target; reproduce with `tests/fuzz.sh --reproduce {target} {}`",
                path.display(),
                path.display()
            );
            count += 1;
        }
    }
    assert!(
        count > 0,
        "no inputs for the {target} fuzz target under {}",
        fuzz_dir.display()
    );
}
