// SPDX-License-Identifier: MPL-2.0
//! A small writer of ONNX models, for the pixel steps that the graph backend hands to ONNX
//! Runtime. Only the protobuf fields these graphs use are declared (field numbers from
//! `onnx.proto`); the graphs are built once per element start and loaded from memory.

use prost::Message;

use crate::runtime::onnx_proto::{
    ATTR_FLOAT, ATTR_INT, ATTR_INTS, ATTR_STRING, AttributeProto, DimensionProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};

/// ONNX `TensorProto.DataType` values the graphs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Elem {
    Float = 1,
    Uint8 = 2,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
    Double = 11,
}

/// The opset the graphs are written against: GridSample needs 16; 17 is what the fixture models
/// use and every ONNX Runtime from 1.14 on runs.
const OPSET: i64 = 17;
/// IR 8 is the oldest IR that carries opset 17.
const IR_VERSION: i64 = 8;

/// One dimension of a graph input or output: fixed, or named and dynamic.
#[derive(Clone, Debug)]
pub enum Dim {
    Fixed(i64),
    Named(&'static str),
}

/// A node attribute.
pub enum Attr {
    Int(&'static str, i64),
    Float(&'static str, f32),
    Ints(&'static str, Vec<i64>),
    Str(&'static str, &'static str),
}

impl Attr {
    fn proto(self) -> AttributeProto {
        let base = |name: &str, r#type| AttributeProto { name: name.to_string(), r#type, ..AttributeProto::default() };
        match self {
            Attr::Int(name, i) => AttributeProto { i, ..base(name, ATTR_INT) },
            Attr::Float(name, f) => AttributeProto { f, ..base(name, ATTR_FLOAT) },
            Attr::Ints(name, ints) => AttributeProto { ints, ..base(name, ATTR_INTS) },
            Attr::Str(name, s) => AttributeProto { s: s.as_bytes().to_vec(), ..base(name, ATTR_STRING) },
        }
    }
}

/// A graph under construction. Values are named by the builder; each operation returns the name
/// of its (first) output.
#[derive(Default)]
pub struct Graph {
    graph: GraphProto,
    next: usize,
}

fn value_info(name: &str, elem: Elem, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(v) => DimensionProto { dim_value: Some(*v), dim_param: None },
            Dim::Named(p) => DimensionProto { dim_value: None, dim_param: Some(p.to_string()) },
        })
        .collect();
    let tensor_type = TensorTypeProto { elem_type: elem as i32, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto { name: name.to_string(), r#type: Some(TypeProto { tensor_type: Some(tensor_type) }) }
}

impl Graph {
    pub fn new(name: &str) -> Graph {
        Graph { graph: GraphProto { name: name.to_string(), ..GraphProto::default() }, next: 0 }
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: Elem, dims: &[Dim]) -> String {
        self.graph.input.push(value_info(name, elem, dims));
        name.to_string()
    }

    /// Declares `value` a graph output named `name` (through an Identity when they differ).
    pub fn output(&mut self, value: &str, name: &str, elem: Elem, dims: &[Dim]) {
        if value != name {
            self.node("Identity", &[value], &[name], Vec::new());
        }
        self.graph.output.push(value_info(name, elem, dims));
    }

    fn fresh(&mut self, op: &str) -> String {
        self.next += 1;
        format!("{}_{}", op.to_lowercase(), self.next)
    }

    fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) {
        let name = self.fresh(op);
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op.to_string(),
            attribute: attrs.into_iter().map(Attr::proto).collect(),
        });
    }

    /// An operation with several outputs, named `outputs`.
    pub fn node_multi(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) {
        self.node(op, inputs, outputs, attrs);
    }

    /// Declares the existing value `name` a graph output.
    pub fn declare_output(&mut self, name: &str, elem: Elem, dims: &[Dim]) {
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// An operation with one output.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        let out = self.fresh(op);
        self.node(op, inputs, &[&out], attrs);
        out
    }

    /// A constant of `dims` and `elem` whose values `values` holds (an empty `dims` is a scalar).
    fn constant(&mut self, elem: Elem, dims: &[i64], values: TensorProto) -> String {
        let name = self.fresh("const");
        self.graph.initializer.push(TensorProto {
            dims: dims.to_vec(),
            data_type: elem as i32,
            name: name.clone(),
            ..values
        });
        name
    }

    /// A float constant of `dims`.
    pub fn floats(&mut self, values: &[f32], dims: &[i64]) -> String {
        self.constant(Elem::Float, dims, TensorProto { float_data: values.to_vec(), ..TensorProto::default() })
    }

    /// A float64 constant of `dims` (stored as raw little-endian bytes).
    pub fn doubles(&mut self, values: &[f64], dims: &[i64]) -> String {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(Elem::Double, dims, TensorProto { raw_data: raw.into(), ..TensorProto::default() })
    }

    /// A float scalar constant.
    pub fn scalar(&mut self, value: f32) -> String {
        self.floats(&[value], &[])
    }

    /// An int64 constant of `dims`.
    pub fn ints(&mut self, values: &[i64], dims: &[i64]) -> String {
        self.constant(Elem::Int64, dims, TensorProto { int64_data: values.to_vec(), ..TensorProto::default() })
    }

    /// An int32 constant of `dims`.
    pub fn int32s(&mut self, values: &[i32], dims: &[i64]) -> String {
        self.constant(Elem::Int32, dims, TensorProto { int32_data: values.to_vec(), ..TensorProto::default() })
    }

    /// The serialised model.
    pub fn encode(self) -> Vec<u8> {
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "gstdlc".to_string(),
            graph: Some(self.graph),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        }
        .encode_to_vec()
    }
}
