//! pong: a higher-priority server. It reads what ping left in the shared
//! region, notifies ping back, and offers a protected procedure `add_mul`.
#![no_std]
#![no_main]

use pds_runtime::{log, Channel, ChannelSet, Handler, MemoryRegion, MessageInfo};

const PING: Channel = Channel::new(1);
const SHARED_SIZE: usize = 0x1000;
const LABEL_ADD_MUL: u64 = 1;

pds_runtime::setvar!(shared_vaddr);

struct Pong {
    shared: MemoryRegion,
}

impl Handler for Pong {
    fn init() -> Self {
        // SAFETY: the system description maps `shared` (0x1000 bytes, read-only) here.
        let shared = unsafe { MemoryRegion::from_var(&shared_vaddr, SHARED_SIZE) }.expect("shared region mapped");
        log!("init: waiting");
        Pong { shared }
    }

    fn notified(&mut self, channels: ChannelSet) {
        if !channels.contains(PING) {
            return;
        }
        let mut buf = [0u8; 64];
        let len = (self.shared.read::<u32>(0).unwrap_or(0) as usize).min(buf.len());
        self.shared.copy_out(4, &mut buf[..len]);
        let text = core::str::from_utf8(&buf[..len]).unwrap_or("<not utf-8>");
        log!("notified by ping; shared region says: \"{text}\"");
        // Sent when this handler returns, before pong waits again.
        PING.deferred_notify();
    }

    fn protected(&mut self, channel: Channel, msg: MessageInfo) -> MessageInfo {
        if channel != PING || msg.label() != LABEL_ADD_MUL || msg.length() != 2 {
            return pds_runtime::msginfo(1, 0);
        }
        let (a, b) = (pds_runtime::get_mr(0), pds_runtime::get_mr(1));
        log!("protected call add_mul({a}, {b})");
        pds_runtime::set_mr(0, a + b);
        pds_runtime::set_mr(1, a * b);
        pds_runtime::msginfo(0, 2)
    }
}

pds_runtime::protection_domain!(Pong);
