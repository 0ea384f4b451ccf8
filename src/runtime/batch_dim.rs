// SPDX-License-Identifier: MPL-2.0
//! Making a model's batch dimension symbolic, so that one run serves several faces or pixel-boost
//! tiles. Most face-model exports fix the batch at 1 (inswapper_128's `target` is `[1,3,128,128]`,
//! and its style vector is reshaped to a constant `[1,1024,1,1]`), although nothing in their
//! graphs depends on it. The rewrite:
//! - turns the first dimension of every graph input and output that is fixed at 1 into the
//!   symbol [`BATCH_SYMBOL`];
//! - in the shape constants of `Reshape` nodes (initializers or `Constant` nodes) turns a leading
//!   1 into 0, ONNX's "the input's own dimension" (so `[1,1024,1,1]` becomes `[N,1024,1,1]` for an
//!   input of `[N,1024]`);
//! - drops the graph's intermediate shape annotations (`value_info`), which ONNX Runtime infers
//!   again.
//!
//! Whether the result really computes each batch item on its own is not something a rewrite can
//! know (a graph may mix items through a constant it does not recognise): [`check_batched`]
//! compares a batched run with single runs, and callers use the rewritten model only when it
//! passes.
//!
//! The rewrite works on protobuf's wire format and copies every field it does not change byte for
//! byte: a model is hundreds of megabytes of fields this crate's schema subset does not declare
//! ([`super::onnx_proto`]), which a decode and re-encode would lose.

use std::collections::HashSet;

use bytes::Bytes;
use ort::value::TensorElementType;
use prost::Message;

use super::onnx_proto::ModelProto;
use super::onnx_wire::{
    DATA_TYPE_INT64, Edit, WIRE_LEN, WIRE_VARINT, field, fields, put_len_field, read_varint, rewrite,
};
use super::{ModelSession, fill_host_f32, host_tensor, read_host_f32};

/// The name the rewritten inputs and outputs give their batch dimension.
pub const BATCH_SYMBOL: &str = "batch";

/// What the rewrite changed, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchRewrite {
    /// Graph inputs and outputs whose batch became [`BATCH_SYMBOL`].
    pub tensors: Vec<String>,
    /// Reshape shape constants whose leading 1 became 0.
    pub reshape_shapes: Vec<String>,
}

/// The model in `bytes` with a symbolic batch dimension (see the module text), and what changed.
/// Fails on bytes that are not an ONNX model, and when no input has a batch fixed at 1.
pub fn make_batch_symbolic(bytes: &[u8]) -> Result<(Vec<u8>, BatchRewrite), String> {
    // The schema subset is enough to find what to change; the change itself is made on the wire.
    let model = ModelProto::decode(Bytes::copy_from_slice(bytes)).map_err(|e| format!("not an ONNX protobuf: {e}"))?;
    let graph = model.graph.ok_or_else(|| "the model has no graph".to_string())?;
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let shape_constants: HashSet<String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Reshape" && !n.attribute.iter().any(|a| a.name == "allowzero" && a.i != 0))
        .filter_map(|n| n.input.get(1).cloned())
        .collect();
    let plan = Plan {
        // Older exports list initializers among the inputs: those are not batched.
        inputs: graph.input.iter().map(|i| i.name.clone()).filter(|n| !initializers.contains(n.as_str())).collect(),
        outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
        shape_constants,
    };
    let mut report = BatchRewrite::default();
    let rewritten = rewrite(bytes, &mut |number, wire, payload| match (number, wire) {
        (field::MODEL_GRAPH, WIRE_LEN) => Ok(Edit::Replace(rewrite_graph(payload, &plan, &mut report)?)),
        _ => Ok(Edit::Keep),
    })?;
    if !report.tensors.iter().any(|t| plan.inputs.contains(t)) {
        return Err("no input of the model has its batch fixed at 1".to_string());
    }
    Ok((rewritten, report))
}

/// The names the rewrite looks for.
struct Plan {
    inputs: Vec<String>,
    outputs: Vec<String>,
    shape_constants: HashSet<String>,
}

