//! A cap on the live heap of a test binary, so a decoder that grows without bound on hostile
//! input stops the run at once with a message saying so, instead of eating the machine's
//! memory until the kernel's OOM killer ends it with no word of why.
//!
//! The fuzz targets cap single allocations (crates/gob/fuzz, `CappedAllocator`); this caps
//! their sum, which is what a runaway loop of small allocations grows. A global allocator
//! must not unwind, so going over the cap aborts the test binary after printing the message
//! (the run then fails with SIGABRT).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live at any moment and aborting with a message
/// once they pass `limit`. Install it with `#[global_allocator]` in the test binary.
pub struct LiveHeapCap {
    limit: usize,
    live: AtomicUsize,
}

/// The input a hostile-input test is decoding, as it last noted with [`note_input`], for the
/// message; `usize::MAX` until one does.
static LAST_INPUT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Notes the index of the input a hostile-input test is about to decode: the message names
/// it if the cap is hit, and the test's inputs are seeded, so that one input reproduces it.
pub fn note_input(index: usize) {
    LAST_INPUT.store(index, Ordering::Relaxed);
}

impl LiveHeapCap {
    pub const fn new(limit: usize) -> LiveHeapCap {
        LiveHeapCap {
            limit,
            live: AtomicUsize::new(0),
        }
    }

    fn charge(&self, bytes: usize) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if live > self.limit {
            over_cap(live, self.limit);
        }
    }

    fn release(&self, bytes: usize) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

#[cold]
fn over_cap(live: usize, limit: usize) -> ! {
    // No String here: allocating inside the allocator would recurse.
    let input = LAST_INPUT.load(Ordering::Relaxed);
    let mut err = std::io::stderr();
    let _ = err.write_fmt(format_args!(
        "\nheap cap: {live} bytes live, over this test binary's cap of {limit} bytes: a \
         decoder is growing without bound\n"
    ));
    if input != usize::MAX {
        let _ = err.write_fmt(format_args!(
            "heap cap: the hostile-input test was on its input {input}\n"
        ));
    }
    std::process::abort()
}

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counting (of successful calls only) adds nothing but an abort after forwarding.
unsafe impl GlobalAlloc for LiveHeapCap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl's comment).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.charge(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.charge(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            if new_size > layout.size() {
                self.charge(new_size - layout.size());
            } else {
                self.release(layout.size() - new_size);
            }
        }
        new_ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        self.release(layout.size());
    }
}
