//! Console output with a per-PD prefix.
//!
//! A message is formatted into a fixed line buffer first and then written out
//! in one go, so that lines from different PDs interleave only at line
//! boundaries in the common case.
//!
//! # Where the bytes go
//!
//! In a PD (feature `pd`), the first match of:
//!
//! 1. an output installed with [`set_output`]: the PD that owns the console
//!    hardware (the serial driver) prints its own lines, panics included,
//!    straight to the device;
//! 2. the PD's **console ring**, by this convention: the description maps a
//!    4 KiB region with `setvar_vaddr="microkit_console"` into the PD, and
//!    the PD's channel end named `console` (`setvar_id="console"`; by
//!    custom id 25, the highest, as stdout is fd 1) leads to the serial
//!    driver PD, which maps the same region and prints what arrives. Bytes
//!    go into the ring (`console-ring` protocol) and that channel gets a
//!    *deferred* notify: a
//!    burst of lines in one handler is one signal, sent by the event loop
//!    before it waits again (after `init` too). When a line does not fit,
//!    the runtime signals at once first: the serial driver runs at a higher
//!    priority, so it has drained the ring when the signal returns (if it
//!    does not, what still does not fit is dropped and counted, never
//!    waited for);
//! 3. the kernel's debug console (`seL4_DebugPutChar`), which only a debug
//!    kernel has.
//!
//! ```xml
//! <memory_region name="console_ping" size="0x1000" />
//! <protection_domain name="ping" ...>
//!     <map mr="console_ping" vaddr="0x5000000" perms="rw" setvar_vaddr="microkit_console" />
//! </protection_domain>
//! <protection_domain name="serial" ...>
//!     <map mr="console_ping" vaddr="0x5000000" perms="rw" setvar_vaddr="console_client_0" />
//! </protection_domain>
//! <channel> <end pd="ping" id="25" setvar_id="console" /> <end pd="serial" id="0" /> </channel>
//! ```
//!
//! Without feature `pd` (the root task), bytes always go to the kernel's
//! debug console.

use core::fmt::{self, Write};

/// Longest line written in one piece; longer messages are split.
const LINE: usize = 256;

/// Formats into a stack buffer, flushing whenever it fills.
pub struct LineWriter {
    buf: [u8; LINE],
    len: usize,
}

impl LineWriter {
    pub const fn new() -> Self {
        LineWriter { buf: [0; LINE], len: 0 }
    }

    pub fn flush(&mut self) {
        put_bytes(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Default for LineWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Writes `[prefix] message\n` as one line.
pub fn print_prefixed(prefix: &str, args: fmt::Arguments) {
    let mut w = LineWriter::new();
    let _ = write!(w, "[{prefix}] ");
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
    w.flush();
}

/// Writes bytes to the kernel's debug console (dropped by a release kernel).
fn debug_put_bytes(bytes: &[u8]) {
    for &b in bytes {
        sel4::debug_put_char(b);
    }
}

#[cfg(not(feature = "pd"))]
/// Writes raw bytes to the console.
pub fn put_bytes(bytes: &[u8]) {
    debug_put_bytes(bytes);
}

#[cfg(feature = "pd")]
pub use pd::{flush, put_bytes, set_output};

#[cfg(feature = "pd")]
use lib_console_ring as ring;

#[cfg(feature = "pd")]
mod pd {
    use super::debug_put_bytes;
    use super::ring::{ConsoleRegion, Writer, REGION_SIZE};
    use crate::Channel;
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    crate::setvar!(microkit_console);
    crate::channel!(CONSOLE = "console", optional);

    /// Where this PD's console bytes go, decided on first use.
    enum Sink {
        Undecided,
        Output(fn(&[u8])),
        /// The ring, and the channel that signals the serial driver.
        Ring(Writer<'static>, Channel),
        Debug,
    }

    struct State(UnsafeCell<Sink>);
    // SAFETY: a PD has one thread, and `BUSY` keeps a nested call (a log
    // line from inside the console code) from touching the state.
    unsafe impl Sync for State {}

    static STATE: State = State(UnsafeCell::new(Sink::Undecided));
    static BUSY: AtomicBool = AtomicBool::new(false);

    /// Runs `f` on the sink, or returns `None` if the console is already in
    /// use further up this thread's stack.
    fn with_sink<R>(f: impl FnOnce(&mut Sink) -> R) -> Option<R> {
        if BUSY.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: `BUSY` was clear, so no other reference to the state is
        // live (one thread; nested calls are turned away above).
        let sink = unsafe { &mut *STATE.0.get() };
        if let Sink::Undecided = sink {
            *sink = match (mapped_region(), CONSOLE.get_optional()) {
                (Some(region), Some(channel)) => Sink::Ring(Writer::new(region), channel),
                _ => Sink::Debug,
            };
        }
        let r = f(sink);
        BUSY.store(false, Ordering::Release);
        Some(r)
    }

    fn mapped_region() -> Option<&'static ConsoleRegion> {
        let vaddr = microkit_console.get()?;
        // SAFETY: the builder patches `microkit_console` with the address of
        // a mapping of the console region, which by the convention is a 4 KiB
        // read-write page mapped for the PD's lifetime.
        Some(unsafe { ConsoleRegion::at(vaddr as usize) })
    }

    const _: () = assert!(REGION_SIZE == 4096);

    /// Writes raw bytes to the console.
    pub fn put_bytes(bytes: &[u8]) {
        let done = with_sink(|sink| match sink {
            Sink::Output(out) => out(bytes),
            Sink::Ring(ring, channel) => {
                if ring.free() < bytes.len() {
                    // Let the (higher-priority) serial driver drain it now.
                    channel.notify();
                }
                ring.write(bytes);
                channel.deferred_notify();
            }
            Sink::Debug | Sink::Undecided => debug_put_bytes(bytes),
        });
        if done.is_none() {
            debug_put_bytes(bytes);
        }
    }

    /// Signals the serial driver now if the ring holds bytes it has not
    /// taken: for a PD about to stop (a panic) or to block for long, since a
    /// deferred notify is only sent when the event loop waits.
    pub fn flush() {
        with_sink(|sink| {
            if let Sink::Ring(ring, channel) = sink {
                if ring.pending() > 0 {
                    channel.notify();
                }
            }
        });
    }

    /// Sends this PD's console output to `out` from now on, for the PD that
    /// drives the console device itself.
    pub fn set_output(out: fn(&[u8])) {
        with_sink(|sink| *sink = Sink::Output(out));
    }
}
