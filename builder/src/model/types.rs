//! The element types and dimensions a model's inputs and outputs are described with.

use std::fmt;

use serde::{Serialize, Serializer};

/// One dimension of a tensor shape as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A concrete size, e.g. `16`.
    Fixed(i64),
    /// A named size chosen at run time, e.g. the batch `N`; the same name means the same size.
    Symbolic(String),
    /// No size and no name (also `-1` and Paddle's `?`, which exporters write for "unknown").
    Unknown,
}

impl Dim {
    pub fn fixed(&self) -> Option<i64> {
        match self {
            Dim::Fixed(v) => Some(*v),
            _ => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Symbolic(name) => f.write_str(name),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// Writes dims as `[N, 3, 224, 224]`.
pub struct DimList<'a>(pub &'a [Dim]);

impl fmt::Display for DimList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, dim) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{dim}")?;
        }
        f.write_str("]")
    }
}

macro_rules! elem_types {
    ($($variant:ident = $code:literal, $name:literal, $servable:literal;)*) => {
        /// The element type of a tensor (ONNX `TensorProto.DataType`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ElemType {
            $($variant,)*
            /// A code this version of the ONNX schema does not know.
            Other(i32),
        }

        impl ElemType {
            pub fn from_onnx(code: i32) -> Self {
                match code {
                    $($code => ElemType::$variant,)*
                    other => ElemType::Other(other),
                }
            }

            pub fn onnx_code(self) -> i32 {
                match self {
                    $(ElemType::$variant => $code,)*
                    ElemType::Other(code) => code,
                }
            }

            /// The name used in messages and the manifest; for servable types it is also the
            /// Open Inference Protocol v2 `datatype` (FP32, INT64, BOOL, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $(ElemType::$variant => $name,)*
                    ElemType::Other(_) => "UNKNOWN",
                }
            }

            /// Whether edge-runtime can take or give tensors of this type.
            pub fn is_servable(self) -> bool {
                match self {
                    $(ElemType::$variant => $servable,)*
                    ElemType::Other(_) => false,
                }
            }

            /// Every servable type, in ONNX code order.
            pub fn servable() -> Vec<ElemType> {
                [$(ElemType::$variant),*].into_iter().filter(|t| t.is_servable()).collect()
            }
        }
    };
}

elem_types! {
    Undefined = 0, "UNDEFINED", false;
    Fp32 = 1, "FP32", true;
    Uint8 = 2, "UINT8", true;
    Int8 = 3, "INT8", true;
    Uint16 = 4, "UINT16", true;
    Int16 = 5, "INT16", true;
    Int32 = 6, "INT32", true;
    Int64 = 7, "INT64", true;
    String = 8, "STRING", false;
    Bool = 9, "BOOL", true;
    Fp16 = 10, "FP16", true;
    Fp64 = 11, "FP64", true;
    Uint32 = 12, "UINT32", true;
    Uint64 = 13, "UINT64", true;
    Complex64 = 14, "COMPLEX64", false;
    Complex128 = 15, "COMPLEX128", false;
    Bf16 = 16, "BF16", true;
    Fp8E4M3Fn = 17, "FP8E4M3FN", false;
    Fp8E4M3Fnuz = 18, "FP8E4M3FNUZ", false;
    Fp8E5M2 = 19, "FP8E5M2", false;
    Fp8E5M2Fnuz = 20, "FP8E5M2FNUZ", false;
    Uint4 = 21, "UINT4", false;
    Int4 = 22, "INT4", false;
    Fp4E2M1 = 23, "FP4E2M1", false;
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElemType::Other(code) => write!(f, "UNKNOWN({code})"),
            known => f.write_str(known.name()),
        }
    }
}

impl Serialize for ElemType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elem_type_codes_round_trip() {
        for code in 0..30 {
            assert_eq!(ElemType::from_onnx(code).onnx_code(), code);
        }
        assert_eq!(ElemType::from_onnx(1), ElemType::Fp32);
        assert_eq!(ElemType::from_onnx(8).to_string(), "STRING");
        assert_eq!(ElemType::from_onnx(99).to_string(), "UNKNOWN(99)");
    }

    #[test]
    fn strings_and_complex_are_not_servable() {
        let servable = ElemType::servable();
        assert!(servable.contains(&ElemType::Fp32));
        assert!(servable.contains(&ElemType::Bool));
        assert!(!servable.contains(&ElemType::String));
        assert!(!servable.contains(&ElemType::Complex64));
    }

    #[test]
    fn dims_print_like_a_shape() {
        let dims = [Dim::Symbolic("N".into()), Dim::Fixed(3), Dim::Unknown];
        assert_eq!(DimList(&dims).to_string(), "[N, 3, ?]");
        assert_eq!(serde_json::to_string(&dims).unwrap(), r#"["N",3,null]"#);
    }
}
