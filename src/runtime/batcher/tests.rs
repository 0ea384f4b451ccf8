// SPDX-License-Identifier: MPL-2.0
//! The batcher's tests: batches against single runs, on the CPU.

use super::*;
use crate::backend::graph::onnx::{Dim, Elem, Graph};
use crate::runtime::{fill_host_f32, host_tensor, read_host_f32};

/// `out = tanh(target · 0.5 + reshape(source · w))`, its batch fixed at 1.
fn model_file(dir: &Path) -> std::path::PathBuf {
    let mut g = Graph::new("batcher_test");
    let target = g.input("target", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2), Dim::Fixed(2)]);
    let source = g.input("source", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(3)]);
    let w = g.floats(&[1.0, -2.0, 0.5, 3.0, 0.25, -1.0], &[3, 2]);
    let half = g.scalar(0.5);
    let scaled = g.op("Mul", &[&target, &half], Vec::new());
    let style = g.op("MatMul", &[&source, &w], Vec::new());
    let shape = g.ints(&[1, 2, 1, 1], &[4]);
    let style4 = g.op("Reshape", &[&style, &shape], Vec::new());
    let sum = g.op("Add", &[&scaled, &style4], Vec::new());
    let out = g.op("Tanh", &[&sum], Vec::new());
    g.output(&out, "output", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2), Dim::Fixed(2)]);
    let path = dir.join("batcher_test.onnx");
    std::fs::write(&path, g.encode()).expect("written");
    path
}

fn cpu() -> SessionOptions {
    SessionOptions { provider: ExecutionProvider::Cpu, ..SessionOptions::default() }
}

fn item(seed: usize) -> (Vec<f32>, Vec<f32>) {
    let target = (0..8).map(|i| ((i * 7 + seed * 13) % 11) as f32 * 0.2 - 1.0).collect();
    let source = (0..3).map(|i| ((i * 5 + seed * 3) % 7) as f32 * 0.3 - 0.9).collect();
    (target, source)
}

/// The host tensors of [`item`]`(seed)`: its inputs (target, source) and an output.
fn item_tensors(seed: usize, scratch: &mut Vec<f32>) -> ([DynTensor; 2], [DynTensor; 1]) {
    let (target, source) = item(seed);
    let mut t = host_tensor(&[1, 2, 2, 2], TensorElementType::Float32).unwrap();
    fill_host_f32(&mut t, scratch, |v| v.copy_from_slice(&target)).unwrap();
    let mut s = host_tensor(&[1, 3], TensorElementType::Float32).unwrap();
    fill_host_f32(&mut s, scratch, |v| v.copy_from_slice(&source)).unwrap();
    ([t, s], [host_tensor(&[1, 2, 2, 2], TensorElementType::Float32).unwrap()])
}

/// The item run alone, on a session of the original file.
fn single(path: &Path, (target, source): &(Vec<f32>, Vec<f32>)) -> Vec<f32> {
    let mut model = ModelSession::open(path, "model-file", &cpu(), |_| Ok(())).expect("opens");
    let mut scratch = Vec::new();
    let mut t = host_tensor(&[1, 2, 2, 2], TensorElementType::Float32).unwrap();
    fill_host_f32(&mut t, &mut scratch, |v| v.copy_from_slice(target)).unwrap();
    let mut s = host_tensor(&[1, 3], TensorElementType::Float32).unwrap();
    fill_host_f32(&mut s, &mut scratch, |v| v.copy_from_slice(source)).unwrap();
    let mut binding = model.binding().unwrap();
    binding.bind_input("target", &t).unwrap();
    binding.bind_input("source", &s).unwrap();
    ModelSession::bind_output_to_host(&mut binding, "output").unwrap();
    let outputs = model.run(&binding).unwrap();
    read_host_f32(&outputs[0], &mut scratch).unwrap().to_vec()
}

