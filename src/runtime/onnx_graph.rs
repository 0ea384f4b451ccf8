// SPDX-License-Identifier: MPL-2.0
//! Reads the few graph facts ONNX Runtime does not expose: the last initializer (inswapper's
//! `emap`) and the names of the first nodes (how InsightFace tells whether an ArcFace model
//! normalises its input itself), through the schema subset in [`super::onnx_proto`].

use std::path::Path;

use bytes::Bytes;
use prost::Message;

use super::onnx_proto::{ModelProto, TensorProto};

/// ONNX `TensorProto.DataType` values this reader converts.
const DATA_TYPE_FLOAT: i32 = 1;
const DATA_TYPE_FLOAT16: i32 = 10;
/// `TensorProto.DataLocation.EXTERNAL`: the values live in a side file.
const DATA_LOCATION_EXTERNAL: i32 = 1;

/// What the elements need to know of a graph beyond its inputs and outputs.
#[derive(Debug, Clone, Default)]
pub struct GraphSummary {
    /// Names of the first eight nodes (InsightFace looks no further).
    pub first_node_names: Vec<String>,
    /// The last initializer as float32 values with its name and dims, when it is a float tensor.
    pub last_initializer: Option<(String, Vec<i64>, Vec<f32>)>,
}

/// Parses `path` as an ONNX model and summarises its graph.
pub fn read_graph_summary(path: &Path) -> Result<GraphSummary, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    summarize_graph(bytes)
}

/// Parses the bytes of an ONNX model file and summarises its graph (the fuzz targets call this
/// directly, through [`crate::fuzzing`]).
pub(crate) fn summarize_graph(bytes: Vec<u8>) -> Result<GraphSummary, String> {
    let model = ModelProto::decode(Bytes::from(bytes)).map_err(|e| format!("not an ONNX protobuf: {e}"))?;
    let graph = model.graph.ok_or_else(|| "the model has no graph".to_string())?;
    let first_node_names = graph.node.iter().take(8).map(|n| n.name.clone()).collect();
    let last_initializer = match graph.initializer.last() {
        Some(t) => Some((t.name.clone(), t.dims.clone(), tensor_values(t)?)),
        None => None,
    };
    Ok(GraphSummary { first_node_names, last_initializer })
}

fn tensor_values(t: &TensorProto) -> Result<Vec<f32>, String> {
    if t.data_location == DATA_LOCATION_EXTERNAL {
        return Err(format!("initializer '{}' is stored in an external data file, which is not supported", t.name));
    }
    // Dims are the file's word: negative ones or a product beyond usize describe no tensor.
    let count = t
        .dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
        .ok_or_else(|| format!("initializer '{}' has dims {:?}, which describe no tensor", t.name, t.dims))?;
    let values: Vec<f32> = match t.data_type {
        DATA_TYPE_FLOAT if !t.raw_data.is_empty() => {
            t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        DATA_TYPE_FLOAT => t.float_data.clone(),
        DATA_TYPE_FLOAT16 => {
            t.raw_data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        other => return Err(format!("initializer '{}' has data type {other}, expected float32 or float16", t.name)),
    };
    if values.len() != count {
        return Err(format!(
            "initializer '{}' holds {} values but its dims {:?} need {count}",
            t.name,
            values.len(),
            t.dims
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::onnx_proto::{GraphProto, NodeProto};

    fn encoded_model(initializers: Vec<TensorProto>) -> Vec<u8> {
        let node = |name: &str| NodeProto { name: name.into(), ..NodeProto::default() };
        let graph =
            GraphProto { node: vec![node("Sub_0"), node("Mul_1")], initializer: initializers, ..GraphProto::default() };
        ModelProto { graph: Some(graph), ..ModelProto::default() }.encode_to_vec()
    }

    fn tensor(name: &str, dims: Vec<i64>, data_type: i32, raw: Vec<u8>) -> TensorProto {
        TensorProto { dims, data_type, name: name.into(), raw_data: Bytes::from(raw), ..TensorProto::default() }
    }

    #[test]
    fn reads_last_initializer_and_node_names() {
        let first = tensor("w", vec![1], DATA_TYPE_FLOAT, 7.0f32.to_le_bytes().to_vec());
        let raw: Vec<u8> = [1.5f32, -2.0, 0.25, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let last = tensor("emap", vec![2, 2], DATA_TYPE_FLOAT, raw);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, encoded_model(vec![first, last])).unwrap();

        let summary = read_graph_summary(&path).unwrap();
        assert_eq!(summary.first_node_names, vec!["Sub_0", "Mul_1"]);
        let (name, dims, values) = summary.last_initializer.unwrap();
        assert_eq!((name.as_str(), dims), ("emap", vec![2, 2]));
        assert_eq!(values, vec![1.5, -2.0, 0.25, 4.0]);
    }

    #[test]
    fn converts_float16_and_rejects_wrong_sizes() {
        let raw: Vec<u8> = [1.0f32, 0.5].iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.onnx");
        std::fs::write(&path, encoded_model(vec![tensor("h", vec![2], DATA_TYPE_FLOAT16, raw)])).unwrap();
        assert_eq!(read_graph_summary(&path).unwrap().last_initializer.unwrap().2, vec![1.0, 0.5]);

        std::fs::write(&path, encoded_model(vec![tensor("bad", vec![3], DATA_TYPE_FLOAT, vec![0; 8])])).unwrap();
        let err = read_graph_summary(&path).unwrap_err();
        assert!(err.contains("'bad' holds 2 values"), "{err}");
    }

    /// Found by review, confirmed by the onnx_graph fuzz harness: dims whose product overflows
    /// panicked, and negative dims with a matching product were accepted.
    #[test]
    fn rejects_dims_that_describe_no_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.onnx");
        std::fs::write(&path, encoded_model(vec![tensor("huge", vec![1 << 62, 4, 3], DATA_TYPE_FLOAT, vec![])]))
            .unwrap();
        assert!(read_graph_summary(&path).unwrap_err().contains("describe no tensor"));
        let raw: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, encoded_model(vec![tensor("neg", vec![-1, -2], DATA_TYPE_FLOAT, raw)])).unwrap();
        assert!(read_graph_summary(&path).unwrap_err().contains("[-1, -2], which describe no tensor"));
    }

    #[test]
    fn text_file_is_not_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.onnx");
        std::fs::write(&path, "this is not an ONNX model").unwrap();
        assert!(read_graph_summary(&path).unwrap_err().contains("not an ONNX protobuf"));
    }
}
