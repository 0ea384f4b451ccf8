// SPDX-License-Identifier: MPL-2.0
//! The properties every model-running element shares (`model-file`, `execution-provider`,
//! `gpu-id`, `threads`, `spin-wait`, `pixel-backend` and the read-only `active-*`), defined once so
//! that the three elements document and behave alike.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use super::{CoreMlUnits, ExecutionProvider, PixelBackend, Precision, SessionOptions, default_cache_dir};

pub const DEFAULT_EXECUTION_PROVIDER: ExecutionProvider = ExecutionProvider::Auto;
pub const DEFAULT_GPU_ID: u32 = 0;
pub const DEFAULT_THREADS: u32 = 0;
pub const DEFAULT_SPIN_WAIT: bool = false;
pub const DEFAULT_PIXEL_BACKEND: PixelBackend = PixelBackend::Auto;
pub const DEFAULT_PRECISION: Precision = Precision::Auto;
pub const DEFAULT_CUDA_GRAPH: bool = true;

/// Whether dlcswap also replays FaceFusion's mask models (occluder, parser) as CUDA graphs
/// (`DLC_MASK_CUDA_GRAPHS=1`). Off by default until a GPU run has checked their replays against
/// their plain runs: on the GPU the region mask's parser costs about 4 ms of CPU per face in
/// kernel launches (BENCHMARKS.md, "Two H100s"), which a replay would save.
pub fn mask_models_as_cuda_graphs() -> bool {
    std::env::var_os("DLC_MASK_CUDA_GRAPHS").is_some_and(|v| v == "1")
}

/// A path property's new value: `None` for unset or empty.
pub(crate) fn path_from_value(value: &glib::Value) -> Option<PathBuf> {
    value.get::<Option<String>>().ok().flatten().filter(|s| !s.is_empty()).map(PathBuf::from)
}

/// A path property's value as GStreamer shows it.
pub(crate) fn path_to_value(path: &Option<PathBuf>) -> glib::Value {
    path.as_ref().map(|p| p.display().to_string()).to_value()
}

#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    pub model_file: Option<PathBuf>,
    pub execution_provider: ExecutionProvider,
    pub gpu_id: u32,
    pub threads: u32,
    pub spin_wait: bool,
    pub pixel_backend: PixelBackend,
    pub precision: Precision,
    pub tensorrt_cache: Option<PathBuf>,
    pub cuda_graph: bool,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            model_file: None,
            execution_provider: DEFAULT_EXECUTION_PROVIDER,
            gpu_id: DEFAULT_GPU_ID,
            threads: DEFAULT_THREADS,
            spin_wait: DEFAULT_SPIN_WAIT,
            pixel_backend: DEFAULT_PIXEL_BACKEND,
            precision: DEFAULT_PRECISION,
            tensorrt_cache: None,
            cuda_graph: DEFAULT_CUDA_GRAPH,
        }
    }
}

impl RuntimeSettings {
    /// Marks the enum types of the shared properties as plugin API, so that the documentation
    /// lists them with the plugin; each element's `register` calls it (marking twice is harmless).
    pub fn mark_plugin_api() {
        ExecutionProvider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        Precision::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        PixelBackend::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }

