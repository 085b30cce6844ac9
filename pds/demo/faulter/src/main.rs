//! faulter: faults on purpose when woken, to show that the monitor reports
//! the fault by PD name and that the rest of the system carries on.
#![no_std]
#![no_main]

use pds_runtime::{log, ChannelSet, Handler};

/// Nothing is mapped at the bottom of any PD's address space.
const UNMAPPED: usize = 0x10;

struct Faulter;

impl Handler for Faulter {
    fn init() -> Self {
        log!("init: waiting");
        Faulter
    }

    fn notified(&mut self, _: ChannelSet) {
        log!("faulting on purpose: writing to {UNMAPPED:#x}");
        // SAFETY: not safe at all, on purpose: the address is unmapped, so the
        // kernel stops this thread and reports a VM fault to the monitor.
        unsafe { (UNMAPPED as *mut u64).write_volatile(0xdead) };
        log!("unreachable: the write above faults");
    }
}

pds_runtime::protection_domain!(Faulter);
