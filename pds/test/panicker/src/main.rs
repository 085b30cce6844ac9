//! panicker: panics in `init`, to show that the panic handler reports the
//! PD and message and that the monitor then reports the PD as panicked.
#![no_std]
#![no_main]

use pds_runtime::{log, Handler};

struct Panicker;

impl Handler for Panicker {
    fn init() -> Self {
        log!("init: about to panic");
        let answer = core::hint::black_box(42);
        panic!("deliberate panic with answer {answer}");
    }
}

pds_runtime::protection_domain!(Panicker);
