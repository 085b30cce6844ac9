//! The PD runtime: the libmicrokit programming model in Rust.
//!
//! A protection domain is a type implementing [`Handler`], registered with
//! [`protection_domain!`]. The runtime calls [`Handler::init`] once and then
//! runs the event loop: it waits on the PD's input capability and dispatches
//! each event to [`Handler::notified`], [`Handler::protected`] or
//! [`Handler::fault`], exactly as libmicrokit does.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use pds_runtime::{Channel, ChannelSet, Handler};
//! struct Pong;
//! impl Handler for Pong {
//!     fn init() -> Self { pds_runtime::log!("ready"); Pong }
//!     fn notified(&mut self, channels: ChannelSet) { /* ... */ }
//! }
//! pds_runtime::protection_domain!(Pong);
//! ```
//!
//! What a PD may do is decided by the capabilities the system builder put in
//! its CSpace (layout in [`pds_boot_spec::cspace`]); the channel masks the builder
//! patches into [`pds_boot_spec::PD_CHANNELS_SYMBOL`] only let the runtime report
//! a misuse clearly instead of faulting on an empty slot.
#![no_std]

pub mod console;
#[doc(hidden)]
pub mod mem;
mod var;

#[cfg(feature = "pd")]
mod event_loop;
#[cfg(feature = "pd")]
mod pd;

#[cfg(feature = "pd")]
pub use event_loop::{run, wakes};
#[cfg(feature = "pd")]
#[doc(hidden)]
pub use pd::report_panic;
#[cfg(feature = "pd")]
pub use pd::{name, restarts, serving, Channel, ChannelSet, Child};
pub use pds_boot_spec::channel_names::ChannelUse;
pub use pds_boot_spec::setvar_needs::SetvarNeed;
pub use sel4::{get_mr, set_mr, Fault, MessageInfo};
pub use var::{Bytes, Integer, MemoryRegion, NamedChannel, SectorsVar, Var};

/// A message info with `label` and `count` message registers, as
/// libmicrokit's `microkit_msginfo_new`.
pub fn msginfo(label: u64, count: u64) -> MessageInfo {
    MessageInfo::new(label, 0, 0, count)
}

/// What a PD does. Every method but `init` has a default, so a PD implements
/// only the events it expects.
#[cfg(feature = "pd")]
pub trait Handler: Sized {
    /// Whether the PD serves once `init` returns. After a restart the
    /// runtime then tells the monitor the PD is back as `init` returns; a
    /// PD that serves only later (httpd, once it has read its site image)
    /// sets this `false` and calls [`serving`] when it does.
    const SERVING_AFTER_INIT: bool = true;

    /// Runs once, before any event is delivered.
    fn init() -> Self;

    /// One or more channels were notified (or IRQs raised) since the last
    /// call. All of them are delivered at once, as one notification word.
    fn notified(&mut self, channels: ChannelSet) {
        log!("unexpected notification on {:?}", channels);
    }

    /// A protected procedure call arrived on `channel`; the message registers
    /// hold its arguments. The returned message is the reply. Only PDs with
    /// `pp="true"` receive these.
    fn protected(&mut self, channel: Channel, msg: MessageInfo) -> MessageInfo {
        log!("unexpected protected call on channel {} (label {})", channel.id(), msg.label());
        msginfo(u64::from(u32::MAX), 0)
    }

    /// A child PD faulted. Return a reply to resume it, or `None` to leave it
    /// stopped.
    fn fault(&mut self, child: Child, msg: MessageInfo) -> Option<MessageInfo> {
        let fault = sel4::Fault::from_message(msg);
        log!("child {} faulted: {} at ip {:#x?}; left stopped", child.id(), fault.kind_name(), fault.ip());
        None
    }
}

/// The value of a variable declared with [`setvar!`], or `None` after
/// logging that the system description did not set it.
#[cfg(feature = "pd")]
pub fn setvar_required(var: &Var, name: &str) -> Option<u64> {
    let value = var.get();
    if value.is_none() {
        log!("error: `{name}` is not set in the system description");
    }
    value
}

/// `require_setvar!(name)`: the value of the setvar `name`, or `None` after
/// logging that the description did not set it.
#[cfg(feature = "pd")]
#[macro_export]
macro_rules! require_setvar {
    ($name:ident) => {
        $crate::setvar_required(&$name, stringify!($name))
    };
}

/// Logs a line prefixed with the PD's name, like `[pong] ready`.
#[cfg(feature = "pd")]
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::console::print_prefixed($crate::name(), format_args!($($arg)*))
    };
}

/// Registers the PD's [`Handler`] type and provides what a bare-metal
/// program needs: the entry point `_start`, the panic handler (it reports the
/// panic to the monitor) and [`bare_metal_support!`]. These are expanded in
/// the program crate, never compiled into the runtime library itself, so
/// libraries that use the runtime's types are tested on the host with std.
#[cfg(feature = "pd")]
#[macro_export]
macro_rules! protection_domain {
    ($handler:ty) => {
        // `restarts`: `rdi` as the monitor set it (0 at boot).
        #[no_mangle]
        extern "C" fn __microkit_main(restarts: u64) -> ! {
            $crate::run::<$handler>(restarts)
        }

        #[panic_handler]
        fn __microkit_panic(info: &core::panic::PanicInfo) -> ! {
            $crate::report_panic(info)
        }

        // The entry point. The initialiser starts the thread with `rsp` at
        // the top of its stack; align it as the SysV ABI expects at a call
        // and enter Rust. `rdi` (the number of restarts, set by the
        // monitor) is the first argument.
        core::arch::global_asm!(
            ".section .text.start, \"ax\"",
            ".global _start",
            "_start:",
            "    and rsp, -16",
            "    call __microkit_main",
            "    ud2",
        );

        $crate::bare_metal_support!();
    };
}

/// The C symbols a program linked without libc needs: `memcpy`, `memmove`,
/// `memset`, `memcmp`, `bcmp` (from the runtime's `mem` module) and the
/// personality routine the precompiled `core` references (programs abort on
/// panic and never unwind, so it is never called). [`protection_domain!`]
/// expands it; the root task, which has its own entry, uses it alone.
#[macro_export]
macro_rules! bare_metal_support {
    () => {
        /// # Safety
        /// As C `memcpy`.
        #[no_mangle]
        pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { $crate::mem::memcpy(dst, src, n) }
        }
        /// # Safety
        /// As C `memmove`.
        #[no_mangle]
        pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { $crate::mem::memmove(dst, src, n) }
        }
        /// # Safety
        /// As C `memset`.
        #[no_mangle]
        pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { $crate::mem::memset(dst, value, n) }
        }
        /// # Safety
        /// As C `memcmp`.
        #[no_mangle]
        pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded contract.
            unsafe { $crate::mem::memcmp(a, b, n) }
        }
        /// # Safety
        /// As C `bcmp`.
        #[no_mangle]
        pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded contract.
            unsafe { $crate::mem::memcmp(a, b, n) }
        }
        #[no_mangle]
        pub extern "C" fn rust_eh_personality() {}
    };
}