fn rewrite_graph(graph: &[u8], plan: &Plan, report: &mut BatchRewrite) -> Result<Vec<u8>, String> {
    rewrite(graph, &mut |number, wire, payload| {
        Ok(match (number, wire) {
            (field::GRAPH_INPUT | field::GRAPH_OUTPUT, WIRE_LEN) => {
                let name = string_field(payload, field::VALUE_INFO_NAME)?;
                let listed = if number == field::GRAPH_INPUT { &plan.inputs } else { &plan.outputs };
                if !listed.contains(&name) {
                    return Ok(Edit::Keep);
                }
                match batch_symbolic_value_info(payload)? {
                    Some(changed) => {
                        report.tensors.push(name);
                        Edit::Replace(changed)
                    }
                    None => Edit::Keep,
                }
            }
            (field::GRAPH_VALUE_INFO, _) => Edit::Drop,
            (field::GRAPH_INITIALIZER, WIRE_LEN) => {
                let name = string_field(payload, field::TENSOR_NAME)?;
                match plan.shape_constants.contains(&name).then(|| keep_leading_dim(payload)).transpose()? {
                    Some(Some(changed)) => {
                        report.reshape_shapes.push(name);
                        Edit::Replace(changed)
                    }
                    _ => Edit::Keep,
                }
            }
            (field::GRAPH_NODE, WIRE_LEN) => {
                // A `Constant` node whose output is a reshape's shape: its `value` tensor.
                let outputs = string_fields(payload, field::NODE_OUTPUT)?;
                match outputs.iter().find(|o| plan.shape_constants.contains(*o)) {
                    Some(output) => match rewrite_constant_node(payload)? {
                        Some(changed) => {
                            report.reshape_shapes.push(output.clone());
                            Edit::Replace(changed)
                        }
                        None => Edit::Keep,
                    },
                    None => Edit::Keep,
                }
            }
            _ => Edit::Keep,
        })
    })
}

/// A `ValueInfoProto` whose first dimension, fixed at 1, becomes [`BATCH_SYMBOL`]; `None` when
/// it has no such dimension.
fn batch_symbolic_value_info(value_info: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut changed = false;
    let out = rewrite(value_info, &mut |number, wire, payload| {
        if (number, wire) != (field::VALUE_INFO_TYPE, WIRE_LEN) {
            return Ok(Edit::Keep);
        }
        let ty = rewrite(payload, &mut |number, wire, payload| {
            if (number, wire) != (field::TYPE_TENSOR, WIRE_LEN) {
                return Ok(Edit::Keep);
            }
            let tensor = rewrite(payload, &mut |number, wire, payload| {
                if (number, wire) != (field::TENSOR_TYPE_SHAPE, WIRE_LEN) {
                    return Ok(Edit::Keep);
                }
                let mut first = true;
                let shape = rewrite(payload, &mut |number, wire, payload| {
                    if (number, wire) != (field::SHAPE_DIM, WIRE_LEN) || !std::mem::take(&mut first) {
                        return Ok(Edit::Keep);
                    }
                    if varint_field(payload, field::DIM_VALUE)? != Some(1) {
                        return Ok(Edit::Keep);
                    }
                    changed = true;
                    let mut dim = Vec::new();
                    put_len_field(&mut dim, field::DIM_PARAM, BATCH_SYMBOL.as_bytes());
                    Ok(Edit::Replace(dim))
                })?;
                Ok(Edit::Replace(shape))
            })?;
            Ok(Edit::Replace(tensor))
        })?;
        Ok(Edit::Replace(ty))
    })?;
    Ok(changed.then_some(out))
}

/// A `Constant` node whose `value` tensor is a shape with a leading 1, with that 1 made 0.
fn rewrite_constant_node(node: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut changed = false;
    let out = rewrite(node, &mut |number, wire, payload| {
        if (number, wire) != (field::NODE_ATTRIBUTE, WIRE_LEN)
            || string_field(payload, field::ATTRIBUTE_NAME)? != "value"
        {
            return Ok(Edit::Keep);
        }
        let attribute = rewrite(payload, &mut |number, wire, payload| {
            if (number, wire) != (field::ATTRIBUTE_TENSOR, WIRE_LEN) {
                return Ok(Edit::Keep);
            }
            Ok(match keep_leading_dim(payload)? {
                Some(tensor) => {
                    changed = true;
                    Edit::Replace(tensor)
                }
                None => Edit::Keep,
            })
        })?;
        Ok(Edit::Replace(attribute))
    })?;
    Ok(changed.then_some(out))
}