    /// The shared property specs; `default_model` is the file name looked up in the model
    /// directory when `model-file` is unset.
    pub fn properties(default_model: &str, model_blurb: &str) -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecString::builder("model-file")
                .nick("Model file")
                .blurb(&format!(
                    "{model_blurb}. Unset: '{default_model}' in the model directory \
                     ($DLC_MODELS_DIR, else $XDG_DATA_HOME/gstdlc/models, i.e. \
                     ~/.local/share/gstdlc/models); models/README.md says where to get it"
                ))
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("execution-provider", DEFAULT_EXECUTION_PROVIDER)
                .nick("Execution provider")
                .blurb(
                    "ONNX Runtime execution provider. When the one asked for cannot be registered \
                     the element runs on the CPU and posts a warning with ONNX Runtime's reason; \
                     read 'active-provider' to see what runs",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("gpu-id")
                .nick("GPU id")
                .blurb("Device index for GPU execution providers (0 = first GPU); ignored on the CPU")
                .default_value(DEFAULT_GPU_ID)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("threads")
                .nick("Threads")
                .blurb(
                    "CPU threads ONNX Runtime may use inside one model run. 0: the pool all sessions \
                     of the process share, one thread per physical core, started once. Another value \
                     gives each of the element's models a pool of its own, started and ended with \
                     the model's session (shared with the elements that open the same model with \
                     the same settings)",
                )
                .maximum(256)
                .default_value(DEFAULT_THREADS)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("spin-wait")
                .nick("Spin-wait")
                .blurb(
                    "Let idle ONNX Runtime threads, and threads waiting for a CUDA GPU, spin \
                     instead of sleeping: slightly lower latency, but whole CPU cores stay busy \
                     while they wait. On, each of the element's models gets a thread pool of its \
                     own (the shared one sleeps)",
                )
                .default_value(DEFAULT_SPIN_WAIT)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("precision", DEFAULT_PRECISION)
                .nick("Precision")
                .blurb(
                    "auto: the model file's own precision (float16 on TensorRT, and a float16 export \
                     from the model directory on a GPU when model-file is unset); fp16: float16 \
                     exports and TensorRT's float16 mode, about twice as fast on tensor-core GPUs; \
                     fp32: the reference precision",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("tensorrt-cache")
                .nick("TensorRT cache")
                .blurb(
                    "Folder where the TensorRT provider keeps its built engines and timing cache, so \
                     that the next start takes seconds instead of minutes. Unset: \
                     $XDG_CACHE_HOME/gstdlc/tensorrt (~/.cache/gstdlc/tensorrt)",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("cuda-graph")
                .nick("CUDA graph")
                .blurb(
                    "On CUDA with the GPU pixel backend, replay the models (detector at its \
                     det-size, swapper, restorer) as a captured CUDA graph instead of launching \
                     their kernels one by one; models that cannot be captured run normally. A \
                     replayed model is not shared with other elements: each element and lane holds \
                     its own copy in GPU memory",
                )
                .default_value(DEFAULT_CUDA_GRAPH)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("pixel-backend", DEFAULT_PIXEL_BACKEND)
                .nick("Pixel backend")
                .blurb(
                    "Where crops, model inputs and the paste-back are computed: auto keeps them on \
                     the GPU next to the model when it runs on CUDA or TensorRT; onnx-runtime runs \
                     them as ONNX Runtime graphs on any provider; cpu uses the element's own code. \
                     Read 'active-pixel-backend' to see what runs",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("active-pixel-backend")
                .nick("Active pixel backend")
                .blurb("Where the pixel steps actually run: cpu or onnx-runtime (read-only; empty until started)")
                .read_only()
                .build(),
            glib::ParamSpecString::builder("active-provider")
                .nick("Active provider")
                .blurb(
                    "The execution provider actually running the model (read-only; empty until \
                     the element has started)",
                )
                .read_only()
                .build(),
        ]
    }

    /// Applies a shared property; returns false when `name` is not one of them.
    pub fn set_property(&mut self, name: &str, value: &glib::Value) -> bool {
        match name {
            "model-file" => self.model_file = path_from_value(value),
            "execution-provider" => {
                self.execution_provider = value.get().unwrap_or(DEFAULT_EXECUTION_PROVIDER);
            }
            "gpu-id" => self.gpu_id = value.get().unwrap_or(DEFAULT_GPU_ID),
            "threads" => self.threads = value.get().unwrap_or(DEFAULT_THREADS),
            "spin-wait" => self.spin_wait = value.get().unwrap_or(DEFAULT_SPIN_WAIT),
            "pixel-backend" => self.pixel_backend = value.get().unwrap_or(DEFAULT_PIXEL_BACKEND),
            "precision" => self.precision = value.get().unwrap_or(DEFAULT_PRECISION),
            "tensorrt-cache" => self.tensorrt_cache = path_from_value(value),
            "cuda-graph" => self.cuda_graph = value.get().unwrap_or(DEFAULT_CUDA_GRAPH),
            _ => return false,
        }
        true
    }

    /// Reads a shared property other than the `active-*` ones (see [`ActiveRuntime`]).
    pub fn property(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "model-file" => path_to_value(&self.model_file),
            "execution-provider" => self.execution_provider.to_value(),
            "gpu-id" => self.gpu_id.to_value(),
            "threads" => self.threads.to_value(),
            "spin-wait" => self.spin_wait.to_value(),
            "pixel-backend" => self.pixel_backend.to_value(),
            "precision" => self.precision.to_value(),
            "tensorrt-cache" => path_to_value(&self.tensorrt_cache),
            "cuda-graph" => self.cuda_graph.to_value(),
            _ => return None,
        })
    }

