//! Typed tensors as the server moves them between HTTP and the engine: an Open Inference
//! Protocol datatype, a shape and a flat row-major buffer.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::element::Element;
use crate::strings::{Refused, Strings};
pub use half::{bf16, f16};

/// The Open Inference Protocol tensor datatypes this server accepts and returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "&'static str")]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Bf16,
    Fp32,
    Fp64,
    /// Variable-length elements: ONNX string tensors.
    Bytes,
}

impl DataType {
    pub const ALL: [DataType; 14] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Bf16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    /// The protocol's name for this type, e.g. `FP32`.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Bf16 => "BF16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element in the binary tensor data extension (BOOL is one byte); `None` for
    /// BYTES, whose elements each carry their length.
    pub fn byte_size(self) -> Option<usize> {
        Some(match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 | DataType::Bf16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => 8,
            DataType::Bytes => return None,
        })
    }
}

impl From<DataType> for &'static str {
    fn from(d: DataType) -> Self {
        d.name()
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A flat row-major buffer of one element type.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    Uint8(Vec<u8>),
    Uint16(Vec<u16>),
    Uint32(Vec<u32>),
    Uint64(Vec<u64>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp16(Vec<f16>),
    Bf16(Vec<bf16>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Strings),
}

/// Runs `$body` with `$v` bound to the inner `Vec` of any numeric [`TensorData`] variant, or
/// `$bytes` with `$s` bound to the [`Strings`] of BYTES.
#[macro_export]
macro_rules! with_tensor_data {
    ($data:expr, $v:ident => $body:expr, Bytes($s:ident) => $bytes:expr) => {
        match $data {
            $crate::tensor::TensorData::Bytes($s) => $bytes,
            $crate::tensor::TensorData::Bool($v) => $body,
            $crate::tensor::TensorData::Uint8($v) => $body,
            $crate::tensor::TensorData::Uint16($v) => $body,
            $crate::tensor::TensorData::Uint32($v) => $body,
            $crate::tensor::TensorData::Uint64($v) => $body,
            $crate::tensor::TensorData::Int8($v) => $body,
            $crate::tensor::TensorData::Int16($v) => $body,
            $crate::tensor::TensorData::Int32($v) => $body,
            $crate::tensor::TensorData::Int64($v) => $body,
            $crate::tensor::TensorData::Fp16($v) => $body,
            $crate::tensor::TensorData::Bf16($v) => $body,
            $crate::tensor::TensorData::Fp32($v) => $body,
            $crate::tensor::TensorData::Fp64($v) => $body,
        }
    };
}

impl TensorData {
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Uint8(_) => DataType::Uint8,
            TensorData::Uint16(_) => DataType::Uint16,
            TensorData::Uint32(_) => DataType::Uint32,
            TensorData::Uint64(_) => DataType::Uint64,
            TensorData::Int8(_) => DataType::Int8,
            TensorData::Int16(_) => DataType::Int16,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp16(_) => DataType::Fp16,
            TensorData::Bf16(_) => DataType::Bf16,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
            TensorData::Bytes(_) => DataType::Bytes,
        }
    }

    pub fn len(&self) -> usize {
        with_tensor_data!(self, v => v.len(), Bytes(s) => s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty buffer of `datatype` with room for `capacity` elements.
    pub fn with_capacity(datatype: DataType, capacity: usize) -> TensorData {
        crate::with_element_type!(
            datatype,
            T => T::into_data(Vec::with_capacity(capacity)),
            Bytes => TensorData::Bytes(Strings::with_capacity(capacity))
        )
    }

    /// Appends a JSON number given as its text; false if it is not a value of this type.
    pub fn push_json_number(&mut self, text: &str) -> bool {
        with_tensor_data!(self, v => push(v, Element::from_json_number(text)), Bytes(_s) => false)
    }

    /// Appends a JSON `true`/`false`; false unless this is BOOL.
    pub fn push_json_bool(&mut self, value: bool) -> bool {
        with_tensor_data!(self, v => push(v, Element::from_json_bool(value)), Bytes(_s) => false)
    }

    /// Appends a JSON string: `Ok(false)` unless this is BYTES, `Err` for an element a string
    /// tensor cannot hold.
    pub fn push_json_string(&mut self, text: &str) -> Result<bool, Refused> {
        match self {
            TensorData::Bytes(s) => s.push(text).map(|()| true),
            _ => Ok(false),
        }
    }

    /// Appends elements from little-endian bytes, a whole number of fixed-size elements (BYTES
    /// elements are read one at a time, by `Strings::push_bytes`).
    pub fn extend_le(&mut self, bytes: &[u8]) {
        with_tensor_data!(
            self,
            v => extend_le(v, bytes),
            Bytes(_s) => unreachable!("BYTES elements have no fixed size")
        )
    }

    /// How many bytes [`TensorData::write_le`] writes.
    pub fn le_len(&self) -> usize {
        with_tensor_data!(self, v => le_len(v), Bytes(s) => s.le_len())
    }

    /// Appends the elements as the binary tensor data extension lays them out: little-endian,
    /// each BYTES element after its length.
    pub fn write_le(&self, out: &mut Vec<u8>) {
        with_tensor_data!(self, v => v.iter().for_each(|x| x.write_le(out)), Bytes(s) => s.write_le(out))
    }
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        with_tensor_data!(
            self,
            v => s.collect_seq(v.iter().map(|x| x.to_json())),
            Bytes(strings) => strings.serialize(s)
        )
    }
}

