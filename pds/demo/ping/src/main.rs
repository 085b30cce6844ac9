//! ping: the lowest-priority PD of the demo, which drives it. It writes a
//! message into the shared region and notifies pong, makes protected calls to
//! pong, and wakes the faulter, then shows that it carries on after the
//! faulter's deliberate fault.
#![no_std]
#![no_main]

use pds_runtime::{log, Channel, ChannelSet, Handler, MemoryRegion};

const PONG: Channel = Channel::new(0);
const FAULTER: Channel = Channel::new(1);
const SHARED_SIZE: usize = 0x1000;

pds_runtime::setvar!(shared_vaddr);

struct Ping {
    round: u32,
}

/// Calls pong's `add_mul` protected procedure.
fn add_mul(a: u64, b: u64) -> (u64, u64) {
    pds_runtime::set_mr(0, a);
    pds_runtime::set_mr(1, b);
    let reply = PONG.pp_call(pds_runtime::msginfo(1, 2));
    assert_eq!(reply.label(), 0, "pong refused the call");
    (pds_runtime::get_mr(0), pds_runtime::get_mr(1))
}

impl Handler for Ping {
    fn init() -> Self {
        // SAFETY: the system description maps `shared` (0x1000 bytes) here.
        let shared = unsafe { MemoryRegion::from_var(&shared_vaddr, SHARED_SIZE) }.expect("shared region mapped");
        let msg = b"hello from ping";
        shared.write(0, msg.len() as u32);
        shared.copy_in(4, msg);
        log!("init: wrote {} bytes to the shared region at {:#x}; notifying pong", msg.len(), shared.base());
        PONG.notify();
        log!("notify returned (pong has the higher priority, so it ran first)");
        Ping { round: 0 }
    }

    fn notified(&mut self, channels: ChannelSet) {
        if !channels.contains(PONG) {
            log!("unexpected notification {channels:?}");
            return;
        }
        self.round += 1;
        log!("notified by pong (round {})", self.round);
        let (sum, product) = add_mul(6, 7);
        log!("protected call add_mul(6, 7) -> sum {sum}, product {product}");
        log!("waking the faulter");
        FAULTER.notify();
        let (sum, _) = add_mul(20, 22);
        log!("still running after the faulter's fault: add_mul(20, 22) -> sum {sum}");
        log!("demo complete");
    }
}

pds_runtime::protection_domain!(Ping);
