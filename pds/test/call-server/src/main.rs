//! call-server (tests/systems/restart.system): a server the monitor
//! restarts (`on_fault="restart"`), which faults on purpose in the middle
//! of a protected call when asked to (label [`DIE`]: a test PD only).
//!
//! Label [`COUNT`] answers how many COUNT calls this life has served,
//! from a counter in `.bss`, and MR1 a word of `.data` that every COUNT
//! call changes: after a restart both must be as the image has them
//! again (0 calls, [`INITIAL`]), which shows the monitor reset the
//! memory.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use pds_runtime::{log, msginfo, set_mr, Channel, Handler, MessageInfo};

/// Counts and answers.
const COUNT: u64 = 1;
/// Faults before answering.
const DIE: u64 = 2;
/// The `.data` word's value in the image.
const INITIAL: u64 = 0x5eed;

static CALLS: AtomicU64 = AtomicU64::new(0);
static DATA: AtomicU64 = AtomicU64::new(INITIAL);

struct Server;

impl Handler for Server {
    fn init() -> Self {
        log!(
            "init (restart {}): {} calls served, data {:#x}",
            pds_runtime::restarts(),
            CALLS.load(Ordering::Relaxed),
            DATA.load(Ordering::Relaxed)
        );
        Server
    }

    fn protected(&mut self, _channel: Channel, msg: MessageInfo) -> MessageInfo {
        match msg.label() {
            COUNT => {
                let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                let data = DATA.fetch_add(1, Ordering::Relaxed);
                set_mr(0, calls);
                set_mr(1, data);
                msginfo(0, 2)
            }
            DIE => {
                log!("faulting in the middle of a call");
                // SAFETY: none needed for the effect wanted: a write to the
                // first page, which is never mapped, is a VM fault.
                unsafe { core::ptr::write_volatile(0x10 as *mut u64, 1) };
                msginfo(0, 0)
            }
            _ => msginfo(1, 0),
        }
    }
}

pds_runtime::protection_domain!(Server);
