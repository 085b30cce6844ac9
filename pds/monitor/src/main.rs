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
mod restart;

// The runtime's bare-metal support: memcpy and friends, the personality
// routine `core` references. Nothing else of the runtime is used here.
pds_runtime::bare_metal_support!();

use core::cell::UnsafeCell;
use core::fmt;
use pds_boot_spec::monitor_protocol::{words_name, LABEL_INJECT_FAULT, LABEL_RESTARTED, NAME_WORDS, STOPPED_FOR_GOOD};
use pds_boot_spec::{ImageHeader, Spec};
use pds_monitor_core::fault::{pd_index, Action, FaultReport};
use pds_monitor_core::restart::History;

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
    log!("boot phases (ms):{}", PhaseLine(&booted.phases, mhz));
    for pd in spec.pds.iter().filter(|pd| pd.fault_injector) {
        log!("WARNING: TEST SYSTEM: PD '{}' may make any PD fault (inject_faults)", pd.name);
    }
    Monitor::new(&spec, data, &booted, mhz).run()
}

/// Where a PD is in its life, as the monitor sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Running as started (at boot or by a restart that reported back).
    Running,
    /// Stopped after a fault, for good or until `restart_at` (TSC).
    Stopped { restart_at: Option<u64>, restart: u32, fault_at: u64 },
    /// Restarted (its threads at their entry), not yet serving (its
    /// runtime has not sent `LABEL_RESTARTED`).
    Restarting { restart: u32, fault_at: u64, started_at: u64 },
}

/// The monitor: every top-level PD's fault handler.
struct Monitor<'a> {
    spec: &'a Spec,
    data: &'a [u8],
    booted: &'a init::Booted,
    /// TSC cycles per microsecond (the kernel's measure).
    mhz: u64,
    boot: u64,
    life: alloc::vec::Vec<Life>,
    history: alloc::vec::Vec<History>,
    /// Whether the monitor lowered its priority to wait for a delayed
    /// restart.
    waiting_low: bool,
}

/// The monitor's priority while it waits for a delayed restart: the
/// lowest, so that it polls only when no PD wants to run.
const WAITING_PRIORITY: u8 = 0;
/// Its priority otherwise (the root task's: above every PD).
const MONITOR_PRIORITY: u8 = 255;

impl<'a> Monitor<'a> {
    fn new(spec: &'a Spec, data: &'a [u8], booted: &'a init::Booted, mhz: u64) -> Self {
        Monitor {
            spec,
            data,
            booted,
            mhz,
            boot: booted.started,
            life: alloc::vec![Life::Running; spec.pds.len()],
            history: alloc::vec![History::default(); spec.pds.len()],
            waiting_low: false,
        }
    }

    /// Microseconds since the PDs were started, for log lines (`t=`).
    fn micros(&self, tsc: u64) -> u64 {
        tsc.saturating_sub(self.boot) / self.mhz
    }

    fn nanos(&self, tsc: u64) -> u64 {
        self.micros(tsc).saturating_mul(1000)
    }

    /// Receives the next message on the fault endpoint. With a delayed
    /// restart pending, polls at the lowest priority instead (the monitor
    /// has no timer of its own), starting what falls due.
    fn next_message(&mut self) -> (sel4::MessageInfo, u64) {
        loop {
            let due = self.life.iter().filter_map(|l| match *l {
                Life::Stopped { restart_at: Some(at), .. } => Some(at),
                _ => None,
            });
            let Some(next) = due.min() else {
                self.set_waiting_low(false);
                return sel4::recv(self.booted.fault_ep);
            };
            if init::cycles() >= next {
                self.set_waiting_low(false);
                for pd in 0..self.life.len() {
                    if let Life::Stopped { restart_at: Some(at), restart, fault_at } = self.life[pd] {
                        if at <= next {
                            self.start_again(pd, restart, fault_at);
                        }
                    }
                }
                continue;
            }
            self.set_waiting_low(true);
            let (info, badge) = sel4::nb_recv(self.booted.fault_ep);
            // Every capability to the endpoint is badged: 0 is "nothing".
            if badge != 0 {
                return (info, badge);
            }
            sel4::yield_now();
        }
    }

    fn set_waiting_low(&mut self, low: bool) {
        if self.waiting_low != low {
            let priority = if low { WAITING_PRIORITY } else { MONITOR_PRIORITY };
            if let Err(e) = sel4::Tcb(sel4::init_caps::TCB).set_priority(priority) {
                log!("could not set the monitor's priority to {priority}: {e:?}");
            }
            self.waiting_low = low;
        }
    }

    /// Handles every message on the fault endpoint, forever.
    fn run(mut self) -> ! {
        loop {
            let (info, badge) = self.next_message();
            let pd = pd_index(badge, self.spec.pds.len());
            match (pd, info.label()) {
                (Some(pd), LABEL_RESTARTED) if matches!(self.life[pd], Life::Restarting { .. }) => self.back(pd),
                (Some(pd), LABEL_INJECT_FAULT) if self.spec.pds[pd].fault_injector => {
                    let mut words = [0u64; NAME_WORDS];
                    for (i, w) in words.iter_mut().enumerate() {
                        *w = sel4::get_mr(i);
                    }
                    self.inject(pd, &words);
                }
                _ => self.fault(badge, info),
            }
        }
    }

