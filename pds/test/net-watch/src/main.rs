//! net-watch: a privileged monitoring PD. The description gives it the
//! copy privilege and a copy filter (`<watch>`), so the demultiplexer
//! hands it a copy of matching frames that another PD (or no one) owns.
//! It logs the first few copies and counts the rest; a copy never takes
//! a frame away from its owner.
#![no_std]
#![no_main]

use net_client::NetClient;
use net_filter::Dotted;
use net_packet::{classify, Network};
use pds_runtime::{log, ChannelSet, Handler};

/// Copies logged one by one; after that only counted.
const LOGGED: u64 = 3;

struct Watch {
    net: NetClient,
    copies: u64,
}

fn on_copy(copies: &mut u64, frame: &[u8]) {
    *copies += 1;
    if *copies > LOGGED {
        return;
    }
    match classify(frame).map(|p| p.network) {
        Ok(Network::Ipv4(ip)) => log!(
            "copy {}: {} -> {} protocol {} ({} bytes)",
            *copies,
            Dotted(ip.src),
            Dotted(ip.dst),
            ip.protocol.0,
            frame.len()
        ),
        _ => log!("copy {}: {} bytes", *copies, frame.len()),
    }
}

impl Handler for Watch {
    fn init() -> Self {
        let net = NetClient::new().unwrap_or_else(|e| panic!("{e}"));
        let mut watch = Watch { net, copies: 0 };
        log!("watching");
        let copies = &mut watch.copies;
        watch.net.poll(|_, frame| on_copy(copies, frame));
        watch
    }

    fn notified(&mut self, _channels: ChannelSet) {
        let copies = &mut self.copies;
        self.net.poll(|_, frame| on_copy(copies, frame));
    }
}

pds_runtime::protection_domain!(Watch);
