// SPDX-License-Identifier: MPL-2.0
//! The failures a user can act on, each with a message that names the cause.

use std::fmt;
use std::path::PathBuf;

/// Where to put ONNX Runtime's library and how to get it, in this system's terms.
#[cfg(not(windows))]
const LIBRARY_HINT: &str = "Set ORT_DYLIB_PATH to the full path of libonnxruntime.so.1.x, or \
    install it beside the plugin or on the loader path (a folder on LD_LIBRARY_PATH may hold \
    libonnxruntime.so.1.x). Get it with `pip install onnxruntime` (CPU) or `pip install \
    onnxruntime-gpu` (CUDA); the wheel keeps the file at onnxruntime/capi/libonnxruntime.so.1.x in \
    site-packages.";
#[cfg(windows)]
const LIBRARY_HINT: &str = "Set ORT_DYLIB_PATH to the full path of onnxruntime.dll, or put \
    onnxruntime.dll beside the plugin DLL or in a folder on PATH. Get it with `pip install \
    onnxruntime` (CPU), `pip install onnxruntime-directml` (DirectML) or `pip install \
    onnxruntime-gpu` (CUDA); the wheel keeps the file at onnxruntime\\capi\\onnxruntime.dll in \
    site-packages.";

#[derive(Debug, Clone)]
pub enum RuntimeError {
    /// No ONNX Runtime library could be loaded; `tried` pairs each candidate with its failure.
    LibraryNotFound { tried: Vec<(String, String)> },
    /// A model file that does not exist (or no model directory holds it); `looked_in` lists
    /// where a relative path was looked for, worded for the message.
    ModelMissing { path: PathBuf, property: &'static str, looked_in: Vec<String> },
    /// A file that exists but ONNX Runtime cannot load as a model.
    ModelUnreadable { path: PathBuf, reason: String },
    /// A valid model of the wrong kind, e.g. a face enhancer given to the detector.
    WrongKind { path: PathBuf, expected: String, found: String },
    /// Anything else ONNX Runtime reported while building or running a session.
    Session { path: PathBuf, reason: String },
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::LibraryNotFound { tried } => {
                write!(f, "ONNX Runtime library not found. {LIBRARY_HINT} Tried:")?;
                for (candidate, reason) in tried {
                    write!(f, " [{candidate}: {reason}]")?;
                }
                Ok(())
            }
            RuntimeError::ModelMissing { path, property, looked_in } => {
                write!(f, "model file '{}' does not exist", path.display())?;
                if !looked_in.is_empty() {
                    write!(f, " (looked for {})", looked_in.join(" and "))?;
                }
                write!(
                    f,
                    ": set the '{property}' property to an existing .onnx file or place the file \
                     there (see models/README.md, `models/fetch`)"
                )
            }
            RuntimeError::ModelUnreadable { path, reason } => {
                write!(f, "model file '{}' could not be loaded as an ONNX model: {reason}", path.display())
            }
            RuntimeError::WrongKind { path, expected, found } => write!(
                f,
                "model file '{}' is not the kind of model this element needs: expected {expected}; \
                 found {found}",
                path.display()
            ),
            RuntimeError::Session { path, reason } => {
                write!(f, "ONNX Runtime failed on model '{}': {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for RuntimeError {}

impl RuntimeError {
    /// The error as a GStreamer error message, in the domain a user would look for. The
    /// explanation is the message itself (what applications show as `err.message`), not only
    /// its debug text.
    pub fn to_error_message(&self) -> gst::ErrorMessage {
        let text = self.to_string();
        match self {
            RuntimeError::LibraryNotFound { .. } => gst::error_msg!(gst::LibraryError::Init, ("{}", text)),
            RuntimeError::ModelMissing { .. } => gst::error_msg!(gst::ResourceError::NotFound, ("{}", text)),
            RuntimeError::ModelUnreadable { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{}", text)),
            RuntimeError::WrongKind { .. } => gst::error_msg!(gst::ResourceError::Settings, ("{}", text)),
            RuntimeError::Session { .. } => gst::error_msg!(gst::ResourceError::Failed, ("{}", text)),
        }
    }
}
