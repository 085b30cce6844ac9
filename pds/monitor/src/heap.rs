//! A bump allocator for the initialiser's boot-time data (the decoded spec
//! and its bookkeeping). Nothing is freed: it all lives until the system
//! stops, and no PD data path ever allocates here.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

struct Bump {
    arena: Arena,
    next: AtomicUsize,
}

// SAFETY: the root task is single-threaded; `next` is only advanced.
unsafe impl Sync for Bump {}

// SAFETY: `alloc` returns a block of the layout's size and alignment inside
// the arena, never handed out before (the bump only moves up), or null when
// the arena is full; `dealloc` frees nothing, which is always sound.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.0.get() as usize;
        let start = (base + self.next.load(Ordering::Relaxed)).next_multiple_of(layout.align());
        let end = start + layout.size();
        if end > base + HEAP_SIZE {
            return core::ptr::null_mut();
        }
        self.next.store(end - base, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static HEAP: Bump = Bump { arena: Arena(UnsafeCell::new([0; HEAP_SIZE])), next: AtomicUsize::new(0) };
