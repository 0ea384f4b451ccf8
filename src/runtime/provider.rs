// SPDX-License-Identifier: MPL-2.0
//! Execution-provider choice, shared by the three elements' `execution-provider` property.

use gst::glib;
use ort::ep::{self, ExecutionProvider as _, ExecutionProviderDispatch};

use super::SessionOptions;

/// What the user asks for. `Auto` takes the first accelerator that registers, then the CPU.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcExecutionProvider")]
pub enum ExecutionProvider {
    #[default]
    #[enum_value(
        name = "Auto: the first of CUDA, CoreML, DirectML, ROCm, OpenVINO that registers, else CPU",
        nick = "auto"
    )]
    Auto,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu,
    #[enum_value(name = "NVIDIA CUDA (onnxruntime-gpu)", nick = "cuda")]
    Cuda,
    #[enum_value(name = "NVIDIA TensorRT", nick = "tensorrt")]
    TensorRt,
    #[enum_value(name = "AMD ROCm", nick = "rocm")]
    Rocm,
    #[enum_value(name = "AMD MIGraphX", nick = "migraphx")]
    MigraphX,
    #[enum_value(name = "DirectML (Windows)", nick = "directml")]
    DirectMl,
    #[enum_value(name = "Apple CoreML", nick = "coreml")]
    CoreMl,
    #[enum_value(name = "Intel OpenVINO", nick = "openvino")]
    OpenVino,
}

/// The order `auto` tries accelerators in (the CPU comes last, implicitly).
const AUTO_ORDER: [ExecutionProvider; 5] = [
    ExecutionProvider::Cuda,
    ExecutionProvider::CoreMl,
    ExecutionProvider::DirectMl,
    ExecutionProvider::Rocm,
    ExecutionProvider::OpenVino,
];

impl ExecutionProvider {
    /// The property nick, also what `active-provider` reports.
    pub fn nick(self) -> &'static str {
        match self {
            ExecutionProvider::Auto => "auto",
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::TensorRt => "tensorrt",
            ExecutionProvider::Rocm => "rocm",
            ExecutionProvider::MigraphX => "migraphx",
            ExecutionProvider::DirectMl => "directml",
            ExecutionProvider::CoreMl => "coreml",
            ExecutionProvider::OpenVino => "openvino",
        }
    }

    /// The providers to try, in order, for this choice (CPU excluded: it always works).
    pub(crate) fn candidates(self) -> Vec<ExecutionProvider> {
        match self {
            ExecutionProvider::Auto => AUTO_ORDER.to_vec(),
            ExecutionProvider::Cpu => Vec::new(),
            other => vec![other],
        }
    }

    /// Whether the loaded ONNX Runtime was built with this provider at all. `auto` skips the
    /// ones that were not, without a warning: a CPU-only wheel is a normal set-up. False when the
    /// library cannot be loaded (asking `ort` then would panic; the first model opened reports
    /// the library).
    pub(crate) fn compiled_in(self) -> bool {
        if super::environment().is_err() {
            return false;
        }
        let available = match self {
            ExecutionProvider::Auto | ExecutionProvider::Cpu => Ok(true),
            ExecutionProvider::Cuda => ep::CUDA::is_available(),
            ExecutionProvider::TensorRt => ep::TensorRT::is_available(),
            ExecutionProvider::Rocm => ep::ROCm::is_available(),
            ExecutionProvider::MigraphX => ep::MIGraphX::is_available(),
            ExecutionProvider::DirectMl => ep::DirectML::is_available(),
            ExecutionProvider::CoreMl => ep::CoreML::is_available(),
            ExecutionProvider::OpenVino => ep::OpenVINO::is_available(),
        };
        available.unwrap_or(false)
    }

    /// The `ort` registration for this provider as `options` ask, failing loudly rather than
    /// silently, so that the caller can report the fallback.
    pub(crate) fn dispatch(self, options: &SessionOptions) -> Option<ExecutionProviderDispatch> {
        let id = options.gpu_id as i32;
        let dispatch = match self {
            ExecutionProvider::Auto | ExecutionProvider::Cpu => return None,
            ExecutionProvider::Cuda => {
                // Channels-last convolutions: cuDNN's tensor-core kernels take NHWC, and with NCHW
                // ONNX Runtime transposes around each convolution. Measured on an H100 with the
                // fp16 inswapper stand-in: 263 → 313 frames per second for detect ! swap
                // (BENCHMARKS.md, "NHWC").
                let cuda =
                    ep::CUDA::default().with_device_id(id).with_cuda_graph(options.cuda_graph).with_prefer_nhwc(true);
                match &options.compute_stream {
                    // SAFETY: the stream outlives every session made with it (each `ModelSession`
                    // keeps a reference to it).
                    Some(stream) => unsafe { cuda.with_compute_stream(stream.raw()) }.build(),
                    None => cuda.build(),
                }
            }
            ExecutionProvider::TensorRt => tensorrt(options),
            ExecutionProvider::Rocm => ep::ROCm::default().with_device_id(id).build(),
            ExecutionProvider::MigraphX => ep::MIGraphX::default().with_device_id(id).build(),
            ExecutionProvider::DirectMl => directml(options).build(),
            ExecutionProvider::CoreMl => coreml(options).build(),
            ExecutionProvider::OpenVino => ep::OpenVINO::default().build(),
        };
        Some(dispatch.error_on_failure())
    }
}

