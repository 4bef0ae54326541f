//! The inference engine: one `ort` code path over either backend. The backend is chosen at run
//! time by installing its `OrtApi` table: ort-tract's (pure Rust) or the one exported by a real
//! libonnxruntime loaded with `ort::init_from`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use edge_config::{Engine, ModelConfig};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{DynValue, Outlet, TensorElementType, ValueType};
use thiserror::Error;

use crate::element::Element;
use crate::strings::Strings;
use crate::tensor::{DataType, Tensor, TensorData, TensorSpec};
use crate::{with_element_type, with_tensor_data};

/// The process-wide backend; keep it alive as long as any session.
pub struct Backend {
    pub engine: Engine,
    environment: Environment,
}

/// Installs the backend's API table and creates the ort environment. Once per process:
/// ort holds the API table in a global that cannot be replaced.
pub fn init_backend(engine: Engine, onnxruntime_library: Option<&Path>) -> anyhow::Result<Backend> {
    let installed = match engine {
        #[cfg(feature = "tract")]
        Engine::Tract => ort::set_api(ort_tract::api()),
        #[cfg(not(feature = "tract"))]
        Engine::Tract => bail!(
            "engine = \"tract\" is not compiled into this edge-runtime; build it with the default `tract` feature, or use engine = \"onnxruntime\""
        ),
        Engine::Onnxruntime => {
            let path = onnxruntime_library.context(
                "engine = \"onnxruntime\" needs runtime.onnxruntime_library, the path of libonnxruntime.so",
            )?;
            install_onnxruntime(path)?
        }
    };
    if !installed {
        bail!("an ort backend was already initialised in this process");
    }
    let environment = ort::init()
        .with_name("edge-runtime")
        .with_telemetry(false)
        .build()
        .context("creating the ort environment")?;
    Ok(Backend {
        engine,
        environment,
    })
}

/// With `alternative-backend` compiled in, ort never reads the API table from the loaded library
/// by itself, so fetch it from the library's `OrtGetApiBase` and install it.
fn install_onnxruntime(path: &Path) -> anyhow::Result<bool> {
    // Loads the library into ort's global slot and checks its version against ort's API level.
    drop(ort::init_from(path).with_context(|| {
        format!(
            "loading ONNX Runtime from {} (a glibc build cannot load into a static musl binary; use engine = \"tract\" there)",
            path.display()
        )
    })?);
    // SAFETY: the same library ort just loaded and checked; dlopen returns the same handle, and
    // it stays loaded for the life of the process (ort keeps its own handle in a global).
    let api = unsafe {
        let library = libloading::Library::new(path)
            .with_context(|| format!("reopening {}", path.display()))?;
        let get_api_base: libloading::Symbol<
            unsafe extern "C" fn() -> *const ort::sys::OrtApiBase,
        > = library
            .get(b"OrtGetApiBase")
            .with_context(|| format!("{} does not export OrtGetApiBase", path.display()))?;
        let base = get_api_base();
        if base.is_null() {
            bail!("{}: OrtGetApiBase returned null", path.display());
        }
        let api = ((*base).GetApi)(ort::sys::ORT_API_VERSION);
        if api.is_null() {
            bail!(
                "{} does not provide ONNX Runtime API version {}",
                path.display(),
                ort::sys::ORT_API_VERSION
            );
        }
        (*api).clone()
    };
    Ok(ort::set_api(api))
}

/// An engine failure while running a model (HTTP 500).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("the engine failed: {0}")]
    Ort(#[from] ort::Error),
    #[error("the model produced output '{0}' of a type this server cannot return")]
    UnsupportedOutput(String),
}

pub use edge_config::Plan;

/// A loaded model: its declared inputs and outputs, and one session (runs are serialised on it;
/// the engine parallelises inside a run with its intra-op threads).
pub struct Model {
    pub name: String,
    pub version: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub plan: Plan,
    /// The ONNX file the session was built from.
    path: PathBuf,
    session: Mutex<Session>,
}

impl Model {
    /// The model with its optimised plan.
    pub fn load(backend: &Backend, config: &ModelConfig, threads: usize) -> anyhow::Result<Model> {
        Model::load_plan(backend, config, threads, Plan::Optimised)
    }