fn le_len<T: Element>(values: &[T]) -> usize {
    values.len() * T::SIZE
}

fn extend_le<T: Element>(values: &mut Vec<T>, bytes: &[u8]) {
    let size = T::SIZE;
    debug_assert_eq!(bytes.len() % size, 0);
    values.extend(bytes.chunks_exact(size).map(T::read_le));
}

fn push<T>(values: &mut Vec<T>, value: Option<T>) -> bool {
    value.map(|x| values.push(x)).is_some()
}

/// A named tensor: what a request carries in and a response carries out.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// What a model declares for one input or output. `-1` marks a dimension of any size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

impl TensorSpec {
    /// Why `shape` does not fit this spec, if it does not.
    pub fn shape_mismatch(&self, shape: &[usize]) -> Option<String> {
        let fits = shape.len() == self.shape.len()
            && shape
                .iter()
                .zip(&self.shape)
                .all(|(&got, &want)| want < 0 || got as i64 == want);
        (!fits).then(|| {
            format!(
                "input '{}' has shape {:?}, the model expects {:?} (-1 = any size)",
                self.name, shape, self.shape
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatype_names_round_trip() {
        for d in DataType::ALL {
            assert_eq!(DataType::from_name(d.name()), Some(d));
        }
        assert_eq!(DataType::from_name("fp32"), None);
        assert_eq!(DataType::from_name("BYTES"), Some(DataType::Bytes));
    }

    #[test]
    fn le_len_is_what_write_le_writes() {
        let mut strings = Strings::default();
        strings.push("ab").unwrap();
        strings.push("").unwrap();
        for data in [
            TensorData::Fp32(vec![1.0, 2.0]),
            TensorData::Bool(vec![true]),
            TensorData::Fp16(vec![f16::ONE; 3]),
            TensorData::Int64(vec![]),
            TensorData::Bytes(strings),
        ] {
            let mut out = Vec::new();
            data.write_le(&mut out);
            assert_eq!(data.le_len(), out.len(), "{}", data.datatype());
        }
    }

    #[test]
    fn shape_mismatch_honours_dynamic_dims() {
        let spec = TensorSpec {
            name: "x".into(),
            datatype: DataType::Fp32,
            shape: vec![-1, 3],
        };
        assert!(spec.shape_mismatch(&[7, 3]).is_none());
        assert!(spec.shape_mismatch(&[7, 4]).unwrap().contains("[-1, 3]"));
        assert!(spec.shape_mismatch(&[3]).is_some());
    }
}
