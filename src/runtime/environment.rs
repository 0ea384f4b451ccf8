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

/// The candidates in the documented order for this system (see [`unix_search_order`] and
/// [`windows_search_order`]).
pub fn library_search_order() -> Vec<PathBuf> {
    let ort_dylib_path = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()).map(PathBuf::from);
    let plugin_dir = PLUGIN_DIR.get().map(PathBuf::as_path);
    #[cfg(windows)]
    {
        let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        windows_search_order(ort_dylib_path, plugin_dir, path_dirs, |file| file.is_file())
    }
    #[cfg(not(windows))]
    {
        let library_path_dirs =
            std::env::var_os("LD_LIBRARY_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        unix_search_order(ort_dylib_path, plugin_dir, library_path_dirs)
    }
}

/// `ORT_DYLIB_PATH`, files beside the plugin, then the dynamic loader's search path, and last the
/// versioned files (`libonnxruntime.so.1.x`) in the directories of `LD_LIBRARY_PATH`, which the
/// loader would not take for `libonnxruntime.so.1`.
#[cfg(not(windows))]
fn unix_search_order(
    ort_dylib_path: Option<PathBuf>,
    plugin_dir: Option<&Path>,
    library_path_dirs: Vec<PathBuf>,
) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = ort_dylib_path.into_iter().collect();
    if let Some(dir) = plugin_dir {
        candidates.push(dir.join("libonnxruntime.so"));
        candidates.push(dir.join("libonnxruntime.so.1"));
        candidates.extend(versioned_libraries(dir));
    }
    // A bare name makes dlopen search LD_LIBRARY_PATH, the ld.so cache and the default paths.
    candidates.push(PathBuf::from("libonnxruntime.so.1"));
    // Wheels ship a versioned file only (onnxruntime/capi/libonnxruntime.so.1.31.1), so a
    // LD_LIBRARY_PATH pointed at a wheel's folder gives dlopen nothing it looks for.
    for dir in library_path_dirs.iter().filter(|d| !d.as_os_str().is_empty()) {
        candidates.extend(versioned_libraries(dir));
    }
    candidates
}

/// The library's name on Windows, in every build of ONNX Runtime (CPU, DirectML, CUDA).
#[cfg(any(windows, test))]
const WINDOWS_LIBRARY: &str = "onnxruntime.dll";

/// `ORT_DYLIB_PATH`, `onnxruntime.dll` beside the plugin DLL, then the folders of `PATH` that
/// hold one, in order, and last the bare name for the DLL search path (the application's folder,
/// the system folders, `PATH`). `PATH`'s files are named in full because Windows 10 and 11 ship
/// an older `onnxruntime.dll` of their own in the system folder, which a bare name finds first.
/// `is_file` tells which files exist (a function so that tests can give a list).
#[cfg(any(windows, test))]
fn windows_search_order(
    ort_dylib_path: Option<PathBuf>,
    plugin_dir: Option<&Path>,
    path_dirs: Vec<PathBuf>,
    is_file: impl Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = ort_dylib_path.into_iter().collect();
    candidates.extend(plugin_dir.map(|dir| dir.join(WINDOWS_LIBRARY)));
    for dir in path_dirs.iter().filter(|d| !d.as_os_str().is_empty()) {
        let file = dir.join(WINDOWS_LIBRARY);
        if is_file(&file) && !candidates.contains(&file) {
            candidates.push(file);
        }
    }
    candidates.push(PathBuf::from(WINDOWS_LIBRARY));
    candidates
}

/// The `libonnxruntime.so.1.*` files in `dir`, newest version first.
#[cfg(not(windows))]
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
    #[cfg(not(windows))]
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

    #[test]
    #[cfg(not(windows))]
    fn unix_order_is_variable_plugin_folder_loader_then_versioned_files_on_ld_library_path() {
        let plugin = tempfile::tempdir().unwrap();
        let wheel = tempfile::tempdir().unwrap();
        std::fs::write(plugin.path().join("libonnxruntime.so.1.20.0"), b"").unwrap();
        std::fs::write(wheel.path().join("libonnxruntime.so.1.31.1"), b"").unwrap();
        let order = unix_search_order(
            Some(PathBuf::from("/opt/ort/libonnxruntime.so.1.31.1")),
            Some(plugin.path()),
            vec![PathBuf::new(), wheel.path().to_path_buf()],
        );
        let expected = [
            PathBuf::from("/opt/ort/libonnxruntime.so.1.31.1"),
            plugin.path().join("libonnxruntime.so"),
            plugin.path().join("libonnxruntime.so.1"),
            plugin.path().join("libonnxruntime.so.1.20.0"),
            PathBuf::from("libonnxruntime.so.1"),
            wheel.path().join("libonnxruntime.so.1.31.1"),
        ];
        assert_eq!(order, expected);
    }

    #[test]
    fn windows_order_is_variable_plugin_folder_path_folders_holding_the_dll_then_the_bare_name() {
        let dir = |name: &str| PathBuf::from(format!(r"C:\{name}"));
        let present = [dir("venv\\onnxruntime\\capi").join(WINDOWS_LIBRARY), dir("ort").join(WINDOWS_LIBRARY)];
        let order = windows_search_order(
            Some(dir("custom").join(WINDOWS_LIBRARY)),
            Some(&dir("gstreamer\\lib\\gstreamer-1.0")),
            vec![
                dir("Windows\\System32"),
                dir("venv\\onnxruntime\\capi"),
                PathBuf::new(),
                dir("empty"),
                dir("ort"),
                dir("venv\\onnxruntime\\capi"),
            ],
            |file| present.iter().any(|p| p == file),
        );
        let expected = [
            dir("custom").join(WINDOWS_LIBRARY),
            dir("gstreamer\\lib\\gstreamer-1.0").join(WINDOWS_LIBRARY),
            dir("venv\\onnxruntime\\capi").join(WINDOWS_LIBRARY),
            dir("ort").join(WINDOWS_LIBRARY),
            PathBuf::from("onnxruntime.dll"),
        ];
        assert_eq!(order, expected);
        // Without the variable, a plugin folder or a PATH folder holding it: the loader's search.
        assert_eq!(windows_search_order(None, None, Vec::new(), |_| true), [PathBuf::from("onnxruntime.dll")]);
    }
}