    /// The same model file and version with the optimised plan.
    pub fn optimised(&self, backend: &Backend, threads: usize) -> anyhow::Result<Model> {
        let config = ModelConfig {
            name: self.name.clone(),
            path: self.path.to_string_lossy().into_owned(),
            version: self.version.clone(),
        };
        Model::load_plan(backend, &config, threads, Plan::Optimised)
    }

    pub fn load_plan(
        backend: &Backend,
        config: &ModelConfig,
        threads: usize,
        plan: Plan,
    ) -> anyhow::Result<Model> {
        let loading = || {
            format!(
                "loading model '{}' from {} with engine \"{}\"",
                config.name,
                config.path,
                backend.engine.name()
            )
        };
        let path = Path::new(&config.path);
        let started = std::time::Instant::now();
        let session = build_session(&backend.environment, path, threads, plan).map_err(|e| {
            // tract fails on such a model as a parse failure (an unknown string operator, an
            // unknown type); name the type and the way out.
            let hint = (backend.engine == Engine::Tract)
                .then(|| tract_lacks(path, &e.to_string()))
                .flatten()
                .map_or(String::new(), |datatype| {
                    format!(": {}", engine_lacks(backend.engine, datatype))
                });
            anyhow::Error::new(e).context(format!("{}{hint}", loading()))
        })?;
        // On the console beside init's timeline: most of a server's start is this.
        eprintln!(
            "edge-runtime: model '{}' loaded {} in {} ms (engine {}), at {} ms since boot",
            config.name,
            match plan {
                Plan::Quick => "with its quick plan",
                Plan::Optimised => "and optimised",
            },
            started.elapsed().as_millis(),
            backend.engine.name(),
            crate::ms_since_boot()
        );
        let specs = |outlets: &[Outlet], kind: &str| -> anyhow::Result<Vec<TensorSpec>> {
            outlets
                .iter()
                .map(|o| {
                    tensor_spec(o)
                        .with_context(|| format!("model '{}' {kind} '{}'", config.name, o.name()))
                })
                .collect()
        };
        let inputs = specs(session.inputs(), "input")?;
        let outputs = specs(session.outputs(), "output")?;
        if backend.engine == Engine::Tract {
            // A model tract parses may still declare a type it cannot run.
            let mut declared = inputs.iter().chain(&outputs).map(|s| s.datatype);
            if let Some(datatype) = declared.find(|d| TRACT_LACKS.contains(d)) {
                bail!("{}: {}", loading(), engine_lacks(backend.engine, datatype));
            }
        }
        Ok(Model {
            name: config.name.clone(),
            version: config.version.clone(),
            inputs,
            outputs,
            plan,
            path: path.to_path_buf(),
            session: Mutex::new(session),
        })
    }

