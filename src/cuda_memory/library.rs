// SPDX-License-Identifier: MPL-2.0
//! The functions of GStreamer's CUDA library that the plugin calls, with their signatures as of
//! GStreamer 1.22 (`gst/cuda/*.h` of libgstreamer-plugins-bad1.0-dev 1.22). The library's API is
//! unstable: every symbol used is named here and nowhere else, so that a change in a later
//! GStreamer shows up in one file.
//!
//! The library is opened at run time (like ONNX Runtime), never linked: the plugin must load and
//! work on host memory where it or CUDA is absent.

use gst::glib;

/// The library's file name (its soname in GStreamer 1.22).
pub const LIBRARY: &str = "libgstcuda-1.0.so.0";

/// `gboolean gst_cuda_load_library (void)` (gstcudaloader.h, since 1.22): opens the CUDA driver
/// (libcuda.so.1) and resolves the driver functions the library calls; FALSE where the driver is
/// missing or too old.
type LoadLibrary = unsafe extern "C" fn() -> glib::ffi::gboolean;

/// The opened library and the functions read from it.
pub struct GstCuda {
    load_library: LoadLibrary,
    /// Open while this value lives (the caller keeps it for the whole process).
    _library: libloading::Library,
}

impl GstCuda {
    /// Opens the library and reads its symbols.
    pub fn open() -> Result<GstCuda, String> {
        // SAFETY: opening runs the library's initialisers; libgstcuda's only set up GLib types
        // lazily and are safe to run in a process where GStreamer is initialised.
        let library = unsafe { libloading::Library::new(LIBRARY) }
            .map_err(|e| format!("GStreamer's CUDA library {LIBRARY} cannot be opened ({e})"))?;
        // SAFETY: the symbol has this signature in GStreamer 1.22 (see `LoadLibrary`); the
        // pointer stays valid because the library is kept open in the returned value.
        let load_library = unsafe { library.get::<LoadLibrary>(b"gst_cuda_load_library\0") }
            .map(|symbol| *symbol)
            .map_err(|e| format!("{LIBRARY} lacks gst_cuda_load_library, is it GStreamer 1.22 or later? ({e})"))?;
        Ok(GstCuda { load_library, _library: library })
    }

    /// Whether the library found a usable CUDA driver.
    pub fn load_driver(&self) -> bool {
        // SAFETY: takes no arguments; the library guards its own one-time loading.
        unsafe { (self.load_library)() != glib::ffi::GFALSE }
    }
}