/// A one-dimensional int64 `TensorProto` (a reshape's target shape) whose first value is 1,
/// rewritten with 0 there; `None` for any other tensor.
fn keep_leading_dim(tensor: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if varint_field(tensor, field::TENSOR_DATA_TYPE)? != Some(i64::from(DATA_TYPE_INT64)) {
        return Ok(None);
    }
    let dims = fields(tensor)?.into_iter().filter(|f| f.number == field::TENSOR_DIMS).count();
    let mut changed = false;
    let out = rewrite(tensor, &mut |number, wire, payload| {
        Ok(match (number, wire) {
            // Little-endian int64 values.
            (field::TENSOR_RAW_DATA, WIRE_LEN) if payload.len() >= 8 && payload[..8] == 1i64.to_le_bytes() => {
                changed = true;
                let mut values = payload.to_vec();
                values[..8].copy_from_slice(&0i64.to_le_bytes());
                Edit::Replace(values)
            }
            // Packed varints; the first value is one byte when it is 1.
            (field::TENSOR_INT64_DATA, WIRE_LEN) if payload.first() == Some(&1) => {
                changed = true;
                let mut values = payload.to_vec();
                values[0] = 0;
                Edit::Replace(values)
            }
            // One unpacked value (the first one, as `changed` is still false).
            (field::TENSOR_INT64_DATA, WIRE_VARINT) if !changed && payload == [1] => {
                changed = true;
                Edit::ReplaceVarint(0)
            }
            _ => Edit::Keep,
        })
    })?;
    Ok((changed && dims == 1).then_some(out))
}

fn string_fields(message: &[u8], number: u32) -> Result<Vec<String>, String> {
    Ok(fields(message)?
        .into_iter()
        .filter(|f| f.number == number && f.wire == WIRE_LEN)
        .map(|f| String::from_utf8_lossy(f.payload).into_owned())
        .collect())
}

fn string_field(message: &[u8], number: u32) -> Result<String, String> {
    Ok(string_fields(message, number)?.into_iter().next().unwrap_or_default())
}

fn varint_field(message: &[u8], number: u32) -> Result<Option<i64>, String> {
    for f in fields(message)? {
        if f.number == number && f.wire == WIRE_VARINT {
            return Ok(Some(read_varint(f.payload, &mut 0)? as i64));
        }
    }
    Ok(None)
}

/// How far a batched run may stray from single runs: kernels chosen for another batch size sum
/// in another order, while a graph that mixes batch items is off by the size of its outputs.
/// `reduced_precision`: float16 outputs, or a model on an NVIDIA GPU, whose float32 convolutions
/// run in TF32 (ONNX Runtime's CUDA default: a 10-bit mantissa, as float16's), where the fp32
/// inswapper fixture's batch of 3 strays by 0.0014 on an H100.
pub fn batch_tolerance(reduced_precision: bool) -> f32 {
    if reduced_precision { 2e-2 } else { 1e-3 }
}

