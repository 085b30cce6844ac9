//! call-client (tests/systems/restart.system): calls call-server, has it
//! die in the middle of a call, and logs what each call answered: the
//! dying call must come back with the restarted server's error label
//! (`LABEL_SERVER_RESTARTED`) instead of blocking forever, and the next
//! call finds a server with fresh memory. Then it has the server die
//! once more, which its policy (`restart-backoff`) restarts 10 ms later,
//! and again until the monitor gives up: the dying call of the last
//! streak, and every call after it, must come back with the stopped
//! server's error label (`LABEL_SERVER_STOPPED`), never block.
#![no_std]
#![no_main]

use pds_boot_spec::monitor_protocol::{LABEL_SERVER_RESTARTED, LABEL_SERVER_STOPPED};
use pds_runtime::{get_mr, log, msginfo, Channel, Handler};

const SERVER: Channel = Channel::new(0);

fn count() -> (u64, u64, u64) {
    let reply = SERVER.pp_call(msginfo(1, 0));
    (reply.label(), get_mr(0), get_mr(1))
}

struct Client;

impl Handler for Client {
    fn init() -> Self {
        let (a, b) = (count(), count());
        log!("count: {:?} then {:?}", a, b);
        let died = SERVER.pp_call(msginfo(2, 0)).label();
        let verdict = if died == LABEL_SERVER_RESTARTED { "the server restarted: ok" } else { "UNEXPECTED" };
        log!("the dying call answered label {died:#x}: {verdict}");
        let after = count();
        log!("count after the restart: {:?}", after);
        // Again: under restart-backoff the second fault of a streak is
        // restarted 10 ms later; the dying call waits that long.
        let died = SERVER.pp_call(msginfo(2, 0)).label();
        log!("the second dying call answered label {died:#x}");
        // Until the streak is given up (a handful of faults: the monitor's
        // policy); a bound so that a monitor that never gives up is seen.
        let mut more = 0;
        while more < 10 {
            more += 1;
            let died = SERVER.pp_call(msginfo(2, 0)).label();
            if died != LABEL_SERVER_RESTARTED {
                log!("dying call {more} more answered label {died:#x}");
                break;
            }
        }
        let (a, b) = (count(), count());
        let verdict = if a.0 == LABEL_SERVER_STOPPED && b.0 == LABEL_SERVER_STOPPED { "ok" } else { "UNEXPECTED" };
        log!("calls to the stopped server answered labels {:#x} and {:#x}: {verdict}", a.0, b.0);
        log!("done");
        Client
    }
}

pds_runtime::protection_domain!(Client);
