// SPDX-License-Identifier: MPL-2.0
//! Handing the memory a stopped pipeline freed back to the system.
//!
//! A run of the elements allocates tens of megabytes of work memory (frame copies, float tensors,
//! ONNX Runtime's arenas) and frees all of it when it stops. glibc keeps freed memory in its heaps
//! for reuse: once a large block has been freed (a 640×640 float tensor, 4.9 MB), it serves
//! smaller requests from the heaps instead of separate mappings and keeps up to twice that size
//! free at the top of each heap (its dynamic mmap threshold), one heap per arena, and threads get
//! arenas of their own. The process therefore stayed 20 to 70 MB above what it used after each
//! NULL → PLAYING → NULL cycle, by a different amount each time (RELIABILITY.md). The allocator's
//! settings belong to the application and stay as they are; the elements only ask, once in NULL,
//! for the free pages to be given back. glibc returns the free memory at the top of a thread's
//! arena only from `free`, so some stays: a few megabytes per arena.

/// Returns the free pages of the C allocator's heaps to the system (glibc's `malloc_trim`; with
/// other C libraries nothing is done). Walks the heaps, each under its lock: for state changes,
/// never per frame.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes no pointer, is thread-safe (it takes each arena's lock in
        // turn) and only releases pages that hold no allocation.
        unsafe {
            malloc_trim(0);
        }
    }
}
