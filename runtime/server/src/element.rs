//! One trait over the Rust element types, so decoding and encoding are written once, generically.

use serde::Serialize;
use serde_json::Value;

use crate::tensor::{DataType, TensorData};

/// A Rust type that stores one Open Inference Protocol datatype.
pub trait Element: Copy + Serialize + Send + 'static {
    const DATATYPE: DataType;
    /// The JSON scalar as this type, if it is one and fits (no silent wrapping or truncation).
    fn from_json(value: &Value) -> Option<Self>;
    /// Reads one element from exactly `DATATYPE.byte_size()` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
    fn write_le(self, out: &mut Vec<u8>);
    fn into_data(values: Vec<Self>) -> TensorData;
}

/// Runs `$body` with the type alias `$t` naming the Rust element type of `$dtype`.
#[macro_export]
macro_rules! with_element_type {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DataType::Bool => {
                type $t = bool;
                $body
            }
            $crate::tensor::DataType::Uint8 => {
                type $t = u8;
                $body
            }
            $crate::tensor::DataType::Uint16 => {
                type $t = u16;
                $body
            }
            $crate::tensor::DataType::Uint32 => {
                type $t = u32;
                $body
            }
            $crate::tensor::DataType::Uint64 => {
                type $t = u64;
                $body
            }
            $crate::tensor::DataType::Int8 => {
                type $t = i8;
                $body
            }
            $crate::tensor::DataType::Int16 => {
                type $t = i16;
                $body
            }
            $crate::tensor::DataType::Int32 => {
                type $t = i32;
                $body
            }
            $crate::tensor::DataType::Int64 => {
                type $t = i64;
                $body
            }
            $crate::tensor::DataType::Fp32 => {
                type $t = f32;
                $body
            }
            $crate::tensor::DataType::Fp64 => {
                type $t = f64;
                $body
            }
        }
    };
}

fn json_signed<T: TryFrom<i64>>(value: &Value) -> Option<T> {
    value.as_i64().and_then(|i| T::try_from(i).ok())
}

fn json_unsigned<T: TryFrom<u64>>(value: &Value) -> Option<T> {
    value.as_u64().and_then(|i| T::try_from(i).ok())
}

macro_rules! numeric_element {
    ($t:ty, $variant:ident, |$v:ident| $from_json:expr) => {
        impl Element for $t {
            const DATATYPE: DataType = DataType::$variant;
            fn from_json($v: &Value) -> Option<Self> {
                $from_json
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("callers pass exactly one element"))
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn into_data(values: Vec<Self>) -> TensorData {
                TensorData::$variant(values)
            }
        }
    };
}

numeric_element!(u8, Uint8, |v| json_unsigned(v));
numeric_element!(u16, Uint16, |v| json_unsigned(v));
numeric_element!(u32, Uint32, |v| json_unsigned(v));
numeric_element!(u64, Uint64, |v| json_unsigned(v));
numeric_element!(i8, Int8, |v| json_signed(v));
numeric_element!(i16, Int16, |v| json_signed(v));
numeric_element!(i32, Int32, |v| json_signed(v));
numeric_element!(i64, Int64, |v| json_signed(v));
numeric_element!(f32, Fp32, |v| v.as_f64().map(|f| f as f32));
numeric_element!(f64, Fp64, |v| v.as_f64());

impl Element for bool {
    const DATATYPE: DataType = DataType::Bool;
    fn from_json(value: &Value) -> Option<Self> {
        value.as_bool()
    }
    fn read_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
    fn into_data(values: Vec<Self>) -> TensorData {
        TensorData::Bool(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_scalars_must_fit_the_type() {
        assert_eq!(i8::from_json(&json!(-128)), Some(-128));
        assert_eq!(i8::from_json(&json!(128)), None);
        assert_eq!(u8::from_json(&json!(-1)), None);
        assert_eq!(i64::from_json(&json!(1.5)), None);
        assert_eq!(f32::from_json(&json!(2)), Some(2.0));
        assert_eq!(bool::from_json(&json!(1)), None);
        assert_eq!(bool::from_json(&json!(true)), Some(true));
    }

    #[test]
    fn little_endian_round_trip() {
        let mut out = Vec::new();
        (-2.5f32).write_le(&mut out);
        0x0102i16.write_le(&mut out);
        assert_eq!(out.len(), 6);
        assert_eq!(f32::read_le(&out[..4]), -2.5);
        assert_eq!(i16::read_le(&out[4..]), 0x0102);
    }
}
