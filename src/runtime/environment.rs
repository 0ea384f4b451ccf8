// SPDX-License-Identifier: MPL-2.0
//! Finding libonnxruntime and creating the process's single ONNX Runtime environment.
//!
//! ONNX Runtime allows one environment per process, ever, and every `ort` call before a
//! successful load would panic inside `ort`; so all access goes through [`environment`], which
//! loads once and hands out the shared environment, or an error listing what was tried. A failed
//! attempt is not cached: fixing `ORT_DYLIB_PATH` and restarting the pipeline works.

use std::path::PathBuf;
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::RuntimeError;

/// Directory of the loaded plugin file, recorded at plugin load so that a library installed
/// beside the plugin can be found.
static PLUGIN_DIR: OnceLock<PathBuf> = OnceLock::new();
static ENVIRONMENT: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);

/// Records where the plugin file lives (called from `plugin_init`).
pub(crate) fn set_plugin_dir(dir: PathBuf) {
    let _ = PLUGIN_DIR.set(dir);
}

/// The candidates in the documented order: `ORT_DYLIB_PATH`, files beside the plugin, then the
/// dynamic loader's search path.
pub fn library_search_order() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    if let Some(dir) = PLUGIN_DIR.get() {
        candidates.push(dir.join("libonnxruntime.so"));
        candidates.push(dir.join("libonnxruntime.so.1"));
        // Wheels ship a versioned file only (libonnxruntime.so.1.31.1): accept any such one.
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut versioned: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so.1."))
                })
                .collect();
            versioned.sort();
            candidates.extend(versioned.into_iter().rev());
        }
    }
    // A bare name makes dlopen search LD_LIBRARY_PATH, the ld.so cache and the default paths.
    candidates.push(PathBuf::from("libonnxruntime.so.1"));
    candidates
}

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<ort::environment::Environment, RuntimeError> {
    let mut slot = ENVIRONMENT.lock();
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let mut tried = Vec::new();
    for candidate in library_search_order() {
        let shown = candidate.display().to_string();
        // A path that names a missing file would only give dlopen's vaguer message.
        if candidate.components().count() > 1 && !candidate.exists() {
            tried.push((shown, "no such file".to_string()));
            continue;
        }
        match ort::init_from(&candidate).map_err(|e| e.to_string()).and_then(with_shared_thread_pools) {
            Ok(builder) => match builder.with_name("gstdlc").build() {
                Ok(env) => {
                    *slot = Some(env.clone());
                    return Ok(env);
                }
                Err(e) => tried.push((shown, e.to_string())),
            },
            Err(e) => tried.push((shown, e)),
        }
    }
    Err(RuntimeError::LibraryNotFound { tried })
}

/// The environment's thread pools, which every session runs on unless it asks for threads of its
/// own (`threads` or `spin-wait` set). A session with a pool of its own starts its threads when it
/// is made and joins them when it is dropped, so every start of a pipeline used to start and end
/// one thread per physical core but one for each of its models; glibc gives each new thread that
/// allocates a memory arena, and keeps the memory freed in it (RELIABILITY.md). The shared pools
/// live as long as the process: one thread per physical core for the work inside an operator
/// (what ONNX Runtime gives a session by default), none for running operators side by side (the
/// sessions run them one after the other), and idle threads sleep, as `spin-wait`'s default says.
fn with_shared_thread_pools(
    builder: ort::environment::EnvironmentBuilder,
) -> Result<ort::environment::EnvironmentBuilder, String> {
    let pools = ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(0)
        .and_then(|pools| pools.with_inter_threads(1))
        .and_then(|pools| pools.with_spin_control(false))
        .map_err(|e| format!("cannot set up the shared thread pools: {e}"))?;
    Ok(builder.with_global_thread_pool(pools))
}
