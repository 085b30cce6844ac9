//! worker: a child PD that faults on its first run and succeeds on its
//! second. Its memory survives a restart, so it counts its runs there.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use pds_runtime::{log, Handler};

static RUNS: AtomicU32 = AtomicU32::new(0);

struct Worker;

impl Handler for Worker {
    fn init() -> Self {
        let run = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
        log!("run {run}");
        if run == 1 {
            // SAFETY: not safe, on purpose: nothing is mapped at 0x20, so
            // this faults and the supervisor (the parent) is told.
            unsafe { (0x20 as *const u64).read_volatile() };
        }
        log!("run {run}: work done");
        Worker
    }
}

pds_runtime::protection_domain!(Worker);