/// DirectML on the adapter `gpu-id` names (DXGI's adapter order, as DirectML counts them).
fn directml(options: &SessionOptions) -> ep::DirectML {
    ep::DirectML::default().with_device_id(options.gpu_id as i32)
}

/// The Apple units CoreML may run a model on (CoreML's `MLComputeUnits`), chosen per model as
/// Deep-Live-Cam does: untested here, where no Mac is reachable.
#[derive(Debug, Eq, PartialEq, Clone, Copy, Default)]
pub enum CoreMlUnits {
    /// Any unit, the Neural Engine included (CoreML's default): the swapper and the restorer.
    #[default]
    All,
    /// The CPU and the GPU: the detector, which runs on every frame, leaving the Neural Engine
    /// to the swapper.
    CpuAndGpu,
}

fn coreml(options: &SessionOptions) -> ep::CoreML {
    let units = match options.coreml_units {
        CoreMlUnits::All => ep::coreml::ComputeUnits::All,
        CoreMlUnits::CpuAndGpu => ep::coreml::ComputeUnits::CPUAndGPU,
    };
    ep::CoreML::default().with_compute_units(units)
}

/// What a provider needs of the session it is registered in, beyond its own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionRules {
    /// ONNX Runtime's memory pattern: buffers planned from the first run's shapes.
    pub memory_pattern: bool,
    /// ONNX Runtime's parallel execution mode (independent branches of the graph at once) rather
    /// than the sequential one.
    pub parallel_execution: bool,
    /// Whether each run waits for the other runs on its device to end ([`super::gpu_work`]).
    pub one_run_per_device: bool,
}

impl ExecutionProvider {
    /// The session rules for sessions this provider runs. DirectML's are its documented
    /// requirements: its sessions refuse to be made with the memory pattern or parallel
    /// execution on, and take runs from one thread at a time.
    pub(crate) fn session_rules(self) -> SessionRules {
        match self {
            ExecutionProvider::DirectMl => {
                SessionRules { memory_pattern: false, parallel_execution: false, one_run_per_device: true }
            }
            // ONNX Runtime's defaults.
            _ => SessionRules { memory_pattern: true, parallel_execution: false, one_run_per_device: false },
        }
    }
}

/// TensorRT, in float16 unless asked for float32 (its fp16 runs a float32 file on the tensor
/// cores), with its engines and timing cache kept in `options.tensorrt_cache` so that a second
/// start does not rebuild them (minutes for the swapper).
fn tensorrt(options: &SessionOptions) -> ExecutionProviderDispatch {
    let mut trt =
        ep::TensorRT::default().with_device_id(options.gpu_id as i32).with_fp16(options.precision != Precision::Fp32);
    if let Some(dir) = options.tensorrt_cache.as_ref().filter(|dir| std::fs::create_dir_all(dir).is_ok()) {
        let dir = dir.display().to_string();
        trt = trt
            .with_engine_cache(true)
            .with_engine_cache_path(&dir)
            .with_timing_cache(true)
            .with_timing_cache_path(&dir);
    }
    trt.build()
}

/// The arithmetic precision asked for: the `precision` property.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcPrecision")]
pub enum Precision {
    #[default]
    #[enum_value(
        name = "Auto: the model file's own precision; float16 on TensorRT; a float16 export where the element has one in the model directory and the provider is a GPU",
        nick = "auto"
    )]
    Auto,
    #[enum_value(name = "Float32: the reference precision", nick = "fp32")]
    Fp32,
    #[enum_value(
        name = "Float16: float16 exports (e.g. inswapper_128_fp16.onnx) and TensorRT's float16 mode; about twice as fast on tensor-core GPUs",
        nick = "fp16"
    )]
    Fp16,
}

/// Where the pixel steps (crops, paste-back) of an element run: the `pixel-backend` property.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcPixelBackend")]
pub enum PixelBackend {
    #[default]
    #[enum_value(
        name = "Auto: with the model on the GPU when it runs on CUDA or TensorRT, else on the CPU",
        nick = "auto"
    )]
    Auto,
    #[enum_value(name = "CPU: the element's own code on the mapped frame", nick = "cpu")]
    Cpu,
    #[enum_value(
        name = "ONNX Runtime: small graphs run by ONNX Runtime on the model's execution provider",
        nick = "onnx-runtime"
    )]
    OnnxRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directml_sessions_have_no_memory_pattern_run_sequentially_and_one_at_a_time() {
        let rules = ExecutionProvider::DirectMl.session_rules();
        assert!(!rules.memory_pattern && !rules.parallel_execution && rules.one_run_per_device, "{rules:?}");
        for provider in [ExecutionProvider::Cpu, ExecutionProvider::Cuda, ExecutionProvider::CoreMl] {
            let rules = provider.session_rules();
            assert!(rules.memory_pattern && !rules.parallel_execution && !rules.one_run_per_device, "{provider:?}");
        }
    }

    #[test]
    fn gpu_id_picks_the_directml_adapter() {
        let options = SessionOptions { provider: ExecutionProvider::DirectMl, gpu_id: 2, ..Default::default() };
        // `ort` keeps the adapter private; its debug text is the only view of it.
        let shown = format!("{:?}", directml(&options));
        assert!(shown.contains("device_id: Some(2)"), "{shown}");
    }
}