    /// Runs the model on validated inputs (in declared order) and returns every output, with
    /// the time `session.run` itself took: building the engine's input values and copying its
    /// outputs out are the server's own work, not the model's.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Run, EngineError> {
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for tensor in inputs {
            let shape = tensor.shape;
            let value = with_tensor_data!(
                tensor.data,
                v => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
                Bytes(s) => {
                    // ort wants `'static` elements; it copies each into a C string anyway.
                    let elements: Vec<String> = s.iter().map(str::to_owned).collect();
                    ort::value::Tensor::from_string_array((shape, &*elements))?.into_dyn()
                }
            );
            values.push((tensor.name, value));
        }
        // A panic inside an earlier run poisons the lock but leaves the session usable.
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let outputs = session.run(values)?;
        let session_time = started.elapsed();
        let outputs = outputs
            .iter()
            .map(|(name, value)| {
                let datatype = match value.dtype() {
                    ValueType::Tensor { ty, .. } => datatype_of(*ty),
                    _ => None,
                }
                .ok_or_else(|| EngineError::UnsupportedOutput(name.to_string()))?;
                let (shape, data) = with_element_type!(
                    datatype,
                    T => {
                        let (shape, data) = value.try_extract_tensor::<T>()?;
                        (shape, T::into_data(data.to_vec()))
                    },
                    Bytes => {
                        let (shape, data) = value.try_extract_strings()?;
                        (shape, TensorData::Bytes(data.iter().collect::<Strings>()))
                    }
                );
                Ok(Tensor {
                    name: name.to_string(),
                    shape: shape.iter().map(|&d| d as usize).collect(),
                    data,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(Run {
            outputs,
            session_time,
        })
    }
}

/// What one [`Model::run`] gave.
pub struct Run {
    pub outputs: Vec<Tensor>,
    /// How long `session.run` took (the `infer` figure of the `server-timing` header).
    pub session_time: Duration,
}

/// The datatypes engine "tract" does not run.
const TRACT_LACKS: [DataType; 2] = [DataType::Bf16, DataType::Bytes];

/// Which of [`TRACT_LACKS`] made tract refuse the model at `path`: one the model declares for
/// an input or output (read from the ONNX file itself, as tract's error may name only an
/// operator), or BF16 inside the graph, which tract's error names `Bfloat16`.
#[cfg(feature = "tract")]
fn tract_lacks(path: &Path, error: &str) -> Option<DataType> {
    use tract_onnx::pb::tensor_proto::DataType as Onnx;
    use tract_onnx::pb::type_proto::Value;
    use tract_onnx::prelude::Framework;
    let graph = tract_onnx::onnx()
        .proto_model_for_path(path)
        .ok()
        .and_then(|model| model.graph);
    let declared = graph.and_then(|graph| {
        let values = graph.input.into_iter().chain(graph.output);
        values
            .filter_map(|v| match v.r#type?.value? {
                Value::TensorType(t) => Some(t.elem_type),
            })
            .find_map(|elem_type| {
                if elem_type == Onnx::String as i32 {
                    Some(DataType::Bytes)
                } else if elem_type == Onnx::Bfloat16 as i32 {
                    Some(DataType::Bf16)
                } else {
                    None
                }
            })
    });
    declared.or_else(|| error.contains("Bfloat16").then_some(DataType::Bf16))
}

/// Without tract compiled in, engine "tract" never gets as far as loading a model.
#[cfg(not(feature = "tract"))]
fn tract_lacks(_: &Path, _: &str) -> Option<DataType> {
    None
}

/// Why `engine` refuses a model with `datatype` tensors, and the way out.
fn engine_lacks(engine: Engine, datatype: DataType) -> String {
    let convert = match datatype {
        DataType::Bf16 => ", or convert the model to FP16 or FP32",
        _ => "",
    };
    format!(
        "the model has {datatype} tensors, which engine \"{}\" does not run; use engine = \"onnxruntime\"{convert}",
        engine.name()
    )
}

fn build_session(
    environment: &Environment,
    path: &Path,
    threads: usize,
    plan: Plan,
) -> ort::Result<Session> {
    // Level3 for both engines: tract relies on it for speed (its decluttering and fusing).
    // ort-tract optimises at any level but Disable, where it only types the graph.
    // ort-tract accepts and ignores the thread count: tract runs a model on the calling thread.
    let level = match plan {
        Plan::Quick => GraphOptimizationLevel::Disable,
        Plan::Optimised => GraphOptimizationLevel::Level3,
    };
    Session::builder(environment)?
        .with_optimization_level(level)?
        .with_intra_threads(threads)?
        .commit_from_file(path)
}

fn tensor_spec(outlet: &Outlet) -> anyhow::Result<TensorSpec> {
    let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
        bail!(
            "is not a tensor ({}); only tensors are served",
            outlet.dtype()
        );
    };
    let datatype = datatype_of(*ty).with_context(|| {
        format!("has element type {ty}, which edge-runtime does not serve (supported: BOOL, UINT8..64, INT8..64, FP16, BF16, FP32, FP64, BYTES)")
    })?;
    Ok(TensorSpec {
        name: outlet.name().to_string(),
        datatype,
        shape: shape.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
    })
}

fn datatype_of(ty: TensorElementType) -> Option<DataType> {
    Some(match ty {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::Uint8,
        TensorElementType::Uint16 => DataType::Uint16,
        TensorElementType::Uint32 => DataType::Uint32,
        TensorElementType::Uint64 => DataType::Uint64,
        TensorElementType::Int8 => DataType::Int8,
        TensorElementType::Int16 => DataType::Int16,
        TensorElementType::Int32 => DataType::Int32,
        TensorElementType::Int64 => DataType::Int64,
        TensorElementType::Float16 => DataType::Fp16,
        TensorElementType::Bfloat16 => DataType::Bf16,
        TensorElementType::Float32 => DataType::Fp32,
        TensorElementType::Float64 => DataType::Fp64,
        TensorElementType::String => DataType::Bytes,
        _ => return None,
    })
}