    /// `options` to reopen a fixed-shape model with as a CUDA graph, when `cuda-graph` allows
    /// it and `model` runs on CUDA with the GPU pixel backend (whose tensors keep their device
    /// addresses); `None` otherwise.
    pub fn with_cuda_graph(
        &self,
        options: &SessionOptions,
        model: &super::ModelSession,
        pixels_on_gpu: bool,
    ) -> Option<SessionOptions> {
        (self.cuda_graph && pixels_on_gpu && model.active_provider == ExecutionProvider::Cuda)
            .then(|| SessionOptions { cuda_graph: true, ..options.clone() })
    }

    /// Whether an element whose float16 export is `fp16_name` should take it when `model-file`
    /// is unset: `precision=fp16`, or `precision=auto` with the file in the model directory and a
    /// GPU provider asked for (or `auto` with the CUDA provider available), as Deep-Live-Cam
    /// takes the float16 swapper on CUDA.
    pub fn prefers_fp16_file(&self, fp16_name: &str) -> bool {
        match self.precision {
            Precision::Fp16 => true,
            Precision::Fp32 => false,
            Precision::Auto => {
                let gpu = match self.execution_provider {
                    ExecutionProvider::Cuda | ExecutionProvider::TensorRt => true,
                    ExecutionProvider::Auto => ExecutionProvider::Cuda.compiled_in(),
                    _ => false,
                };
                gpu && super::default_models_dir().join(fp16_name).is_file()
            }
        }
    }

    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            provider: self.execution_provider,
            gpu_id: self.gpu_id,
            threads: self.threads,
            spin_wait: self.spin_wait,
            precision: self.precision,
            tensorrt_cache: self.tensorrt_cache.clone().or_else(default_cache_dir),
            // Decided per model once the pixel backend is known (see `with_cuda_graph`).
            cuda_graph: false,
            dimension_overrides: Vec::new(),
            compute_stream: None,
            coreml_units: CoreMlUnits::All,
        }
    }
}

/// What actually runs once an element has started: the read-only `active-provider` and
/// `active-pixel-backend` properties.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActiveRuntime {
    pub provider: Option<&'static str>,
    pub pixel_backend: Option<&'static str>,
}

impl ActiveRuntime {
    /// The `active-*` properties whose value differs between `self` and `other`.
    pub fn changed_properties(&self, other: &ActiveRuntime) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.provider != other.provider {
            changed.push("active-provider");
        }
        if self.pixel_backend != other.pixel_backend {
            changed.push("active-pixel-backend");
        }
        changed
    }

    /// Reads an `active-*` property; `None` for other names.
    pub fn property(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "active-provider" => self.provider.to_value(),
            "active-pixel-backend" => self.pixel_backend.to_value(),
            _ => return None,
        })
    }
}
