//! What a running PD knows about itself: its name, its channels, its
//! children, and how it reports a panic.

use crate::log;
use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use pds_boot_spec::{badge, cspace, PD_NAME_LEN};

/// Bytes patched by the builder, `[u8; PD_NAME_LEN]`, NUL padded. The
/// placeholder is non-zero so that the array is in `.data`, not `.bss`.
#[repr(transparent)]
struct Patched<T>(UnsafeCell<T>);
// SAFETY: written only into the image before the PD starts; read-only after.
unsafe impl<T> Sync for Patched<T> {}

#[no_mangle]
#[used]
#[link_section = ".data.microkit.name"]
static __microkit_pd_name: Patched<[u8; PD_NAME_LEN]> = Patched(UnsafeCell::new(*b"unnamed\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"));

/// `[notify, protected call, irq, child]` masks of valid ids, patched by the
/// builder (see `pds_boot_spec::PD_CHANNELS_SYMBOL`).
#[no_mangle]
#[used]
#[link_section = ".data.microkit.channels"]
static __microkit_channels: Patched<[u64; 4]> = Patched(UnsafeCell::new([u64::MAX; 4]));

/// Entry point of each child by id, patched by the builder.
#[no_mangle]
#[used]
#[link_section = ".data.microkit.children"]
static __microkit_child_entries: Patched<[u64; badge::MAX_CHILD_ID as usize + 1]> =
    Patched(UnsafeCell::new([u64::MAX; badge::MAX_CHILD_ID as usize + 1]));

fn mask(i: usize) -> u64 {
    // SAFETY: valid, never-written static; volatile because the value was
    // patched into the image after compilation.
    unsafe { core::ptr::read_volatile(__microkit_channels.0.get())[i] }
}

/// The PD's name from the system description.
pub fn name() -> &'static str {
    // SAFETY: the array is valid for the program's lifetime and nothing
    // writes it once the PD runs. The symbol is exported (`no_mangle`), so
    // the compiler cannot assume the placeholder is still there.
    let bytes: &'static [u8; PD_NAME_LEN] = unsafe { &*__microkit_pd_name.0.get() };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(PD_NAME_LEN);
    core::str::from_utf8(&bytes[..len]).unwrap_or("?")
}

/// A channel end of this PD, by its id in the system description.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Channel(u8);

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({})", self.0)
    }
}

/// How many times the monitor restarted this PD (0 at boot).
static RESTARTS: AtomicU64 = AtomicU64::new(0);

/// How many times the monitor restarted this PD after a fault (0 at
/// boot): a PD's `init` may say so, or do what only a restart needs.
pub fn restarts() -> u64 {
    RESTARTS.load(Ordering::Relaxed)
}

pub(crate) fn set_restarts(n: u64) {
    RESTARTS.store(n, Ordering::Relaxed);
}

/// Whether [`serving`] has told the monitor.
static SERVING_REPORTED: AtomicBool = AtomicBool::new(false);

/// Tells the monitor that this PD, restarted after a fault, serves again
/// (`pds_boot_spec::monitor_protocol::LABEL_RESTARTED`): the monitor logs
/// how long after the fault. Once per life; nothing at boot. The runtime
/// calls it when `init` returns unless the handler's
/// `SERVING_AFTER_INIT` is false.
pub fn serving() {
    if restarts() > 0 && !SERVING_REPORTED.swap(true, Ordering::Relaxed) {
        sel4::send(cspace::FAULT_EP, crate::msginfo(pds_boot_spec::monitor_protocol::LABEL_RESTARTED, 0));
    }
}

/// Signals to send when the current event has been handled.
static DEFERRED_NOTIFY: AtomicU64 = AtomicU64::new(0);
/// IRQs to acknowledge when the current event has been handled.
static DEFERRED_IRQ_ACK: AtomicU64 = AtomicU64::new(0);

impl Channel {
    /// # Panics
    /// If `id` is beyond [`badge::MAX_CHANNEL_ID`].
    pub const fn new(id: u8) -> Self {
        assert!(id as u64 <= badge::MAX_CHANNEL_ID, "channel id out of range");
        Channel(id)
    }

    pub fn id(self) -> u8 {
        self.0
    }

    fn allowed(self, kind: usize, what: &str) -> bool {
        let ok = mask(kind) & (1 << self.0) != 0;
        if !ok {
            log!("error: channel {} is not set up for {what} in the system description", self.0);
        }
        ok
    }

    /// Whether the description lets this PD notify the other end (no
    /// error is logged if not, unlike [`Channel::notify`]).
    pub fn can_notify(self) -> bool {
        mask(0) & (1 << self.0) != 0
    }

    /// Signals the PD at the other end.
    pub fn notify(self) {
        if self.allowed(0, "notify") {
            sel4::signal(cspace::OUTPUT_NOTIFICATION_BASE + u64::from(self.0));
        }
    }

