// SPDX-License-Identifier: MPL-2.0
//! Model-independent ONNX rewrites for the CoreML provider. ONNX Runtime's CoreML provider runs
//! a model as partitions of the operators CoreML takes; an operator it does not take (reflection
//! padding, Split) cuts the model, and every cut costs a round trip through the CPU. Rewritten
//! into operators CoreML takes, the same computation stays in fewer partitions:
//!
//! - `Pad(mode=reflect)` becomes one-row `Slice`s of the edge rows, in mirror order, and a
//!   `Concat` per padded axis (what Deep-Live-Cam does to inswapper_128's ResNet blocks);
//! - `Split` with known part sizes becomes one `Slice` per part (GFPGAN's).
//!
//! The third of Deep-Live-Cam's rewrites, folding `Shape → Gather → …` chains to constants,
//! needs every input dimension fixed: [`SessionOptions::dimension_overrides`] fixes them, and ONNX
//! Runtime then folds the chains itself when it makes the session.
//!
//! Each rewrite computes what it replaces bit for bit (slices and concatenations move values
//! without arithmetic); the tests check it on the CPU provider on every fixture model and the real
//! detectors. The model is edited at the protobuf wire level: every field of the file that a
//! rewrite does not touch is copied as it was, including those `onnx_proto` does not declare.
//!
//! [`SessionOptions::dimension_overrides`]: super::SessionOptions::dimension_overrides

use std::collections::{HashMap, HashSet};

use prost::Message;

use super::onnx_proto::{ATTR_INTS, ATTR_TENSOR, AttributeProto, NodeProto, OperatorSetIdProto, TensorProto};
use super::onnx_wire::{DATA_TYPE_INT64, field, fields, put_len_field};

/// What the rewrites changed in one model.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Rewritten {
    /// `Pad(mode=reflect)` nodes replaced.
    pub reflect_pads: usize,
    /// `Split` nodes replaced.
    pub splits: usize,
}

impl Rewritten {
    pub(crate) fn any(&self) -> bool {
        self.reflect_pads + self.splits > 0
    }
}

/// The model `bytes` with every rewrite applied, and what changed; `None` when nothing applies
/// (the caller keeps the file as it is). An error names what in the file could not be read.
pub(crate) fn rewrite_for_coreml(bytes: &[u8]) -> Result<Option<(Vec<u8>, Rewritten)>, String> {
    let model = fields(bytes).map_err(|e| format!("the model file: {e}"))?;
    let opset = model
        .iter()
        .filter(|f| f.number == field::MODEL_OPSET_IMPORT)
        .filter_map(|f| OperatorSetIdProto::decode(f.payload).ok())
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let Some(graph_field) = model.iter().find(|f| f.number == field::MODEL_GRAPH) else {
        return Ok(None);
    };
    let Some((graph, rewritten)) = rewrite_graph(graph_field.payload, opset)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(bytes.len() + graph.len() - graph_field.payload.len());
    for field in &model {
        if field.number == field::MODEL_GRAPH {
            put_len_field(&mut out, field::MODEL_GRAPH, &graph);
        } else {
            out.extend_from_slice(field.whole);
        }
    }
    Ok(Some((out, rewritten)))
}

