// SPDX-License-Identifier: MPL-2.0
//! The one CUDA setting ONNX Runtime does not expose: how a CPU thread waits for the GPU. CUDA's
//! default spins a whole core until the GPU finishes; a video element that waits for the GPU on
//! every frame would burn a core per element doing nothing. Blocking synchronisation puts the
//! thread to sleep instead, at the cost of a few microseconds of wake-up per wait.
//!
//! The flag belongs to the device's primary context, which ONNX Runtime's CUDA provider uses, so
//! it is set before the first CUDA session is created.

use std::sync::OnceLock;

use cudarc::driver::sys;

/// What happened when the setting was applied, once per process (one GPU id at a time is
/// enough: elements on other GPUs share the driver's setting path).
static OUTCOME: OnceLock<Result<(), String>> = OnceLock::new();

/// Makes threads that wait for GPU `gpu_id` sleep rather than spin. Returns a note when that was
/// not possible (no CUDA driver, an old driver): the elements still work, with spinning waits.
pub fn prefer_blocking_sync(gpu_id: u32) -> Result<(), String> {
    OUTCOME.get_or_init(|| set_blocking_sync(gpu_id)).clone()
}

fn set_blocking_sync(gpu_id: u32) -> Result<(), String> {
    // SAFETY: `is_culib_present` only tries to open the library; the calls below run only once
    // it exists, with arguments the driver documents (a device ordinal, a context flag).
    unsafe {
        if !sys::is_culib_present() {
            return Err("the CUDA driver library (libcuda.so.1) is not present".to_string());
        }
        let check = |what: &str, result: sys::CUresult| {
            (result == sys::CUresult::CUDA_SUCCESS).then_some(()).ok_or_else(|| format!("{what} failed: {result:?}"))
        };
        check("cuInit", sys::cuInit(0))?;
        let mut device = 0;
        check("cuDeviceGet", sys::cuDeviceGet(&mut device, gpu_id as i32))?;
        let flags = sys::CUctx_flags_enum::CU_CTX_SCHED_BLOCKING_SYNC as u32;
        check("cuDevicePrimaryCtxSetFlags", sys::cuDevicePrimaryCtxSetFlags_v2(device, flags))
    }
}

/// A CUDA stream that all of one element's sessions compute on. Runs on one stream execute in
/// the order they were queued, so a run whose outputs stay on the GPU need not wait for it to
/// finish: the next run comes after it anyway, and only a run whose outputs the CPU reads waits
/// (see [`super::ModelSession::run_queued`]). With a stream per session, every run has to wait.
///
/// A model session shared between elements ([`super::ModelSession`]) computes on a stream of its
/// own instead, ordered with each element's stream by events ([`StreamOrder`]).
#[derive(Clone)]
pub struct ComputeStream {
    stream: std::sync::Arc<cudarc::driver::CudaStream>,
    priority: StreamPriority,
}

impl std::fmt::Debug for ComputeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ComputeStream({:?}, {:?})", self.stream.cu_stream(), self.priority)
    }
}

/// How the GPU schedules a stream's work against other streams' waiting work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamPriority {
    Normal,
    /// The device's highest priority.
    High,
}

impl ComputeStream {
    /// A new stream on GPU `gpu_id` (in the device's primary context, which ONNX Runtime uses).
    pub fn new(gpu_id: u32, priority: StreamPriority) -> Result<ComputeStream, String> {
        // SAFETY: only tries to open the driver library.
        if !unsafe { sys::is_culib_present() } {
            return Err("the CUDA driver library (libcuda.so.1) is not present".to_string());
        }
        // cudarc panics when the driver lacks one of its entry points: keep that on this side.
        std::panic::catch_unwind(|| {
            let context = cudarc::driver::CudaContext::new(gpu_id as usize).map_err(|e| e.to_string())?;
            let stream = match priority {
                StreamPriority::Normal => context.new_stream(),
                StreamPriority::High => {
                    // The context is current after `new`; the range is (lowest, highest), the
                    // highest numerically smallest.
                    let (_, highest) =
                        cudarc::driver::result::stream::get_priority_range().map_err(|e| e.to_string())?;
                    context.new_stream_with_priority(highest)
                }
            };
            stream.map(|stream| ComputeStream { stream, priority }).map_err(|e| e.to_string())
        })
        .unwrap_or_else(|_| Err("the CUDA driver could not be used".to_string()))
    }

