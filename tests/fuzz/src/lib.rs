//! The fuzz targets' bodies (see `fuzz_targets/`): one function per hostile input, each taking
//! arbitrary bytes. The crate's own workspace keeps it out of `cargo test --workspace`; the
//! corpora are replayed there by `builder/tests/fuzz_corpus.rs`,
//! `runtime/server/tests/fuzz_corpus.rs` and `runtime/init/tests/fuzz_corpus.rs`, which include
//! these files.

pub mod builder;
pub mod init;
// The packages tests' .apk writer, so the fuzzed packages are built the way the tests' are.
#[allow(dead_code)]
#[path = "../../../builder/tests/packages/repo.rs"]
mod repo;
pub mod runtime;
