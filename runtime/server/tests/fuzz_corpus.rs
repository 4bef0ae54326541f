//! edge-runtime's fuzz target (tests/fuzz/) over its committed corpus and crash reproducers.

#[path = "../../../tests/fuzz/src/runtime.rs"]
mod harness;
#[path = "../../../tests/fuzz/src/replay.rs"]
mod replay;

#[test]
fn request_inputs() {
    replay::replay("request", harness::request);
}