    /// Signals the PD at the other end once the current event has been
    /// handled; several deferred notifies of one channel become one signal.
    pub fn deferred_notify(self) {
        if self.allowed(0, "notify") {
            DEFERRED_NOTIFY.fetch_or(1 << self.0, Ordering::Relaxed);
        }
    }

    /// Acknowledges the IRQ with this id so that it can fire again.
    pub fn irq_ack(self) {
        if self.allowed(2, "an irq") {
            let _ = sel4::IrqHandler(cspace::IRQ_BASE + u64::from(self.0)).ack();
        }
    }

    /// Acknowledges the IRQ once the current event has been handled.
    pub fn deferred_irq_ack(self) {
        if self.allowed(2, "an irq") {
            DEFERRED_IRQ_ACK.fetch_or(1 << self.0, Ordering::Relaxed);
        }
    }

    /// Makes a protected procedure call to the PD at the other end, which
    /// runs at a higher priority; returns its reply. Arguments and results
    /// travel in the message registers ([`crate::set_mr`], [`crate::get_mr`]).
    pub fn pp_call(self, msg: sel4::MessageInfo) -> sel4::MessageInfo {
        if !self.allowed(1, "protected calls") {
            return crate::msginfo(u64::from(u32::MAX), 0);
        }
        sel4::call(cspace::PROTECTED_CALL_BASE + u64::from(self.0), msg)
    }
}

/// Sends the deferred signals and IRQ acknowledgements.
pub(crate) fn flush_deferred() {
    for (set, base, is_irq) in
        [(&DEFERRED_NOTIFY, cspace::OUTPUT_NOTIFICATION_BASE, false), (&DEFERRED_IRQ_ACK, cspace::IRQ_BASE, true)]
    {
        let mut bits = set.swap(0, Ordering::Relaxed);
        while bits != 0 {
            let id = u64::from(bits.trailing_zeros());
            bits &= bits - 1;
            if is_irq {
                let _ = sel4::IrqHandler(base + id).ack();
            } else {
                sel4::signal(base + id);
            }
        }
    }
}

/// The channels (and IRQs) delivered in one notification.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChannelSet(pub(crate) u64);

impl ChannelSet {
    pub fn contains(self, ch: Channel) -> bool {
        self.0 & (1 << ch.0) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Channel> {
        let mut bits = self.0 & ((1 << (badge::MAX_CHANNEL_ID + 1)) - 1);
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let id = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(Channel(id))
        })
    }
}

impl fmt::Debug for ChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|c| c.0)).finish()
    }
}

/// A child PD of this PD, by its id in the system description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child(pub(crate) u8);

impl Child {
    pub fn id(self) -> u8 {
        self.0
    }

    fn tcb(self) -> sel4::Tcb {
        sel4::Tcb(cspace::CHILD_TCB_BASE + u64::from(self.0))
    }

    /// Stops the child.
    pub fn stop(self) -> sel4::Result<()> {
        self.tcb().suspend()
    }

    /// Restarts the child from its entry point with a fresh stack (for
    /// instance after a fault). Its memory is not reloaded: data it wrote
    /// survives the restart.
    pub fn restart(self) -> sel4::Result<()> {
        // SAFETY: valid, never-written static, patched into the image by the builder.
        let entries = unsafe { core::ptr::read_volatile(__microkit_child_entries.0.get()) };
        let entry = entries[usize::from(self.0)];
        if entry == u64::MAX {
            return Err(sel4::Error::InvalidArgument);
        }
        let regs = sel4::UserContext { rip: entry, rsp: pds_boot_spec::layout::STACK_TOP, ..Default::default() };
        let words = (core::mem::size_of::<sel4::UserContext>() / 8) as u64;
        self.tcb().write_registers(true, 0, words, regs)
    }
}

/// Number the panic handler passes in `rdx` to an undefined syscall, so that
/// the monitor reports a panic rather than a generic unknown-syscall fault.
pub const PANIC_SYSCALL: u64 = pds_boot_spec::PANIC_SYSCALL;

/// What the panic handler of [`protection_domain!`](crate::protection_domain)
/// does: log the panic, flush the console and make the monitor name the PD.
pub fn report_panic(info: &core::panic::PanicInfo) -> ! {
    log!("panic: {}", info);
    // The event loop will not run again to send deferred console signals.
    crate::console::flush();
    loop {
        // SAFETY: an undefined syscall number makes the kernel send an
        // UnknownSyscall fault to this PD's fault handler (the monitor),
        // which names the PD. The thread is not resumed.
        unsafe { core::arch::asm!("syscall", in("rdx") PANIC_SYSCALL, out("rcx") _, out("r11") _) };
    }
}
