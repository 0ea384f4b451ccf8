// SPDX-License-Identifier: MPL-2.0
//! Finding libonnxruntime and creating the process's single ONNX Runtime environment.
//!
//! ONNX Runtime allows one environment per process, ever, and every `ort` call before a
//! successful load would panic inside `ort`; so all access goes through [`environment`], which
//! loads once and hands out the shared environment, or an error listing what was tried. A failed
//! attempt is not cached: fixing `ORT_DYLIB_PATH` and restarting the pipeline works.

use std::path::{Path, PathBuf};
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
/// dynamic loader's search path, and last the versioned files (`libonnxruntime.so.1.x`) in the
/// directories of `LD_LIBRARY_PATH`, which the loader would not take for `libonnxruntime.so.1`.
pub fn library_search_order() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    if let Some(dir) = PLUGIN_DIR.get() {
        candidates.push(dir.join("libonnxruntime.so"));
        candidates.push(dir.join("libonnxruntime.so.1"));
        candidates.extend(versioned_libraries(dir));
    }
    // A bare name makes dlopen search LD_LIBRARY_PATH, the ld.so cache and the default paths.
    candidates.push(PathBuf::from("libonnxruntime.so.1"));
    // Wheels ship a versioned file only (onnxruntime/capi/libonnxruntime.so.1.31.1), so a
    // LD_LIBRARY_PATH pointed at a wheel's folder gives dlopen nothing it looks for.
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        for dir in std::env::split_paths(&paths).filter(|d| !d.as_os_str().is_empty()) {
            candidates.extend(versioned_libraries(&dir));
        }
    }
    candidates
}

/// The `libonnxruntime.so.1.*` files in `dir`, newest version first.
fn versioned_libraries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut versioned: Vec<(Vec<u64>, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = name.to_str()?.strip_prefix("libonnxruntime.so.1.")?;
            // Numbers compared as numbers: 1.31 is newer than 1.9.
            let key = version.split('.').map(|part| part.parse().unwrap_or(0)).collect();
            Some((key, entry.path()))
        })
        .collect();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    versioned.into_iter().map(|(_, path)| path).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_libraries_come_newest_first_and_only_onnx_runtime_1() {
        let dir = tempfile::tempdir().unwrap();
        for name in
            ["libonnxruntime.so.1.9.0", "libonnxruntime.so.1.31.1", "libonnxruntime.so.2.0.0", "libother.so.1.5"]
        {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let found: Vec<String> = versioned_libraries(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found, ["libonnxruntime.so.1.31.1", "libonnxruntime.so.1.9.0"]);
        assert!(versioned_libraries(&dir.path().join("absent")).is_empty());
    }
}