#[test]
fn items_from_many_threads_run_together_and_get_their_own_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = model_file(dir.path());
    let batcher = Batcher::shared(&path, &cpu(), |_| Ok(())).expect("a batcher");
    // One batcher per file and options.
    assert!(Arc::ptr_eq(&batcher, &Batcher::shared(&path, &cpu(), |_| Ok(())).unwrap()));
    // Long enough for every user's item to come even on a loaded machine: batches then form
    // for certain (with the 2 ms default, a test run beside others once ran every item alone).
    batcher.set_max_wait(Duration::from_secs(5));
    let users = 4;
    let rounds = 20;
    let results: Vec<Vec<(usize, Vec<f32>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..users)
            .map(|u| {
                let user = batcher.user();
                scope.spawn(move || {
                    let mut scratch = Vec::new();
                    let mut out = Vec::new();
                    for r in 0..rounds {
                        let seed = u * rounds + r;
                        let ([t, s], [mut o]) = item_tensors(seed, &mut scratch);
                        user.run(&[&t, &s], &mut [&mut o]).expect("a run");
                        out.push((seed, read_host_f32(&o, &mut scratch).unwrap().to_vec()));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (seed, got) in results.into_iter().flatten() {
        let want = single(&path, &item(seed));
        let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff <= 1e-6, "item {seed}: batched result off by {diff}");
    }
    let (runs, items) = batcher.counts();
    assert_eq!(items, (users * rounds) as u64);
    // Four users submitting at once, each batch waiting for all of them (until one leaves).
    assert!(runs < items * 3 / 4, "{runs} runs for {items} items: no batching");
    let report = batcher.report();
    let mean = items as f64 / runs as f64;
    assert!(report.starts_with(&format!("batcher {runs} runs, {mean:.2} items a run")), "{report}");
    assert_eq!(batcher.users(), 0);
}

#[test]
fn one_users_items_queued_together_run_in_one_batch_with_their_own_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = model_file(dir.path());
    let batcher = Batcher::shared(&path, &cpu(), |_| Ok(())).expect("a batcher");
    let user = batcher.user();
    let mut scratch = Vec::new();
    let seeds = [3usize, 17, 29];
    let mut tensors = Vec::new();
    for &seed in &seeds {
        tensors.push(item_tensors(seed, &mut scratch));
    }
    {
        let (inputs, mut outputs): (Vec<_>, Vec<_>) =
            tensors.iter_mut().map(|(i, o)| ([&i[0], &i[1]], [&mut o[0]])).unzip();
        let inputs: Vec<&[&DynTensor]> = inputs.iter().map(|i| i.as_slice()).collect();
        let mut outputs: Vec<&mut [&mut DynTensor]> = outputs.iter_mut().map(|o| o.as_mut_slice()).collect();
        user.run_all(&inputs, &mut outputs).expect("a run");
        // Items and outputs of different counts are refused before anything is queued.
        let err = user.run_all(&inputs[..2], &mut outputs[..1]).unwrap_err();
        assert!(err.contains("2 items' inputs and 1 items' outputs"), "{err}");
    }
    assert_eq!(batcher.counts(), (1, 3), "(runs, items): one user's items went in one run");
    for (&seed, (_, [o])) in seeds.iter().zip(&tensors) {
        let got = read_host_f32(o, &mut scratch).unwrap().to_vec();
        let want = single(&path, &item(seed));
        let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff <= 1e-6, "item {seed}: batched result off by {diff}");
    }
    assert_eq!(batcher.counts(), (1, 3));
}

#[test]
fn on_a_gpu_only_the_cuda_provider_on_the_batchers_stream_batches() {
    assert!(copies_ordered_with_runs(false, ExecutionProvider::Cpu, false).is_ok());
    assert!(copies_ordered_with_runs(true, ExecutionProvider::Cuda, true).is_ok());
    let err = copies_ordered_with_runs(true, ExecutionProvider::Cuda, false).unwrap_err();
    assert!(err.contains("stream of its own"), "{err}");
    let err = copies_ordered_with_runs(true, ExecutionProvider::TensorRt, true).unwrap_err();
    assert!(err.contains("needs the CUDA provider (the model runs on tensorrt"), "{err}");
}

#[test]
fn a_user_goes_through_the_batcher_once_another_came_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = model_file(dir.path());
    let batcher = Batcher::shared(&path, &cpu(), |_| Ok(())).expect("a batcher");
    let first = batcher.user();
    assert!(!first.in_use(), "alone, a user runs its own session");
    let second = batcher.user();
    assert!(first.in_use() && second.in_use());
    drop(second);
    // Its own session was left behind (on a GPU, uncaptured on this thread): it stays.
    assert!(first.in_use());
}

