//! Memory a script call holds, counted by the allocator, so that one call cannot build more than
//! [`crate::Limits::max_call_bytes`] however it spreads its data (one string, a map of strings, many variables).
//!
//! Rhai's own limits weigh one value at a time, and not at every step (a map filled by `m[k] = v` is not
//! weighed again), so they alone do not bound a call. [`CountingAllocator`] keeps, per thread, the bytes
//! allocated minus the bytes freed; a call notes the figure when it starts, and the engine's progress callback,
//! which runs at every operation, stops the call once it holds more than its limit. The binary (and any test
//! that checks the limit) installs the allocator with `#[global_allocator]`; without it nothing is counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated minus bytes freed on this thread (memory freed here but allocated elsewhere makes it
    /// smaller, hence signed).
    static HELD: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting what each thread holds while a script call runs on it.
pub struct CountingAllocator;

fn add(bytes: isize) {
    // `try_with`: thread-locals may be gone while a thread ends; nothing to count then.
    let _ = HELD.try_with(|held| held.set(held.get().wrapping_add(bytes)));
}

// SAFETY: every call is passed to `System` unchanged; the counters are plain thread-local cells that neither
// allocate nor free.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The thread's count when a call started; [`Counted::held`] says how much the call holds now.
pub(crate) struct Counted {
    start: isize,
}

impl Counted {
    pub(crate) fn start() -> Counted {
        Counted {
            start: HELD.with(Cell::get),
        }
    }
}

impl Counted {
    /// Bytes the thread holds beyond what it held when this count started.
    pub(crate) fn held(&self) -> isize {
        HELD.with(Cell::get) - self.start
    }
}

/// Runs `f` with what it allocates left out of the count: memory the runtime spends on a script's behalf
/// (parsing an event the script asked a field of) is not the script's.
pub(crate) fn uncounted<R>(f: impl FnOnce() -> R) -> R {
    let before = HELD.with(Cell::get);
    let result = f();
    HELD.with(|held| held.set(before));
    result
}