/// The graph with its rewritable nodes replaced, in place (the node order stays topological),
/// and the constants the replacements use appended as initializers.
fn rewrite_graph(bytes: &[u8], opset: i64) -> Result<Option<(Vec<u8>, Rewritten)>, String> {
    let graph = fields(bytes).map_err(|e| format!("the graph: {e}"))?;
    let mut nodes = Vec::new();
    let mut names = HashSet::new();
    let mut constants = HashMap::new();
    for field in &graph {
        match field.number {
            field::GRAPH_NODE => {
                let node = NodeProto::decode(field.payload).map_err(|e| format!("a node: {e}"))?;
                names.extend(node.output.iter().cloned());
                let domain = node_domain(field.payload);
                if let Some(value) = constant_node_ints(&node, &domain, field.payload) {
                    constants.insert(node.output[0].clone(), value);
                }
                nodes.push(Some((node, domain)));
            }
            field::GRAPH_INITIALIZER => {
                let tensor = TensorProto::decode(field.payload).map_err(|e| format!("an initializer: {e}"))?;
                if tensor.data_location != 0 {
                    // Weights in a file beside the model are found relative to the model's
                    // folder, which a model loaded from memory has not got.
                    return Ok(None);
                }
                names.insert(tensor.name.clone());
                if let Some(value) = int64_values(&tensor) {
                    constants.insert(tensor.name.clone(), value);
                }
                nodes.push(None);
            }
            field::GRAPH_INPUT => {
                // A graph input may override an initializer of its name (IR < 4): not a constant.
                if let Ok(input) = super::onnx_proto::ValueInfoProto::decode(field.payload) {
                    constants.remove(&input.name);
                    names.insert(input.name);
                }
                nodes.push(None);
            }
            _ => nodes.push(None),
        }
    }
    // Graph inputs come after the nodes on the wire in some files: drop their names again.
    for field in graph.iter().filter(|f| f.number == field::GRAPH_INPUT) {
        if let Ok(input) = super::onnx_proto::ValueInfoProto::decode(field.payload) {
            constants.remove(&input.name);
        }
    }

    let mut rewriter = Rewriter { names, constants, opset, initializers: Vec::new(), counter: 0 };
    let mut rewritten = Rewritten::default();
    let mut replacements: Vec<Option<Vec<NodeProto>>> = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let replacement =
            node.as_ref().and_then(|(node, domain)| match (domain_is_default(domain), node.op_type.as_str()) {
                (true, "Pad") => rewriter.reflect_pad(node).inspect(|_| rewritten.reflect_pads += 1),
                (true, "Split") => rewriter.split(node).inspect(|_| rewritten.splits += 1),
                _ => None,
            });
        replacements.push(replacement);
    }
    if !rewritten.any() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(bytes.len() + 1024);
    for (field, replacement) in graph.iter().zip(replacements) {
        match replacement {
            Some(new_nodes) => {
                for node in new_nodes {
                    put_len_field(&mut out, field::GRAPH_NODE, &node.encode_to_vec());
                }
            }
            None => out.extend_from_slice(field.whole),
        }
    }
    for tensor in rewriter.initializers {
        put_len_field(&mut out, field::GRAPH_INITIALIZER, &tensor.encode_to_vec());
    }
    Ok(Some((out, rewritten)))
}

/// The int64 values of a `Constant` node's `value` tensor (what exporters use for pads and
/// split sizes as often as initializers).
fn constant_node_ints(node: &NodeProto, domain: &str, wire: &[u8]) -> Option<Vec<i64>> {
    if node.op_type != "Constant" || node.output.len() != 1 || !domain_is_default(domain) {
        return None;
    }
    fields(wire)
        .ok()?
        .iter()
        .filter(|f| f.number == 5)
        .filter_map(|f| TensorAttribute::decode(f.payload).ok())
        .find(|a| a.name == "value" && a.r#type == ATTR_TENSOR)
        .and_then(|a| a.t)
        .and_then(|t| int64_values(&t))
}

/// Whether a node's domain is ONNX's own (empty, or spelt out).
fn domain_is_default(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// `NodeProto.domain` (field 7, which `onnx_proto` does not declare), from the node's wire bytes.
fn node_domain(wire: &[u8]) -> String {
    fields(wire)
        .ok()
        .and_then(|f| f.iter().find(|f| f.number == 7).map(|f| String::from_utf8_lossy(f.payload).into_owned()))
        .unwrap_or_default()
}

/// The part of `AttributeProto` a `Constant` node's tensor is in (`t`, field 5).
#[derive(Clone, PartialEq, Message)]
struct TensorAttribute {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "5")]
    t: Option<TensorProto>,
    #[prost(int32, tag = "20")]
    r#type: i32,
}

/// An int64 tensor's values, from either of the two places a file may keep them.
fn int64_values(tensor: &TensorProto) -> Option<Vec<i64>> {
    if tensor.data_type != DATA_TYPE_INT64 || tensor.data_location != 0 {
        return None;
    }
    if !tensor.raw_data.is_empty() {
        let chunks = tensor.raw_data.chunks_exact(8);
        if !chunks.remainder().is_empty() {
            return None;
        }
        return Some(chunks.map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default())).collect());
    }
    Some(tensor.int64_data.clone())
}