#[test]
fn the_batch_size_grows_at_once_and_shrinks_only_after_many_smaller_runs() {
    let mut smaller = 0;
    // Grows to the power of two that holds the items, capped at the largest batch.
    assert_eq!(steady_batch_size(1, 3, &mut smaller), 4);
    assert_eq!(steady_batch_size(4, 40, &mut smaller), MAX_BATCH);
    // Items that fit more than half the size keep it, and start the count again.
    assert_eq!(steady_batch_size(8, 5, &mut smaller), 8);
    assert_eq!(smaller, 0);
    // Items that would fit half of it: kept for SHRINK_AFTER - 1 runs, halved at the last.
    for run in 1..SHRINK_AFTER {
        assert_eq!(steady_batch_size(8, 1, &mut smaller), 8, "run {run}");
    }
    assert_eq!(steady_batch_size(8, 1, &mut smaller), 4);
    assert_eq!(smaller, 0);
    // A full batch in between starts the count again.
    for _ in 1..SHRINK_AFTER {
        steady_batch_size(4, 1, &mut smaller);
    }
    assert_eq!(steady_batch_size(4, 4, &mut smaller), 4);
    assert_eq!(steady_batch_size(4, 1, &mut smaller), 4);
    assert_eq!(smaller, 1);
    // An empty batch counts as one item.
    assert_eq!(steady_batch_size(1, 0, &mut smaller), 1);
}

#[test]
fn wrong_tensors_are_refused_before_they_are_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = model_file(dir.path());
    let batcher = Batcher::shared(&path, &cpu(), |_| Ok(())).expect("a batcher");
    let user = batcher.user();
    let t = host_tensor(&[1, 2, 2, 2], TensorElementType::Float32).unwrap();
    let s = host_tensor(&[1, 4], TensorElementType::Float32).unwrap();
    let mut o = host_tensor(&[1, 2, 2, 2], TensorElementType::Float32).unwrap();
    assert!(user.run(&[&t, &s], &mut [&mut o]).unwrap_err().contains("input: 16 bytes"));
    assert!(user.run(&[&t], &mut [&mut o]).unwrap_err().contains("1 inputs"));
    // A contract the model does not meet is the caller's error.
    let other = tempfile::tempdir().unwrap();
    let copy = other.path().join("copy.onnx");
    std::fs::copy(&path, &copy).unwrap();
    let err = Batcher::shared(&copy, &cpu(), |_| Err("a detector".to_string())).err().unwrap();
    assert!(err.contains("expected a detector"), "{err}");
}

#[test]
fn runs_naming_a_graph_or_none_give_the_plain_runs_results() {
    // On the CPU no graph is captured; what is checked is that ONNX Runtime takes the options
    // that name graphs (and none) and runs as a plain run does.
    let dir = tempfile::tempdir().unwrap();
    let path = model_file(dir.path());
    let mut model = ModelSession::open(&path, "model-file", &cpu(), |_| Ok(())).expect("opens");
    model.capture_named_graphs_only().expect("options that capture nothing");
    let mut scratch = Vec::new();
    let ([t, s], _) = item_tensors(5, &mut scratch);
    let mut binding = model.binding().unwrap();
    binding.bind_input("target", &t).unwrap();
    binding.bind_input("source", &s).unwrap();
    ModelSession::bind_output_to_host(&mut binding, "output").unwrap();
    let want = single(&path, &item(5));
    let plain = model.run(&binding).expect("a run that captures nothing");
    assert_eq!(read_host_f32(&plain[0], &mut scratch).unwrap(), &want[..]);
    let graphs = graphs::BatchGraphs::new().expect("a graph name per batch size");
    for size in [1, 2, 4, 8, 16] {
        assert!(graphs.replay(size).is_none(), "size {size}: nothing replays before its capture");
    }
    assert!(graphs.captured().is_empty());
    let named = crate::runtime::model::graph_run_options(Some(4)).unwrap();
    let run = model.run_with(&binding, &named).expect("a run naming graph 4");
    assert_eq!(read_host_f32(&run[0], &mut scratch).unwrap(), &want[..]);
}