/// Checks that `model` (with a symbolic batch) gives for a batch of `n` what it gives for each
/// item alone: `inputs` holds, per model input in order, its shape for one item (batch 1) and
/// `n` items' values. Returns the largest absolute difference over every output, or why the
/// batched run failed; the caller compares it with [`batch_tolerance`].
pub fn check_batched(model: &mut ModelSession, n: usize, inputs: &[(Vec<usize>, Vec<f32>)]) -> Result<f32, String> {
    let elements: Vec<TensorElementType> = (model.io.inputs.iter())
        .map(|s| match s.element {
            Some(element @ (TensorElementType::Float16 | TensorElementType::Float64)) => element,
            _ => TensorElementType::Float32,
        })
        .collect();
    let run = |model: &mut ModelSession, batch: usize, first: usize| -> Result<Vec<Vec<f32>>, String> {
        let mut binding = model.binding()?;
        let mut tensors = Vec::new();
        let mut scratch = Vec::new();
        for (i, (shape, values)) in inputs.iter().enumerate() {
            let mut batched_shape = shape.clone();
            batched_shape[0] = batch;
            let item_len: usize = shape.iter().product();
            let element = elements.get(i).copied().unwrap_or(TensorElementType::Float32);
            let mut tensor = host_tensor(&batched_shape, element)?;
            let items = &values[first * item_len..(first + batch) * item_len];
            fill_host_f32(&mut tensor, &mut scratch, |v| v.copy_from_slice(items))?;
            tensors.push(tensor);
        }
        for (spec, tensor) in model.io.inputs.iter().zip(&tensors) {
            binding.bind_input(&spec.name, tensor).map_err(|e| format!("cannot bind input '{}': {e}", spec.name))?;
        }
        for spec in &model.io.outputs {
            ModelSession::bind_output_to_host(&mut binding, &spec.name)?;
        }
        let outputs = model.run(&binding)?;
        let mut values = Vec::new();
        for i in 0..outputs.len() {
            values.push(read_host_f32(&outputs[i], &mut scratch)?.to_vec());
        }
        Ok(values)
    };
    let batched = run(model, n, 0)?;
    let mut worst = 0.0f32;
    for item in 0..n {
        let single = run(model, 1, item)?;
        for (all, one) in batched.iter().zip(&single) {
            if all.len() != one.len() * n {
                return Err(format!(
                    "a batch of {n} gave {} output values where one item gives {}",
                    all.len(),
                    one.len()
                ));
            }
            let part = &all[item * one.len()..(item + 1) * one.len()];
            for (a, b) in part.iter().zip(one) {
                let d = (a - b).abs();
                worst = if d.is_nan() { f32::INFINITY } else { worst.max(d) };
            }
        }
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::graph::onnx::{Dim, Elem, Graph};
    use crate::runtime::{ExecutionProvider, SessionOptions};

    /// A swapper-shaped graph with its batch fixed at 1: `out = target + reshape(source · w)`,
    /// the style vector reshaped through a constant `[1, C, 1, 1]`.
    fn batch_one_model() -> Vec<u8> {
        let mut g = Graph::new("batch_one");
        let target = g.input("target", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2), Dim::Fixed(2)]);
        let source = g.input("source", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(3)]);
        let w = g.floats(&[1.0, -2.0, 0.5, 3.0, 0.25, -1.0], &[3, 2]);
        let style = g.op("MatMul", &[&source, &w], Vec::new());
        let shape = g.ints(&[1, 2, 1, 1], &[4]);
        let style4 = g.op("Reshape", &[&style, &shape], Vec::new());
        let out = g.op("Add", &[&target, &style4], Vec::new());
        g.output(&out, "output", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2), Dim::Fixed(2)]);
        g.encode()
    }

    fn cpu_session(bytes: &[u8]) -> ModelSession {
        let options = SessionOptions { provider: ExecutionProvider::Cpu, ..SessionOptions::default() };
        ModelSession::open_memory("batch test", bytes, &options).expect("a session")
    }

    #[test]
    fn the_batch_becomes_symbolic_and_reshapes_keep_the_input_batch() {
        let (bytes, report) = make_batch_symbolic(&batch_one_model()).expect("a rewrite");
        assert_eq!(report.tensors, ["target", "source", "output"]);
        assert_eq!(report.reshape_shapes.len(), 1);
        let mut model = cpu_session(&bytes);
        assert!(model.io.inputs.iter().all(|i| i.shape[0] < 0), "{}", model.io);
        let n = 3;
        let target: Vec<f32> = (0..n * 8).map(|i| i as f32 * 0.1).collect();
        let source: Vec<f32> = (0..n * 3).map(|i| (i as f32 - 4.0) * 0.3).collect();
        let worst = check_batched(&mut model, n, &[(vec![1, 2, 2, 2], target), (vec![1, 3], source)]).expect("runs");
        assert!(worst <= batch_tolerance(false), "{worst}");
    }

    #[test]
    fn a_graph_that_mixes_the_batch_fails_the_check() {
        // The style is summed over the batch (ReduceSum over axis 0): per item, a batch of 3
        // differs from single runs, which the check must see.
        let mut g = Graph::new("mixing");
        let target = g.input("target", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2)]);
        let axes = g.ints(&[0], &[1]);
        let total = g.op("ReduceSum", &[&target, &axes], vec![crate::backend::graph::onnx::Attr::Int("keepdims", 1)]);
        let out = g.op("Add", &[&target, &total], Vec::new());
        g.output(&out, "output", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2)]);
        let (bytes, _) = make_batch_symbolic(&g.encode()).expect("a rewrite");
        let mut model = cpu_session(&bytes);
        let worst = check_batched(&mut model, 3, &[(vec![1, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]).expect("runs");
        assert!(worst > batch_tolerance(false), "{worst}");
    }

    #[test]
    fn fields_the_rewrite_does_not_touch_are_copied_byte_for_byte() {
        let original = batch_one_model();
        let (bytes, _) = make_batch_symbolic(&original).expect("a rewrite");
        // The same model apart from the rewritten fields: the initializer holding the weights
        // is still there, bit for bit.
        let weights: Vec<u8> = [1.0f32, -2.0, 0.5, 3.0, 0.25, -1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let find = |hay: &[u8]| hay.windows(4).any(|w| w == &weights[..4]);
        assert!(find(&original) && find(&bytes));
        // A model with nothing to rewrite is refused, not silently copied.
        let (already, _) = make_batch_symbolic(&original).expect("a rewrite");
        assert!(make_batch_symbolic(&already).unwrap_err().contains("no input"));
        assert!(make_batch_symbolic(b"\x0a\x05hello").is_err());
    }
}