    /// A fault message (or anything else a PD sent on its fault
    /// endpoint): report it, stop the PD, apply its policy.
    fn fault(&mut self, badge: u64, info: sel4::MessageInfo) {
        let now = init::cycles();
        let mut report = FaultReport::new(&self.spec.pds, badge, sel4::Fault::from_message(info));
        let Some(pd) = report.pd else {
            log!("{report}");
            return;
        };
        // A fake fault or a fault of a PD already stopped is reported and
        // the PD stopped; only a PD that was running is restarted.
        let now_ns = self.nanos(now);
        let decision = self.history[pd].on_fault(self.spec.pds[pd].on_fault, now_ns);
        report.decide(decision);
        log!("{report} (t={})", Seconds(self.micros(now)));
        self.stop(pd, report.name);
        self.life[pd] = match report.action {
            Action::LeaveStopped | Action::GiveUp { .. } => {
                Life::Stopped { restart_at: None, restart: 0, fault_at: now }
            }
            Action::Restart { restart, delay_ns } => {
                let delay = delay_ns / 1000 * self.mhz;
                Life::Stopped { restart_at: Some(now + delay), restart, fault_at: now }
            }
        };
        match self.life[pd] {
            Life::Stopped { restart_at: Some(at), restart, fault_at } if at <= now => {
                self.start_again(pd, restart, fault_at)
            }
            Life::Stopped { restart_at: None, .. } => self.answer_callers(pd, report.name),
            _ => {}
        }
    }

    /// PD `pd` is stopped for good: if callers wait on its endpoint, start
    /// it again to answer them `LABEL_SERVER_STOPPED`, and nothing else
    /// (`pds_boot_spec::monitor_protocol`, "Stopped for good").
    fn answer_callers(&self, pd: usize, name: &str) {
        if !self.spec.accepts_calls(pd as u32) {
            return;
        }
        match restart::restart(self.spec, self.data, self.booted, pd, STOPPED_FOR_GOOD) {
            Ok(()) => log!("PD '{name}' answers every call 'stopped' (LABEL_SERVER_STOPPED) from now on"),
            Err(e) => {
                log!("could not start PD '{name}' to answer its callers: {e}; they wait");
                self.stop(pd, name);
            }
        }
    }

    /// Suspends every thread of PD `pd`: a real fault blocks the thread
    /// already, a message it sent itself does not.
    fn stop(&self, pd: usize, name: &str) {
        for thread in self.spec.threads.iter().filter(|t| t.pd as usize == pd) {
            if let Err(e) = sel4::Tcb(self.booted.object(thread.tcb)).suspend() {
                log!("could not suspend PD '{name}': {e:?}");
            }
        }
    }

    fn start_again(&mut self, pd: usize, restart: u32, fault_at: u64) {
        let name = self.spec.pds[pd].name.as_str();
        match restart::restart(self.spec, self.data, self.booted, pd, u64::from(restart)) {
            Ok(()) => {
                self.life[pd] = Life::Restarting { restart, fault_at, started_at: init::cycles() };
            }
            Err(e) => {
                log!("could not restart PD '{name}': {e}; it is stopped");
                self.stop(pd, name);
                self.life[pd] = Life::Stopped { restart_at: None, restart, fault_at };
                self.answer_callers(pd, name);
            }
        }
    }

    /// A restarted PD serves again (its runtime says so: `init` returned,
    /// or the PD called `pds_runtime::serving`).
    fn back(&mut self, pd: usize) {
        let now = init::cycles();
        if let Life::Restarting { restart, fault_at, started_at } = self.life[pd] {
            log!(
                "PD '{}' is back (restart {restart}): serving {} after its fault, {} after its restart (t={})",
                self.spec.pds[pd].name,
                Millis(now.saturating_sub(fault_at) / self.mhz),
                Millis(now.saturating_sub(started_at) / self.mhz),
                Seconds(self.micros(now))
            );
        }
        self.life[pd] = Life::Running;
    }

    /// A fault-injection request of PD `from` (a test PD): make the PD
    /// that `words` name fault.
    fn inject(&mut self, from: usize, words: &[u64; NAME_WORDS]) {
        let injector = self.spec.pds[from].name.as_str();
        let found = self.spec.pds.iter().position(|pd| pd.parent.is_none() && words_name(words, &pd.name));
        let Some(target) = found.filter(|&t| t != from) else {
            log!("PD '{injector}' asked to inject a fault into a PD that is not another top-level PD: nothing done");
            return;
        };
        let name = self.spec.pds[target].name.as_str();
        log!("PD '{injector}' injects a fault into PD '{name}' (t={})", Seconds(self.micros(init::cycles())));
        if self.life[target] != Life::Running {
            log!("PD '{name}' is not running: nothing injected");
            return;
        }
        if let Err(e) = restart::inject_fault(self.spec, self.booted, target) {
            log!("could not inject a fault into PD '{name}': {e}");
        }
    }
}

/// Microseconds as `S.ssssss`.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// Microseconds as `M.mmm ms`.
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03} ms", self.0 / 1000, self.0 % 1000)
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

/// The boot's phases as ` name ms.d` each (`mhz`: TSC cycles per µs).
struct PhaseLine<'a>(&'a init::Phases, u64);

impl fmt::Display for PhaseLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for phase in init::Phase::ALL {
            let us = self.0.cycles[phase as usize] / self.1;
            write!(f, " {} {}.{}", phase.name(), us / 1000, us % 1000 / 100)?;
        }
        Ok(())
    }
}
