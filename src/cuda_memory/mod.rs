// SPDX-License-Identifier: MPL-2.0
//! Frames in CUDA memory: `video/x-raw(memory:CUDAMemory)` through GStreamer 1.22's CUDA library
//! (libgstcuda-1.0, loaded at run time: [`library`]).
//!
//! Where the caps are offered: the elements' pad templates carry the CUDA-memory caps (the same
//! formats as host memory) only where the library opens, it finds the CUDA driver, the driver
//! sees a device, and `DLC_CUDA_MEMORY=1` is set. Elsewhere the caps are not offered and an
//! upstream element that insists on them fails to negotiate, with a warning from our element
//! naming the reason ([`refusal`]).
//!
//! How the elements read such frames today: they map them to host memory, and GStreamer's CUDA
//! allocator serves that map from a pinned host copy of the frame it keeps beside the device
//! memory. The first element of a chain downloads the frame once; the elements after it read and
//! write the same host copy; the frame goes back to the GPU only when an element maps it on the
//! device again (`cudadownload`, an encoder). That is the copy `cudadownload` would make, without
//! the extra element; the path that reads the frame where it lies on the GPU (issue 19) is not
//! built yet, which is why the caps stay behind `DLC_CUDA_MEMORY=1` until the GPU run of
//! `scripts/gpu-bench.sh cuda-memory` has shown the outputs equal to host memory's.
//!
//! What the device path needs, for whoever builds it: map with `GST_MAP_CUDA`
//! (`GST_MAP_FLAG_LAST << 1` in 1.22) only after `gst_is_cuda_memory` said the memory is CUDA
//! memory (on system memory the flag is ignored and the pointer is a host one); the device planes
//! and strides as a frame kind of their own beside [`crate::vision::FrameView`] (device pointers
//! must never become Rust slices); the letterbox plan's rows and each face region copied with
//! `cuMemcpy2DAsync` on the element's stream, and the YUV layouts turned into RGB by the pixel
//! graphs rather than by `FrameView`; the paste writing into the device planes; the stream
//! synchronised before the frame is unmapped; and the context answer described in the README.

pub mod library;

use std::sync::{LazyLock, OnceLock};

/// GStreamer's caps feature for CUDA memory (`GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY`).
pub const CUDA_MEMORY_FEATURE: &str = "memory:CUDAMemory";

/// The environment variable that opts in to CUDA-memory caps while the path is experimental.
pub const OPT_IN: &str = "DLC_CUDA_MEMORY";

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("dlccuda", gst::DebugColorFlags::empty(), Some("gstdlc frames in CUDA memory"))
});

/// Whether the elements offer CUDA-memory caps in this process, and if not, why; decided once,
/// when the first element class is made (pad templates are fixed from then on).
pub fn availability() -> &'static Result<(), String> {
    static AVAILABILITY: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABILITY.get_or_init(|| {
        let opt_in = std::env::var(OPT_IN).ok();
        let decided = check(opt_in.as_deref());
        match &decided {
            Ok(()) => gst::info!(CAT, "frames in CUDA memory are accepted ({CUDA_MEMORY_FEATURE})"),
            // Asked for and not possible: said where GStreamer's warnings are shown.
            Err(reason) if opt_in.is_some() => gst::warning!(CAT, "frames in CUDA memory are not accepted: {reason}"),
            Err(reason) => gst::info!(CAT, "frames in CUDA memory are not accepted: {reason}"),
        }
        decided
    })
}

/// The decision for the opt-in variable's value `opt_in`: the library, the driver and a device
/// must be there.
fn check(opt_in: Option<&str>) -> Result<(), String> {
    if opt_in != Some("1") {
        return Err(format!(
            "frames in CUDA memory are experimental (they are mapped to host memory, one copy per frame) and \
             accepted only with {OPT_IN}=1"
        ));
    }
    // Never closed, whatever the outcome: once its code has run, GLib may keep pointers into it,
    // and GStreamer's CUDA memory calls into it for as long as frames flow.
    let library: &'static library::GstCuda = Box::leak(Box::new(library::GstCuda::open()?));
    if !library.load_driver() {
        return Err(format!("{} cannot load the CUDA driver (libcuda.so.1)", library::LIBRARY));
    }
    let devices = device_count()?;
    if devices == 0 {
        return Err("the CUDA driver sees no device".to_string());
    }
    Ok(())
}

