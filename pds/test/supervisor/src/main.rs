//! supervisor: parent of `worker`. It receives the worker's faults through
//! `Handler::fault` (not the monitor) and restarts it, up to a limit.
#![no_std]
#![no_main]

use pds_runtime::{log, Child, Handler, MessageInfo};

const MAX_RESTARTS: u32 = 2;

struct Supervisor {
    restarts: u32,
}

impl Handler for Supervisor {
    fn init() -> Self {
        log!("init: supervising worker");
        Supervisor { restarts: 0 }
    }

    fn fault(&mut self, child: Child, msg: MessageInfo) -> Option<MessageInfo> {
        let fault = pds_runtime::Fault::from_message(msg);
        log!("child {} faulted: {} at address {:#x}", child.id(), fault.kind_name(), fault.addr().unwrap_or(0));
        if self.restarts == MAX_RESTARTS {
            log!("child {} restarted {MAX_RESTARTS} times already; leaving it stopped", child.id());
            return None;
        }
        self.restarts += 1;
        match child.restart() {
            Ok(()) => log!("restarted child {} (restart {})", child.id(), self.restarts),
            Err(e) => log!("cannot restart child {}: {e:?}", child.id()),
        }
        None
    }
}

pds_runtime::protection_domain!(Supervisor);
