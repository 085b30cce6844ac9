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
//! use microkit::{Channel, ChannelSet, Handler};
//! struct Pong;
//! impl Handler for Pong {
//!     fn init() -> Self { microkit::log!("ready"); Pong }
//!     fn notified(&mut self, channels: ChannelSet) { /* ... */ }
//! }
//! microkit::protection_domain!(Pong);
//! ```
//!
//! What a PD may do is decided by the capabilities the system builder put in
//! its CSpace (layout in [`boot_spec::cspace`]); the channel masks the builder
//! patches into [`boot_spec::PD_CHANNELS_SYMBOL`] only let the runtime report
//! a misuse clearly instead of faulting on an empty slot.
#![no_std]

pub mod console;
#[cfg(all(not(test), target_os = "linux", target_arch = "x86_64"))]
pub mod mem;
mod var;

#[cfg(feature = "pd")]
mod event_loop;
#[cfg(feature = "pd")]
mod pd;

#[cfg(feature = "pd")]
pub use event_loop::run;
#[cfg(feature = "pd")]
pub use pd::{name, Channel, ChannelSet, Child};
pub use sel4::{get_mr, set_mr, Fault, MessageInfo};
pub use var::{Bytes, Integer, MemoryRegion, Var};

/// A message info with `label` and `count` message registers, as
/// libmicrokit's `microkit_msginfo_new`.
pub fn msginfo(label: u64, count: u64) -> MessageInfo {
    MessageInfo::new(label, 0, 0, count)
}

/// What a PD does. Every method but `init` has a default, so a PD implements
/// only the events it expects.
#[cfg(feature = "pd")]
pub trait Handler: Sized {
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

/// Registers the PD's [`Handler`] type and provides the program entry point.
#[cfg(feature = "pd")]
#[macro_export]
macro_rules! protection_domain {
    ($handler:ty) => {
        #[no_mangle]
        extern "C" fn __microkit_main() -> ! {
            $crate::run::<$handler>()
        }
    };
}
