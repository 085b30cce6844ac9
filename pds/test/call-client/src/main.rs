//! call-client (tests/systems/restart.system): calls call-server, has it
//! die in the middle of a call, and logs what each call answered: the
//! dying call must come back with the restarted server's error label
//! (`LABEL_SERVER_RESTARTED`) instead of blocking forever, and the next
//! call finds a server with fresh memory. Then it has the server die
//! once more, which its policy (`restart-backoff`) restarts 10 ms later.
#![no_std]
#![no_main]

use pds_boot_spec::monitor_protocol::LABEL_SERVER_RESTARTED;
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
        log!("done");
        Client
    }
}

pds_runtime::protection_domain!(Client);