/// How many CUDA devices the driver sees.
fn device_count() -> Result<i32, String> {
    use cudarc::driver::sys;
    // SAFETY: `is_culib_present` only tries to open the driver library; `cuInit` and
    // `cuDeviceGetCount` take a flag of 0 and a pointer to a local, as the driver documents.
    unsafe {
        if !sys::is_culib_present() {
            return Err("the CUDA driver library (libcuda.so.1) is not present".to_string());
        }
        let result = sys::cuInit(0);
        if result != sys::CUresult::CUDA_SUCCESS {
            return Err(format!("cuInit failed: {result:?}"));
        }
        let mut count = 0;
        let result = sys::cuDeviceGetCount(&mut count);
        if result != sys::CUresult::CUDA_SUCCESS {
            return Err(format!("cuDeviceGetCount failed: {result:?}"));
        }
        Ok(count)
    }
}

/// `caps` with every structure repeated under the CUDA-memory feature, first (a CUDA producer
/// upstream then keeps its frames on the GPU), where the CUDA-memory caps are offered; else
/// `caps` unchanged.
pub fn with_cuda_memory(caps: gst::Caps) -> gst::Caps {
    if availability().is_err() {
        return caps;
    }
    let mut cuda = caps.clone();
    cuda.make_mut().set_features_simple(Some(gst::CapsFeatures::new([CUDA_MEMORY_FEATURE])));
    cuda.merge(caps);
    cuda
}

/// Why `caps` are refused, when they ask for CUDA memory and this process does not accept it;
/// `None` for any other caps (GStreamer's own check then decides).
pub fn refusal(caps: &gst::CapsRef) -> Option<String> {
    let wants_cuda = caps.iter_with_features().any(|(_, features)| features.contains(CUDA_MEMORY_FEATURE));
    let reason = availability().as_ref().err().filter(|_| wants_cuda)?;
    Some(format!(
        "video/x-raw({CUDA_MEMORY_FEATURE}) refused: {reason}; put cudadownload before this element to give it host \
         memory"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_opt_in_nothing_is_loaded_and_the_reason_names_it() {
        for value in [None, Some("0"), Some("yes")] {
            let reason = check(value).expect_err("refused");
            assert!(reason.contains("DLC_CUDA_MEMORY=1"), "{value:?}: {reason}");
        }
    }

    /// This build machine has GStreamer's CUDA library but no CUDA driver: opted in, the check
    /// still refuses, naming what is missing (on a machine without the library, naming that).
    #[test]
    fn opted_in_without_a_driver_names_what_is_missing() {
        if unsafe { cudarc::driver::sys::is_culib_present() } {
            eprintln!("skipped: this machine has a CUDA driver");
            return;
        }
        gst::init().expect("GStreamer initialises");
        let reason = check(Some("1")).expect_err("refused without a driver");
        assert!(reason.contains("libcuda.so.1") || reason.contains(library::LIBRARY), "{reason}");
    }

    #[test]
    fn cuda_caps_are_not_offered_where_refused() {
        gst::init().expect("GStreamer initialises");
        let host = gst::Caps::builder("video/x-raw").field("format", "RGB").build();
        let cuda = gst::Caps::builder("video/x-raw").features([CUDA_MEMORY_FEATURE]).field("format", "RGB").build();
        match availability() {
            Ok(()) => {
                assert!(with_cuda_memory(host.clone()).can_intersect(&cuda));
                assert_eq!(refusal(&cuda), None);
            }
            Err(reason) => {
                assert_eq!(with_cuda_memory(host.clone()), host);
                let refusal = refusal(&cuda).expect("CUDA caps refused");
                assert!(refusal.contains(reason) && refusal.contains("cudadownload"), "{refusal}");
            }
        }
        assert_eq!(refusal(&host), None);
    }
}
