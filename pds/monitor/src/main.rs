//! The root task: initialiser, then monitor.
//!
//! As initialiser it executes the boot spec the system builder embedded in
//! this image: it creates every kernel object from untyped memory, loads PD
//! images, maps memory, installs capabilities and starts the PDs. It decides
//! nothing itself; every choice was made (and reported) by the builder.
//!
//! As monitor it is then the fault handler of every top-level PD: it names
//! the PD that faulted and how, and the rest of the system runs on. What a
//! fault means and what is done about it is decided in `pds-monitor-core`
//! (`core/`), host-tested; this program is the glue (system calls,
//! console, I/O ports).
#![no_std]
#![no_main]

extern crate alloc;

mod console;
mod heap;
mod init;
mod pci;

// The runtime's bare-metal support: memcpy and friends, the personality
// routine `core` references. Nothing else of the runtime is used here.
pds_runtime::bare_metal_support!();

use core::cell::UnsafeCell;
use core::fmt;
use pds_boot_spec::{ImageHeader, Spec};
use pds_monitor_core::fault::{Action, FaultReport};

/// `(vaddr, len)` of the spec segment, patched by the builder. The
/// placeholder is non-zero so the symbol lives in `.data`.
#[repr(transparent)]
struct Patched<T>(UnsafeCell<T>);
// SAFETY: written into the image by the builder, only read at run time.
unsafe impl<T> Sync for Patched<T> {}

#[no_mangle]
#[used]
#[link_section = ".data.boot_spec"]
static __boot_spec_location: Patched<[u64; 2]> = Patched(UnsafeCell::new([u64::MAX; 2]));

pub fn log(args: fmt::Arguments) {
    console::print(args);
}

#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log(format_args!($($arg)*)) };
}

/// Stops the system with a message: the boot cannot go on.
pub fn fail(args: fmt::Arguments) -> ! {
    log(format_args!("boot failed: {args}"));
    halt()
}

fn halt() -> ! {
    sel4::debug_halt()
}

/// The embedded spec segment: header, spec and data blob.
fn spec_segment() -> &'static [u8] {
    // SAFETY: valid static; volatile because the builder patched it after compilation.
    let [vaddr, len] = unsafe { core::ptr::read_volatile(__boot_spec_location.0.get()) };
    if vaddr == u64::MAX {
        fail(format_args!("this root task carries no system: build the image with `cargo xtask build`"));
    }
    // SAFETY: the builder appended a loadable segment of `len` bytes at
    // `vaddr`, which the kernel mapped with the rest of this image.
    unsafe { core::slice::from_raw_parts(vaddr as *const u8, len as usize) }
}

#[no_mangle]
extern "C" fn monitor_main(bootinfo: *const sel4::BootInfo) -> ! {
    // SAFETY: the kernel passes a pointer to the boot info frame, mapped
    // read-only into the root task for its lifetime.
    let bootinfo = unsafe { &*bootinfo };
    let segment = spec_segment();
    let header = ImageHeader::from_bytes(segment).unwrap_or_else(|e| fail(format_args!("spec segment header: {e:?}")));
    let spec_bytes = segment
        .get(ImageHeader::SIZE..ImageHeader::SIZE + header.spec_len as usize)
        .unwrap_or_else(|| fail(format_args!("spec truncated")));
    let data = segment
        .get(header.data_offset as usize..(header.data_offset + header.data_len) as usize)
        .unwrap_or_else(|| fail(format_args!("data blob truncated")));
    let spec = Spec::decode(spec_bytes).unwrap_or_else(|e| fail(format_args!("spec: {e:?}")));
    log!("{} PDs, {} objects, {} mappings", spec.pds.len(), spec.instance_count(), spec.mappings.len());

    let start = init::cycles();
    let booted = init::Initialiser::new(bootinfo, &spec, data).run();
    let cycles = init::cycles() - start;
    let mhz = { bootinfo.arch_info }.max(1);
    log!("all PDs started ({} ms; TSC {mhz} MHz as the kernel measured it)", cycles / (mhz * 1000));
    monitor(&spec, &booted)
}

/// Reports each fault of a top-level PD, as `pds_monitor_core::fault`
/// decides, and stops the PD: the faulting thread is not replied to, and
/// it is suspended, so that a PD that sends fault messages itself (its
/// fault endpoint capability has Write) is stopped at the first like one
/// that faulted, and is reported once. Every other PD keeps running.
fn monitor(spec: &Spec, booted: &init::Booted) -> ! {
    loop {
        let (info, badge) = sel4::recv(booted.fault_ep);
        let report = FaultReport::new(&spec.pds, badge, sel4::Fault::from_message(info));
        log!("{report}");
        match report.action {
            // No reply; suspended (a real fault blocks the thread already,
            // a message it sent itself does not).
            Action::LeaveStopped => {
                let threads = spec.threads.iter().filter(|t| report.pd == Some(t.pd as usize));
                for thread in threads {
                    if let Err(e) = sel4::Tcb(booted.object(thread.tcb)).suspend() {
                        log!("could not suspend PD '{}': {e:?}", report.name);
                    }
                }
            }
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log!("panic: {info}");
    halt()
}

/// The kernel starts the root task with no stack and the boot info pointer
/// in `rdi`: switch to our own stack and enter Rust.
const STACK_SIZE: usize = 64 * 1024;
#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);
#[no_mangle]
static mut __monitor_stack: Stack = Stack([0; STACK_SIZE]);

core::arch::global_asm!(
    ".section .text.start, \"ax\"",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + __monitor_stack + {size}]",
    "    call monitor_main",
    "    ud2",
    size = const STACK_SIZE,
);