struct Rewriter {
    /// Every value name in the graph, so that new names never clash.
    names: HashSet<String>,
    /// The int64 constants (initializers and `Constant` nodes) by name.
    constants: HashMap<String, Vec<i64>>,
    opset: i64,
    initializers: Vec<TensorProto>,
    counter: usize,
}

impl Rewriter {
    fn fresh(&mut self, base: &str) -> String {
        loop {
            self.counter += 1;
            let name = format!("{base}_gstdlc_coreml_{}", self.counter);
            if self.names.insert(name.clone()) {
                return name;
            }
        }
    }

    fn ints(&mut self, base: &str, values: &[i64]) -> String {
        let name = self.fresh(base);
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: DATA_TYPE_INT64,
            int64_data: values.to_vec(),
            name: name.clone(),
            ..TensorProto::default()
        });
        name
    }

    fn constant(&self, name: Option<&String>) -> Option<Vec<i64>> {
        self.constants.get(name.filter(|n| !n.is_empty())?).cloned()
    }

    /// `data[start:end]` along `axis`, into `output`.
    fn slice(&mut self, base: &str, data: &str, (start, end): (i64, i64), axis: i64, output: &str) -> NodeProto {
        let starts = self.ints(base, &[start]);
        let ends = self.ints(base, &[end]);
        let axes = self.ints(base, &[axis]);
        node("Slice", self.fresh(base), &[data, &starts, &ends, &axes], &[output], Vec::new())
    }

    /// Reflection padding as slices and concatenations, axis by axis: the rows `b..1` before
    /// the data and `n-2..n-1-e` after it (reflection leaves the edge row out). Only when the pads
    /// (and axes) are constants and none is negative (a crop); opsets before 11 keep pads in an
    /// attribute, and are left alone.
    fn reflect_pad(&mut self, pad: &NodeProto) -> Option<Vec<NodeProto>> {
        let mode = pad.attribute.iter().find(|a| a.name == "mode").map(|a| a.s.as_slice());
        if self.opset < 11 || mode != Some(b"reflect".as_slice()) || pad.output.len() != 1 {
            return None;
        }
        let pads = self.constant(pad.input.get(1))?;
        let axes = match pad.input.get(3).filter(|a| !a.is_empty()) {
            Some(_) => self.constant(pad.input.get(3))?,
            None => (0..pads.len() as i64 / 2).collect(),
        };
        if pads.len() != 2 * axes.len() || pads.iter().any(|&p| p < 0) {
            return None;
        }
        let base = if pad.name.is_empty() { "pad".to_string() } else { pad.name.clone() };
        let padded: Vec<(i64, i64, i64)> = axes
            .iter()
            .enumerate()
            .map(|(i, &axis)| (axis, pads[i], pads[i + axes.len()]))
            .filter(|&(_, before, after)| before + after > 0)
            .collect();
        let last = padded.len().checked_sub(1)?;
        let mut nodes = Vec::new();
        let mut current = pad.input[0].clone();
        for (n, &(axis, before, after)) in padded.iter().enumerate() {
            let mut parts = Vec::new();
            for row in (1..=before).rev() {
                let part = self.fresh(&base);
                nodes.push(self.slice(&base, &current, (row, row + 1), axis, &part));
                parts.push(part);
            }
            parts.push(current.clone());
            for k in 0..after {
                let part = self.fresh(&base);
                nodes.push(self.slice(&base, &current, (-k - 2, -k - 1), axis, &part));
                parts.push(part);
            }
            let output = if n == last { pad.output[0].clone() } else { self.fresh(&base) };
            let inputs: Vec<&str> = parts.iter().map(String::as_str).collect();
            let axis_attribute = AttributeProto { name: "axis".into(), i: axis, r#type: 2, ..Default::default() };
            nodes.push(node("Concat", self.fresh(&base), &inputs, &[&output], vec![axis_attribute]));
            current = output;
        }
        Some(nodes)
    }

    /// A `Split` whose part sizes are known (its `split` attribute before opset 13, a constant
    /// input from 13 on) as one `Slice` per part; an equal split of an unknown size is left
    /// alone.
    fn split(&mut self, split: &NodeProto) -> Option<Vec<NodeProto>> {
        let axis = split.attribute.iter().find(|a| a.name == "axis").map_or(0, |a| a.i);
        let sizes = if self.opset < 13 {
            split.attribute.iter().find(|a| a.name == "split" && a.r#type == ATTR_INTS).map(|a| a.ints.clone())?
        } else {
            self.constant(split.input.get(1))?
        };
        if sizes.len() != split.output.len() || sizes.iter().any(|&s| s < 0) {
            return None;
        }
        let base = if split.name.is_empty() { "split".to_string() } else { split.name.clone() };
        let mut nodes = Vec::new();
        let mut start = 0;
        for (size, output) in sizes.iter().zip(&split.output) {
            // An unnamed output is one the graph does not use.
            if !output.is_empty() {
                nodes.push(self.slice(&base, &split.input[0], (start, start + size), axis, output));
            }
            start += size;
        }
        Some(nodes)
    }
}

fn node(op: &str, name: String, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name,
        op_type: op.to_string(),
        attribute,
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use ort::value::{Tensor, TensorElementType};

    use super::super::onnx_proto::{
        ATTR_STRING, DimensionProto, GraphProto, ModelProto, TensorShapeProto, TensorTypeProto, TypeProto,
        ValueInfoProto,
    };
    use super::super::{ExecutionProvider, ModelSession, SessionOptions};
    use super::*;

    /// Whether ONNX Runtime is there for the tests that run models; without it they skip, but
    /// under `make test` (DLC_REQUIRE_ALL) they fail.
    fn have_ort() -> bool {
        let there = std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| Path::new(&p).is_file());
        if !there && std::env::var_os("DLC_REQUIRE_ALL").is_some() {
            panic!("prerequisite missing under make test: ORT_DYLIB_PATH is not set");
        }
        there
    }

    fn float_input(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims.iter().map(|&d| DimensionProto { dim_value: Some(d), dim_param: None }).collect();
        let tensor_type = TensorTypeProto { elem_type: 1, shape: Some(TensorShapeProto { dim }) };
        ValueInfoProto { name: name.into(), r#type: Some(TypeProto { tensor_type: Some(tensor_type) }) }
    }

    fn ints_tensor(name: &str, values: &[i64]) -> TensorProto {
        TensorProto {
            dims: vec![values.len() as i64],
            data_type: DATA_TYPE_INT64,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into(),
            ..TensorProto::default()
        }
    }

    fn string_attribute(name: &str, value: &str) -> AttributeProto {
        AttributeProto { name: name.into(), s: value.as_bytes().to_vec(), r#type: ATTR_STRING, ..Default::default() }
    }

    /// A `Constant` node holding `values`, written at the wire level (`onnx_proto` does not
    /// declare an attribute's tensor).
    fn constant_node(output: &str, values: &[i64]) -> Vec<u8> {
        let attribute = TensorAttribute { name: "value".into(), t: Some(ints_tensor("", values)), r#type: ATTR_TENSOR }
            .encode_to_vec();
        let mut wire = node("Constant", format!("{output}_node"), &[], &[output], Vec::new()).encode_to_vec();
        put_len_field(&mut wire, 5, &attribute);
        wire
    }

    /// A model in the shape of the patterns the rewrites look for: reflection padding of a
    /// 1×3×7×6 input by pads from a `Constant` node (two axes, unequal sides) and by an
    /// initializer (one side of one axis, with opset 18's `axes`), an opset-13 `Split` into three,
    /// and a Pad in another mode, which stays. Fields `onnx_proto` does not declare are written in
    /// too: the model's `doc_string`, the graph's `value_info` and a node's `domain`.
    fn patterned_model() -> Vec<u8> {
        let mut graph = GraphProto {
            name: "patterns".into(),
            input: vec![float_input("x", &[1, 3, 7, 6])],
            output: vec![float_input("a", &[]), float_input("b", &[]), float_input("c", &[]), float_input("d", &[])],
            initializer: vec![
                ints_tensor("pads_w", &[0, 2]),
                ints_tensor("axes_w", &[3]),
                ints_tensor("parts", &[1, 5, 6]),
                ints_tensor("pads_const", &[0, 0, 1, 1, 0, 0, 1, 1]),
            ],
            ..GraphProto::default()
        };
        let reflect = || vec![string_attribute("mode", "reflect")];
        graph.node = vec![
            node("Pad", "pad_hw".into(), &["x", "pads_hw"], &["p1"], reflect()),
            node("Pad", "pad_w".into(), &["p1", "pads_w", "", "axes_w"], &["p2"], reflect()),
            node(
                "Split",
                "split".into(),
                &["p2", "parts"],
                &["a", "b", "c"],
                vec![AttributeProto { name: "axis".into(), i: 2, r#type: 2, ..Default::default() }],
            ),
            node("Pad", "pad_edge".into(), &["x", "pads_const"], &["d"], vec![string_attribute("mode", "edge")]),
        ];
        let mut graph_wire = Vec::new();
        put_len_field(&mut graph_wire, field::GRAPH_NODE, &constant_node("pads_hw", &[0, 0, 2, 1, 0, 0, 3, 2]));
        let mut graph_bytes = graph.encode_to_vec();
        graph_wire.append(&mut graph_bytes);
        // GraphProto.value_info (13): undeclared in onnx_proto.
        put_len_field(&mut graph_wire, 13, &float_input("p1", &[1, 3, 12, 9]).encode_to_vec());
        let model = ModelProto {
            ir_version: 8,
            producer_name: "gstdlc tests".into(),
            graph: None,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 18 }],
        };
        let mut wire = model.encode_to_vec();
        put_len_field(&mut wire, field::MODEL_GRAPH, &graph_wire);
        // ModelProto.doc_string (6): undeclared.
        put_len_field(&mut wire, 6, b"kept as it was");
        wire
    }

    #[test]
    fn reflect_pads_and_splits_are_rewritten_and_the_rest_is_copied_as_it_was() {
        let model = patterned_model();
        let (rewritten, what) = rewrite_for_coreml(&model).unwrap().expect("the patterns are rewritten");
        assert_eq!(what, Rewritten { reflect_pads: 2, splits: 1 });
        let top = fields(&rewritten).unwrap();
        let doc = top.iter().find(|f| f.number == 6).expect("the model's doc_string is kept");
        assert_eq!(doc.payload, b"kept as it was");
        let graph = fields(top.iter().find(|f| f.number == field::MODEL_GRAPH).unwrap().payload).unwrap();
        assert!(graph.iter().any(|f| f.number == 13), "the graph's value_info is kept");
        let ops: Vec<String> = graph
            .iter()
            .filter(|f| f.number == field::GRAPH_NODE)
            .map(|f| NodeProto::decode(f.payload).unwrap().op_type)
            .collect();
        assert_eq!(ops.iter().filter(|op| *op == "Pad").count(), 1, "only the edge Pad stays: {ops:?}");
        assert!(!ops.iter().any(|op| op == "Split"), "{ops:?}");
        // Two axes of pads 2+3 and 1+2 rows, then one axis of 2: a slice per row, a concat per axis.
        assert_eq!(ops.iter().filter(|op| *op == "Slice").count(), 5 + 3 + 2 + 3, "{ops:?}");
        assert_eq!(ops.iter().filter(|op| *op == "Concat").count(), 3, "{ops:?}");
        // Every field of the original graph but the rewritten nodes is still there, byte for
        // byte, in order.
        let rewritten_node = |field: &super::super::onnx_wire::Field| {
            let Ok(node) = NodeProto::decode(field.payload) else { return false };
            let reflect = node.attribute.iter().any(|a| a.name == "mode" && a.s == b"reflect");
            field.number == field::GRAPH_NODE && (node.op_type == "Split" || (node.op_type == "Pad" && reflect))
        };
        let original_graph =
            fields(&model).unwrap().into_iter().find(|f| f.number == field::MODEL_GRAPH).unwrap().payload;
        let untouched: Vec<&[u8]> =
            fields(original_graph).unwrap().iter().filter(|f| !rewritten_node(f)).map(|f| f.whole).collect();
        let kept: Vec<&[u8]> = graph.iter().map(|f| f.whole).collect();
        let mut next = 0;
        for field in untouched {
            next += kept[next..].iter().position(|k| *k == field).expect("an untouched field is kept, in order") + 1;
        }
    }

    #[test]
    fn a_model_without_the_patterns_is_left_as_it_is() {
        let mut model = patterned_model();
        // Opset 10: Pad keeps its pads in an attribute and Split its sizes likewise, which the
        // rewrites leave alone; nothing is rewritten, the caller keeps the file.
        let top = fields(&model).unwrap();
        let mut old_opset = Vec::new();
        for field in &top {
            if field.number == field::MODEL_OPSET_IMPORT {
                let opset = OperatorSetIdProto { domain: String::new(), version: 10 };
                put_len_field(&mut old_opset, field::MODEL_OPSET_IMPORT, &opset.encode_to_vec());
            } else {
                old_opset.extend_from_slice(field.whole);
            }
        }
        model = old_opset;
        assert_eq!(rewrite_for_coreml(&model).unwrap(), None);
        assert!(rewrite_for_coreml(b"\x0a\x05abc").is_err(), "a truncated file is an error, not a guess");
    }

    /// Runs `model` on the CPU provider with every float input filled with the same
    /// deterministic values, returning each output's values as bits (dynamic dimensions: 1).
    fn cpu_outputs(model: &[u8], shown: &str) -> Vec<(String, Vec<u32>)> {
        let options = SessionOptions { provider: ExecutionProvider::Cpu, ..Default::default() };
        let mut session = ModelSession::open_memory(shown, model, &options).unwrap_or_else(|e| panic!("{shown}: {e}"));
        let mut binding = session.binding().unwrap();
        let mut tensors = Vec::new();
        for input in &session.io.inputs {
            assert_eq!(input.element, Some(TensorElementType::Float32), "{shown}: input {input}");
            let shape: Vec<usize> = input.shape.iter().map(|&d| d.max(1) as usize).collect();
            let count: usize = shape.iter().product();
            let values: Vec<f32> = (0..count).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
            let tensor = Tensor::from_array((shape, values.into_boxed_slice())).unwrap().upcast();
            tensors.push((input.name.clone(), tensor));
        }
        for (name, tensor) in &tensors {
            binding.bind_input(name, tensor).unwrap();
        }
        let names: Vec<String> = session.io.outputs.iter().map(|o| o.name.clone()).collect();
        for name in &names {
            ModelSession::bind_output_to_host(&mut binding, name).unwrap();
        }
        let outputs = session.run(&binding).unwrap_or_else(|e| panic!("{shown}: {e}"));
        names
            .iter()
            .map(|name| {
                let (_, values) = outputs[name.as_str()].try_extract_tensor::<f32>().unwrap();
                (name.clone(), values.iter().map(|v| v.to_bits()).collect())
            })
            .collect()
    }

    #[test]
    fn the_rewritten_patterns_give_identical_outputs_on_the_cpu() {
        if !have_ort() {
            return;
        }
        let model = patterned_model();
        let (rewritten, _) = rewrite_for_coreml(&model).unwrap().unwrap();
        let before = cpu_outputs(&model, "patterns");
        assert_eq!(
            before.iter().map(|(_, v)| v.len()).collect::<Vec<_>>(),
            [3 * 11, 3 * 5 * 11, 3 * 6 * 11, 3 * 9 * 8]
        );
        assert_eq!(cpu_outputs(&rewritten, "patterns rewritten"), before);
    }

    /// Every fixture model and the real SCRFD detectors: where a rewrite applies, the rewritten
    /// model gives the same outputs on the CPU; where none does, the file is used as it is.
    #[test]
    fn every_fixture_and_real_detector_gives_identical_outputs_after_the_rewrites() {
        if !have_ort() {
            return;
        }
        let Some(fixtures) = std::env::var_os("DLC_FIXTURES_DIR").map(PathBuf::from) else {
            assert!(std::env::var_os("DLC_REQUIRE_ALL").is_none(), "DLC_FIXTURES_DIR is not set under make test");
            return;
        };
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/models");
        let mut models: Vec<PathBuf> = std::fs::read_dir(&fixtures)
            .unwrap()
            .chain(std::fs::read_dir(&testdata).into_iter().flatten())
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
            .collect();
        models.sort();
        let mut rewritten_models = Vec::new();
        for path in &models {
            let bytes = std::fs::read(path).unwrap();
            let shown = path.display().to_string();
            match rewrite_for_coreml(&bytes) {
                // The session reports a file that is no model, as for any provider.
                Err(e) => assert!(shown.ends_with("not_a_model.onnx"), "{shown}: {e}"),
                Ok(None) => {}
                Ok(Some((rewritten, what))) => {
                    assert_eq!(cpu_outputs(&rewritten, &shown), cpu_outputs(&bytes, &shown), "{shown}: {what:?}");
                    rewritten_models.push(path.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
        eprintln!("rewritten and compared: {rewritten_models:?} of {} models", models.len());
        // None of them has reflection padding or a Split today (the rewritten patterns are
        // compared on the model above); a fixture that gains one is compared here.
        assert!(models.len() > 30, "the fixtures were found in {}", fixtures.display());
    }

    /// The third rewrite: with the input size fixed, as the detector runs on CoreML, ONNX
    /// Runtime's basic optimisations (constant folding, which runs before the graph is split
    /// between providers) fold the real detectors' `Shape → Gather` chains into constants, and the
    /// folded model gives the same outputs as the file. Both run with the basic optimisations
    /// only: with all of them, the CPU provider's own layout transforms for known shapes (NCHWc,
    /// CPU only) change the last bits of some outputs (1.2e-6 at most on det_2.5g).
    #[test]
    fn a_fixed_input_size_folds_the_real_detectors_shape_chains_and_keeps_their_outputs() {
        use ort::session::Session;
        use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

        if !have_ort() {
            return;
        }
        let env = super::super::environment().unwrap();
        let basic = |overrides: &[(String, i64)]| -> SessionBuilder {
            let mut builder =
                Session::builder(&env).unwrap().with_optimization_level(GraphOptimizationLevel::Level1).unwrap();
            for (symbol, size) in overrides {
                builder = builder.with_dimension_override(symbol, *size).unwrap();
            }
            builder
        };
        let input: Vec<f32> = (0usize..3 * 640 * 640).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let outputs = |session: &mut Session| -> Vec<Vec<u32>> {
            let tensor = Tensor::from_array(([1usize, 3, 640, 640], input.clone().into_boxed_slice())).unwrap();
            let outputs = session.run(ort::inputs![tensor]).unwrap();
            outputs
                .iter()
                .map(|(_, value)| value.try_extract_tensor::<f32>().unwrap().1.iter().map(|v| v.to_bits()).collect())
                .collect()
        };
        let shapes = |model: &[u8]| {
            let graph = fields(model).unwrap().into_iter().find(|f| f.number == field::MODEL_GRAPH).unwrap().payload;
            fields(graph)
                .unwrap()
                .iter()
                .filter(|f| f.number == field::GRAPH_NODE)
                .filter(|f| NodeProto::decode(f.payload).is_ok_and(|n| n.op_type == "Shape"))
                .count()
        };
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/models");
        for name in ["det_2.5g.onnx", "det_500m.onnx"] {
            let Ok(bytes) = std::fs::read(testdata.join(name)) else {
                eprintln!("skipped: ../shared/testdata is absent");
                return;
            };
            let cpu = SessionOptions { provider: ExecutionProvider::Cpu, ..Default::default() };
            let symbols = ModelSession::open_memory(name, &bytes, &cpu).unwrap().input_symbols(0);
            let overrides: Vec<(String, i64)> = symbols
                .iter()
                .zip([1, 3, 640, 640])
                .filter(|(symbol, _)| !symbol.is_empty())
                .map(|(symbol, size)| (symbol.clone(), size))
                .collect();
            assert!(!overrides.is_empty(), "{name} has symbolic input dimensions: {symbols:?}");

            let scratch = tempfile::tempdir().unwrap();
            let folded_path = scratch.path().join("folded.onnx");
            let mut folded_session =
                basic(&overrides).with_optimized_model_path(&folded_path).unwrap().commit_from_memory(&bytes).unwrap();
            let folded = std::fs::read(&folded_path).unwrap();
            assert!(shapes(&bytes) > 0, "{name} computes shapes");
            assert_eq!(shapes(&folded), 0, "{name}: every Shape is folded");

            let mut original = basic(&[]).commit_from_memory(&bytes).unwrap();
            let expected = outputs(&mut original);
            assert_eq!(outputs(&mut folded_session), expected, "{name}: the folding session");
            let mut reloaded = basic(&[]).commit_from_memory(&folded).unwrap();
            assert_eq!(outputs(&mut reloaded), expected, "{name}: the folded file");
        }
    }
}