    /// Queues a copy of `bytes` into `target`, an 8-bit tensor of as many values in this GPU's
    /// memory, on this stream: the sessions computing on the stream read it after the copy, with
    /// no wait here and none of ONNX Runtime's own copy machinery (a session run and a stream
    /// wait per copy, all copies of the process behind one lock). `bytes` may be reused when this
    /// returns: a copy from pageable memory returns once the driver has staged it.
    pub fn upload(&self, bytes: &[u8], target: &mut ort::value::DynTensor) -> Result<(), String> {
        let on_gpu = target.memory_info().allocation_device() == ort::memory::AllocationDevice::CUDA;
        let values: usize = super::tensor_shape(target).iter().product();
        if !on_gpu || *target.data_type() != ort::value::TensorElementType::Uint8 || values != bytes.len() {
            return Err(format!("cannot upload {} bytes into this tensor", bytes.len()));
        }
        self.stream.context().bind_to_thread().map_err(|e| e.to_string())?;
        // SAFETY: `target` is CUDA memory of `bytes.len()` bytes (checked above) in the context
        // just made current; the copy is ordered on this stream before the runs that read it,
        // and the driver stages pageable `bytes` before returning, so they may then change.
        unsafe {
            let device = target.data_ptr_mut() as cudarc::driver::sys::CUdeviceptr;
            cudarc::driver::result::memcpy_htod_async(device, bytes, self.stream.cu_stream())
        }
        .map_err(|e| format!("cannot upload to the GPU: {e}"))
    }

    /// Waits until the work queued on this stream so far is done.
    pub fn synchronize(&self) -> Result<(), String> {
        self.stream.synchronize().map_err(|e| format!("cannot wait for the GPU: {e}"))
    }

    /// Queues a copy of `bytes` bytes from device address `from` to device address `to` on this
    /// stream.
    ///
    /// # Safety
    /// Both ranges must be device memory of this stream's context, valid and not otherwise
    /// written until the copy is done (the stream synchronised or a later run on it ordered).
    pub unsafe fn copy_on_device(&self, from: usize, to: usize, bytes: usize) -> Result<(), String> {
        self.stream.context().bind_to_thread().map_err(|e| e.to_string())?;
        // SAFETY: the caller guarantees both ranges (see above).
        unsafe { cudarc::driver::result::memcpy_dtod_async(to as _, from as _, bytes, self.stream.cu_stream()) }
            .map_err(|e| format!("cannot copy on the GPU: {e}"))
    }

    /// The raw `CUstream`, for ONNX Runtime's `user_compute_stream`.
    pub fn raw(&self) -> *mut () {
        self.stream.cu_stream() as *mut ()
    }

    pub fn priority(&self) -> StreamPriority {
        self.priority
    }

    /// Whether `self` and `other` are the same CUDA stream.
    pub fn same_as(&self, other: &ComputeStream) -> bool {
        self.stream.cu_stream() == other.stream.cu_stream()
    }
}

/// The order between an element's stream and the stream of a model session it shares with other
/// elements: the session's run starts once the element's work queued before it (the pixel graphs
/// that fill the model's inputs) is done, and the element's work queued after it (the graphs that
/// read the outputs) starts once the run is done. Neither side's CPU thread waits: each stream
/// waits for an event recorded on the other. The two events are made once, so that no CUDA call
/// that could disturb another thread's graph capture happens per run.
pub(crate) struct StreamOrder {
    element: ComputeStream,
    session: ComputeStream,
    inputs_written: cudarc::driver::CudaEvent,
    outputs_written: cudarc::driver::CudaEvent,
}

impl StreamOrder {
    pub(crate) fn new(element: &ComputeStream, session: &ComputeStream) -> Result<StreamOrder, String> {
        let event = |stream: &ComputeStream| stream.stream.context().new_event(None).map_err(|e| e.to_string());
        Ok(StreamOrder {
            inputs_written: event(element)?,
            outputs_written: event(session)?,
            element: element.clone(),
            session: session.clone(),
        })
    }

    /// Before the session's run is queued: the session's stream waits for the element's work so far.
    pub(crate) fn before_run(&self) -> Result<(), String> {
        self.inputs_written.record(&self.element.stream).map_err(|e| format!("cannot record a CUDA event: {e}"))?;
        self.session.stream.wait(&self.inputs_written).map_err(|e| format!("cannot wait for a CUDA event: {e}"))
    }

    /// After the session's run is queued: the element's later work waits for it.
    pub(crate) fn after_run(&self) -> Result<(), String> {
        self.outputs_written.record(&self.session.stream).map_err(|e| format!("cannot record a CUDA event: {e}"))?;
        self.element.stream.wait(&self.outputs_written).map_err(|e| format!("cannot wait for a CUDA event: {e}"))
    }
}
