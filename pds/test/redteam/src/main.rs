//! redteam: a compromised web server, played on purpose. It runs in
//! `tests/systems/redteam.system`, beside the real httpd, and tries, one by
//! one, what an attacker who took over httpd's PD could try with httpd's
//! kinds of capabilities. Every attempt must be refused; the integration
//! test (`xtask/src/itest/redteam.rs`) judges each from outside.
//!
//! One program, many PDs: the PD named `redteam` holds what httpd holds (a
//! network client of the demultiplexer with arpd, a `send_from` region,
//! the block protocol to a disk driver with a window, the timer channel,
//! a read-write region and read-only ones) and makes every attempt that is
//! refused with an answer, logging one line per attempt:
//!
//! ```text
//! [redteam] <attempt>: <what it observed>: refused
//! ```
//!
//! (`NOT REFUSED` instead of `refused` if the system let it through). An
//! attempt that is refused by a fault stops the PD that makes it, so each
//! of those runs in a PD of its own, named `rt-<attempt>` (see
//! [`faulting_attempt`]), that holds the capability or mapping it abuses
//! and makes that one attempt at `init`; the monitor reports its fault,
//! which is the observation. Those PDs have no console (the serial PD has
//! sixteen rings, too few for these PDs beside the others), so the monitor's line is their only output.
//!
//! The PD `redteam` repeats its network attempts ([`RedTeam::round`]) each
//! time a TCP segment reaches the port it claims (81), so that the test
//! can attack while it downloads the site from httpd. A round ends with its
//! console flood, which spends the PD's console budget (the serial PD
//! drops the rest); its last line, `round N done` with the demultiplexer's
//! counters, is logged two seconds later, on the timer.
#![no_std]
#![no_main]

use arpd_api::{Arpd, Resolution};
use lib_blk_protocol::{Info, Request, RequestProducer, ResponseConsumer, Status};
use net_client::{InPlace, InPlaceList, MuxError, NetClient};
use net_config::{ARP_TABLE_VADDR, CLIENT_ARPD_CHANNEL, CLIENT_MUX_CHANNEL};
use net_filter::{Dotted, Filter, FilterError, FilterKind};
use net_packet::arp::{ArpOperation, ArpRepr};
use net_packet::tcp::{TcpFlags, TcpHeader};
use net_packet::Transport;
use net_packet::{classify, EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Repr, Network};
use pds_boot_spec::cspace;
use pds_runtime::{log, Channel, ChannelSet, Handler, MemoryRegion};

const MUX: Channel = Channel::new(CLIENT_MUX_CHANNEL);
const ARPD: Channel = Channel::new(CLIENT_ARPD_CHANNEL);
/// The timer channel's id in every red-team PD that has one (httpd's id).
const TIMER_ID: u64 = 10;
const TIMER: Channel = Channel::new(TIMER_ID as u8);
/// How long after its console flood a round ends (logs its last lines):
/// past the serial PD's budget window (about a second), which the flood
/// spent, so that the lines are printed.
const ROUND_END_NS: u64 = 2_000_000_000;

/// The port the description claims for `redteam` (its grant: `tcp dst
/// 80-89`, so that claims overlapping httpd's port 80 are inside it).
const MY_PORT: u16 = 81;
/// httpd's port.
const HTTPD_PORT: u16 = 80;
/// Lines of the console flood, per round.
const FLOOD_LINES: u32 = 4000;
/// Fault messages `rt-fake-faults` sends.
const FAKE_FAULTS: u64 = 1000;
/// Refused claims of the demultiplexer's log flood, per round.
const CLAIM_FLOOD: u32 = 200;

// httpd's mappings, under httpd's names (plain setvars: the `rt-*` PDs
// have only the one they abuse).
pds_runtime::setvar!(site_cache);
pds_runtime::setvar!(site_cache_size);
pds_runtime::setvar!(blk_request);
pds_runtime::setvar!(blk_response);
pds_runtime::setvar!(blk_info);
pds_runtime::setvar!(httpd_connections);
pds_runtime::setvar!(httpd_connections_size);
// The block driver (`setvar_id="blk"`), in `redteam` only.
pds_runtime::channel!(BLK = "blk", optional);

fn verdict(refused: bool) -> &'static str {
    if refused {
        "refused"
    } else {
        "NOT REFUSED"
    }
}

/// The attempts that only a fault can refuse: each in its own PD, named
/// `rt-` and the attempt. Returns only for a name it does not know (or if
/// the attempt was, wrongly, not refused).
fn faulting_attempt(attempt: &str) {
    let recv = |slot: u64| {
        // The runtime never receives on these slots; the kernel must refuse
        // (a cap fault: the capability has no Read right).
        sel4::recv(slot);
    };
    match attempt {
        // Take other PDs' faults (and, with them, their threads).
        "recv-fault-ep" => recv(cspace::FAULT_EP),
        // Take other clients' calls to the timer, the demultiplexer, arpd.
        "recv-timer" => recv(cspace::PROTECTED_CALL_BASE + TIMER_ID),
        "recv-mux" => recv(cspace::PROTECTED_CALL_BASE + u64::from(CLIENT_MUX_CHANNEL)),
        "recv-arpd" => recv(cspace::PROTECTED_CALL_BASE + u64::from(CLIENT_ARPD_CHANNEL)),
        // Take the timer's signals.
        "recv-notify" => recv(cspace::OUTPUT_NOTIFICATION_BASE + TIMER_ID),
        // Change the file cache under the NIC and httpd, the disk's
        // window, the ARP table (redirect the node's traffic).
        "write-cache" => write_mapped(site_cache.get()),
        "write-blk-info" => write_mapped(blk_info.get()),
        "write-arp" => write_mapped(Some(ARP_TABLE_VADDR)),
        // The CMOS clock and NVRAM (the timer's), PCI configuration (the
        // initialiser's), COM1 (the serial PD's): no I/O port capability,
        // so the instruction itself faults (#GP: the kernel gives user
        // threads no I/O permission).
        "io-cmos" => {
            // SAFETY: not safe, on purpose: an attack on the CMOS index
            // port from a PD without its capability; it must fault.
            unsafe { core::arch::asm!("out 0x70, al", in("al") 0x0fu8) }
        }
        "io-pci" => {
            // SAFETY: not safe, on purpose: selects a PCI configuration
            // register (bus 0, device 3: the NIC) without the port; it
            // must fault.
            unsafe { core::arch::asm!("out dx, eax", in("dx") 0xcf8u16, in("eax") 0x8000_1804u32) }
        }
        "io-com1" => {
            // SAFETY: not safe, on purpose: writes the serial PD's UART
            // without its port; it must fault.
            unsafe { core::arch::asm!("out dx, al", in("dx") 0x3f8u16, in("al") b'!') }
        }
        // The NIC's registers, where its driver maps them: nothing is
        // mapped there in this PD.
        "nic-regs" => write_mapped(Some(0x1010_0000)),
        // The debug kernel's calls: print as anyone, halt the machine. The
        // release kernel has no such system calls.
        // The debug kernel's seL4_DebugPutChar (-9) and seL4_DebugHalt (-10).
        "debug-putchar" => sel4::unchecked_syscall(-9, u64::from(b'!')),
        "debug-halt" => sel4::unchecked_syscall(-10, 0),
        // Flood the monitor's log with fault messages of its own (the
        // fault endpoint capability has Write): the monitor must report
        // the first and stop the PD.
        "fake-faults" => {
            for i in 0..FAKE_FAULTS {
                pds_runtime::set_mr(0, 0x1000 + i);
                sel4::send(cspace::FAULT_EP, sel4::MessageInfo::new(sel4::fault_label::VM_FAULT, 0, 0, 4));
            }
        }
        _ => {}
    }
}

/// Writes the first word at `vaddr` (a read-only mapping, or none).
fn write_mapped(vaddr: Option<u64>) {
    let Some(vaddr) = vaddr else { return };
    // SAFETY: not safe, on purpose: the description maps this address
    // read-only in this PD, or not at all; the write must fault.
    unsafe { (vaddr as *mut u64).write_volatile(0x5eed_dead_beef_0bad) }
}

/// The block protocol, as httpd has it.
struct Blk {
    requests: RequestProducer<'static>,
    responses: ResponseConsumer<'static>,
    info: &'static Info,
    /// Bytes of the data region (the file cache, as httpd's).
    data_len: u64,
    /// The attempts sent, waiting for their answers.
    pending: u32,
    sent: bool,
}

/// The id of the control read (inside the window and the data region),
/// which the driver must serve.
const BLK_READ_ID: u32 = 1;

struct RedTeam {
    net: NetClient,
    blk: Option<Blk>,
    rounds: u32,
}

/// Ethernet, IPv4 and a 20-byte TCP header with `flags` (checksums valid)
/// into `out`, then `payload` zero bytes; the frame's length.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    src_mac: EthernetAddress,
    src: Ipv4Address,
    dst: Ipv4Address,
    src_port: u16,
    dst_port: u16,
    flags: TcpFlags,
    payload: usize,
    out: &mut [u8],
) -> Option<usize> {
    const AT: usize = 14 + 20;
    let len = AT + 20 + payload;
    let frame = out.get_mut(..len)?;
    EthernetRepr { dst: EthernetAddress::BROADCAST, src: src_mac, ethertype: EtherType::IPV4 }.emit(frame)?;
    let ip = Ipv4Repr {
        src,
        dst,
        protocol: IpProtocol::TCP,
        payload_len: (20 + payload) as u16,
        ttl: Ipv4Repr::DEFAULT_TTL,
    };
    ip.emit(&mut frame[14..])?;
    let header = TcpHeader { src_port, dst_port, seq: 1, ack: 1, flags, window: 1024, mss: None, window_scale: None };
    header.emit(&mut frame[AT..])?;
    frame[AT + 20..].fill(0);
    let sum = net_packet::tcp::checksum(src, dst, &frame[AT..]);
    frame[AT + 16..AT + 18].copy_from_slice(&sum.to_be_bytes());
    Some(len)
}

impl RedTeam {
    /// Sends `frame` and reports whether the demultiplexer refused it
    /// (its `tx_refused` went up by one; it runs at a higher priority, so
    /// it has judged the frame when `flush` returns).
    fn send_judged(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> Option<InPlaceList>) -> (bool, u64) {
        let before = self.net.stats().unwrap_or_default();
        let queued = self.net.send_gather(len, fill);
        self.net.flush();
        let after = self.net.stats().unwrap_or_default();
        let refused = after.tx_refused == before.tx_refused + 1 && after.tx_allowed == before.tx_allowed;
        if queued != Ok(true) {
            log!("error: frame not queued: {queued:?}");
        }
        (refused, after.tx_refused)
    }

    /// Frames a compromised httpd could send to pose as someone else, and
    /// one it may send (the control: the checks are specific).
    fn forged_frames(&mut self) {
        let node = *self.net.node();
        let gateway = node.gateway.unwrap_or(node.ipv4);
        let mac = EthernetAddress(self.net.mac);
        let other_mac = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x99]);
        let forged: [(&str, EthernetAddress, Ipv4Address, u16); 3] = [
            ("forged-source-mac", other_mac, node.ipv4, MY_PORT),
            ("forged-source-ip", mac, Ipv4Address::new(10, 0, 2, 99), MY_PORT),
            ("forged-source-port", mac, node.ipv4, HTTPD_PORT),
        ];
        for (attempt, src_mac, src, src_port) in forged {
            let (refused, total) = self.send_judged(54, |f| {
                tcp_frame(src_mac, src, gateway, src_port, 40000, TcpFlags::RST, 0, f).map(|_| InPlaceList::new())
            });
            log!(
                "{attempt}: TCP from {} port {src_port}, MAC {}: tx_refused now {total}: {}",
                Dotted(src),
                net_client::Colons(src_mac.0),
                verdict(refused)
            );
        }
        // An ARP reply saying the gateway is at this PD's MAC: only arpd
        // may send ARP.
        let (refused, total) = self.send_judged(60, |f| {
            let reply = ArpRepr {
                operation: ArpOperation::Reply,
                sender_mac: mac,
                sender_ip: gateway,
                target_mac: EthernetAddress::BROADCAST,
                target_ip: node.ipv4,
            };
            reply.emit_frame(f).map(|_| InPlaceList::new())
        });
        log!("forged-arp-reply: {} is-at this PD's MAC: tx_refused now {total}: {}", Dotted(gateway), verdict(refused));
        let (refused, total) = self.send_judged(54, |f| {
            tcp_frame(mac, node.ipv4, gateway, MY_PORT, 40000, TcpFlags::RST, 0, f).map(|_| InPlaceList::new())
        });
        log!(
            "control-frame: a reset from its own MAC, address and port {MY_PORT}: tx_refused now {total}: {}",
            if refused { "REFUSED (the control must pass)" } else { "allowed (control)" }
        );
    }

    /// In-place ranges outside the `send_from` region. `NetClient` checks
    /// ranges against the region's size in the configuration, so the PD
    /// lies to itself about it, as a compromised httpd would: the
    /// demultiplexer knows the real size.
    fn in_place_out_of_bounds(&mut self) {
        let node = *self.net.node();
        let gateway = node.gateway.unwrap_or(node.ipv4);
        let mac = EthernetAddress(self.net.mac);
        let me = self.net.my_index();
        let real = self.net.config.clients[me].send_from_size;
        let tries: [(&str, u32); 2] =
            [("in-place-past-end", real.saturating_sub(500) as u32), ("in-place-far-offset", u32::MAX - 2048)];
        for (attempt, offset) in tries {
            self.net.config.clients[me].send_from_size = u64::from(u32::MAX);
            let before = self.net.stats().unwrap_or_default();
            let (refused, total) = self.send_judged(54 + 1000, |f| {
                tcp_frame(mac, node.ipv4, gateway, MY_PORT, 40000, TcpFlags::ACK, 1000, f)?;
                let mut list = InPlaceList::new();
                list.push(InPlace { at: 54, len: 1000, offset }).ok()?;
                Some(list)
            });
            self.net.config.clients[me].send_from_size = real;
            let after = self.net.stats().unwrap_or_default();
            let none_sent = after.tx_in_place_bytes == before.tx_in_place_bytes;
            log!(
                "{attempt}: 1000 bytes at offset {offset:#x} of a {real:#x}-byte send_from region: tx_refused now {total}, in-place bytes sent {}: {}",
                after.tx_in_place_bytes - before.tx_in_place_bytes,
                verdict(refused && none_sent)
            );
        }
    }

    /// Claims on httpd's traffic and beyond the grant, removing httpd's
    /// filter, and the filter table's quota.
    fn filters(&mut self) {
        let tries: [(&str, &str, FilterKind); 4] = [
            ("claim-outside-grant", "tcp dst 22", FilterKind::Exclusive),
            ("claim-httpd-port", "tcp dst 80", FilterKind::Exclusive),
            ("claim-httpd-port-narrower", "tcp dst 80 from 10.0.2.2/32", FilterKind::Exclusive),
            ("copy-httpd-traffic", "tcp dst 80", FilterKind::Copy),
        ];
        let mut httpd_filter = None;
        for (attempt, text, kind) in tries {
            let Ok(filter) = Filter::parse(text) else { continue };
            let got = self.net.install(&filter, kind);
            if let Err(MuxError::Filter(FilterError::Overlaps { with })) = got {
                httpd_filter = Some(with);
            }
            log!("{attempt}: install {kind:?} \"{filter}\": {got:?}: {}", verdict(got.is_err()));
        }
        if let Some(id) = httpd_filter {
            let got = self.net.remove(id);
            log!(
                "remove-httpd-filter: remove {id:?} (httpd's, named by the overlap): {got:?}: {}",
                verdict(got.is_err())
            );
        }
        // The quota: claims inside the grant until refused. Each client may
        // hold 8, so no client can fill the 64-slot table.
        let mut installed = 0;
        let mut refusal = None;
        for port in 82..=89u16 {
            for from in 0..4u8 {
                let Some(filter) = owned_filter(port, from) else { continue };
                match self.net.install(&filter, FilterKind::Exclusive) {
                    Ok(_) => installed += 1,
                    Err(e) => {
                        refusal.get_or_insert(e);
                    }
                }
            }
        }
        log!(
            "exhaust-filter-table: {installed} claims installed beside the boot claim, then refused with {refusal:?}: {}",
            verdict(matches!(refusal, Some(MuxError::Filter(FilterError::QuotaExceeded))))
        );
    }

    /// A flood of refused claims: the demultiplexer must limit what it logs
    /// about them (the test counts its lines).
    fn flood_mux_log(&mut self) {
        let Ok(filter) = Filter::parse("tcp dst 22") else { return };
        let refused = (0..CLAIM_FLOOD).filter(|_| self.net.install(&filter, FilterKind::Exclusive).is_err()).count();
        log!(
            "flood-mux-log: {CLAIM_FLOOD} claims outside the grant in a row, {refused} refused: {}",
            verdict(refused as u32 == CLAIM_FLOOD)
        );
    }

    /// A flood of this PD's own log lines (the test counts what reaches the
    /// console).
    fn flood_console(&mut self, round: u32) {
        log!("flood-console: {FLOOD_LINES} lines follow (round {round})");
        for i in 0..FLOOD_LINES {
            log!("flood {round}.{i}");
        }
        log!("flood-console: done (round {round})");
    }

    /// Calls arpd, the demultiplexer and the kernel (I/O ports) with what
    /// they must refuse.
    fn bad_calls(&mut self) {
        let node = *self.net.node();
        let arpd = Arpd::new(ARPD);
        let tries: [(&str, Ipv4Address); 3] = [
            ("arpd-resolve-own-address", node.ipv4),
            ("arpd-resolve-broadcast", Ipv4Address::new(255, 255, 255, 255)),
            ("arpd-resolve-off-link", Ipv4Address::new(8, 8, 8, 8)),
        ];
        for (attempt, ip) in tries {
            let got = arpd.resolve(ip);
            log!("{attempt}: resolve {}: {got:?}: {}", Dotted(ip), verdict(got == Resolution::NotOnLink));
        }
        // No call writes arpd's table; an unknown request is refused.
        pds_runtime::set_mr(0, 0x0a00_0202);
        pds_runtime::set_mr(1, 0x0252_5400_1234);
        let reply = ARPD.pp_call(pds_runtime::msginfo(0x77, 2));
        log!(
            "arpd-unknown-call: label 0x77 (a \"set entry\" arpd does not have): reply label {}: {}",
            reply.label(),
            verdict(reply.label() == arpd_api::ERR_BAD_REQUEST)
        );
        let reply = MUX.pp_call(pds_runtime::msginfo(0x77, 0));
        log!("mux-unknown-call: label 0x77: reply label {}: {}", reply.label(), verdict(reply.label() != 0));
        // The kernel's way to I/O ports: the slots where an I/O port
        // capability would be (the timer's ioport 1 is the CMOS clock's)
        // are empty here; the kernel answers an invocation of an empty
        // slot with an error.
        for (id, port) in [(0u64, 0x70u64), (1, 0xcf8)] {
            let inv = sel4::Invocation::new(sel4::InvocationLabel::X86IOPortIn8, &[port], &[]);
            let got = sel4::invoke(cspace::IOPORT_BASE + id, &inv);
            log!(
                "io-port-invoke-{id}: X86IOPort_In8({port:#x}) on slot {}: {:?}: {}",
                cspace::IOPORT_BASE + id,
                got.map(|_| ()),
                verdict(got.is_err())
            );
        }
    }

    /// One round of the network attempts, the console flood last; the
    /// round ends ([`Self::round_end`]) when the timer says so.
    fn round(&mut self) {
        self.rounds += 1;
        let round = self.rounds;
        log!("round {round}: attacking");
        self.forged_frames();
        self.in_place_out_of_bounds();
        self.flood_mux_log();
        self.flood_console(round);
        pds_runtime::set_mr(0, 0);
        let now = TIMER.pp_call(pds_runtime::msginfo(drivers_timer_api::label::NOW, 0));
        let deadline = pds_runtime::get_mr(0).saturating_add(ROUND_END_NS);
        pds_runtime::set_mr(0, deadline);
        let set = TIMER.pp_call(pds_runtime::msginfo(drivers_timer_api::label::SET_TIMEOUT, 1));
        if now.label() != drivers_timer_api::status::OK || set.label() != drivers_timer_api::status::OK {
            self.round_end();
        }
    }

    /// The end of the last round: the demultiplexer's counters (it logs
    /// the refusals by reason when asked).
    fn round_end(&mut self) {
        let round = self.rounds;
        match self.net.stats() {
            Ok(stats) => log!("round {round} done: {stats}"),
            Err(e) => log!("round {round} done: stats refused: {e}"),
        }
    }

    /// The block attempts, once the driver is up: reads outside the
    /// window, a buffer outside the data region, an unknown operation, a
    /// write (the disk is read-only), then a read it may make.
    fn blk_attempts(&mut self) {
        let Some(blk) = self.blk.as_mut() else { return };
        if blk.sent {
            return;
        }
        let (Some(disk), Some(window)) = (blk.info.get(), blk.info.window()) else { return };
        blk.sent = true;
        log!(
            "blk: disk of {} sectors, window {}..{} (the driver's answer to each request follows)",
            disk.capacity,
            window.start,
            window.end
        );
        let data = blk.data_len;
        let requests = [
            Request::read(10, window.end, 1, 0),
            Request::read(11, window.end - 1, 2, 0),
            Request::read(12, u64::MAX - 7, 16, 0),
            Request::read(13, window.start, 8, data - 512),
            Request { op: 99, count: 1, sector: window.start, offset: 0, id: 14 },
            Request::write(15, window.start, 1, 0),
            Request::read(BLK_READ_ID, window.start, 1, 0),
        ];
        for r in requests {
            if blk.requests.enqueue(r).is_ok() {
                blk.pending += 1;
            }
        }
        if let Some(driver) = BLK.get_optional() {
            driver.notify();
        }
    }

    /// Logs the block driver's answers.
    fn blk_answers(&mut self) {
        let Some(blk) = self.blk.as_mut() else { return };
        while let Ok(Some(response)) = blk.responses.dequeue() {
            blk.pending = blk.pending.saturating_sub(1);
            let status = response.status();
            let attempt = match response.id {
                10 => "blk-read-past-window",
                11 => "blk-read-across-window-end",
                12 => "blk-read-wrapping-sector",
                13 => "blk-buffer-outside-data-region",
                14 => "blk-unknown-op",
                15 => "blk-write-read-only-disk",
                BLK_READ_ID => {
                    log!(
                        "blk-control-read: the window's first sector: {status:?}: {}",
                        if status == Some(Status::Ok) { "allowed (control)" } else { "FAILED (the control must pass)" }
                    );
                    continue;
                }
                _ => "blk-unexpected-answer",
            };
            log!("{attempt}: {status:?}: {}", verdict(status != Some(Status::Ok)));
        }
    }
}

/// The block protocol's regions, if the description maps them here, with
/// the data region (the file cache) of `data_len` bytes.
fn blk(data_len: u64) -> Option<Blk> {
    let (request, response, info) = (blk_request.get()?, blk_response.get()?, blk_info.get()?);
    // SAFETY: the description maps blk_request and blk_response read-write
    // and blk_info read-only, one page each, for the PD's life; they are
    // used only through these handles (blk_info only read).
    let (requests, responses, info) = unsafe {
        (
            RequestProducer::new(request as *mut u8),
            ResponseConsumer::new(response as *mut u8, ()),
            Info::at(info as *mut u8),
        )
    };
    Some(Blk { requests, responses, info, data_len, pending: 0, sent: false })
}

/// `tcp dst PORT from 10.0.FROM.0/24`: a claim inside the grant.
fn owned_filter(port: u16, from: u8) -> Option<Filter> {
    let mut text = [0u8; 40];
    let mut w = Writer { buf: &mut text, len: 0 };
    core::fmt::write(&mut w, format_args!("tcp dst {port} from 10.0.{from}.0/24")).ok()?;
    let len = w.len;
    Filter::parse(core::str::from_utf8(&text[..len]).ok()?).ok()
}

/// `core::fmt::Write` into a byte buffer.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Handler for RedTeam {
    fn init() -> Self {
        let name = pds_runtime::name();
        if let Some(attempt) = name.strip_prefix("rt-") {
            faulting_attempt(attempt);
            log!("{attempt}: the attempt returned: NOT REFUSED");
            loop {
                sel4::yield_now();
            }
        }
        let net = match NetClient::new() {
            Ok(net) => net,
            Err(e) => panic!("{e}"),
        };
        let size = site_cache_size.get().unwrap_or(0);
        // SAFETY: the description maps site_cache read-only at `site_cache`,
        // `site_cache_size` bytes; it is only read here.
        let cache: Option<MemoryRegion> = unsafe { MemoryRegion::from_var(&site_cache, size as usize) };
        let connections = httpd_connections.get().map(|_| httpd_connections_size.get().unwrap_or(0));
        let blk = blk(size);
        log!(
            "up: a compromised httpd ({} on the demultiplexer, send_from {} bytes, cache mapped {} bytes, connections region {connections:?}, block queues {}); {}",
            Dotted(net.node().ipv4),
            net.config.clients[net.my_index()].send_from_size,
            cache.map_or(0, |c| c.len()),
            if blk.is_some() { "mapped: disk attempts only" } else { "absent" },
            if blk.is_some() { "the other attempts are in redteam.system" } else { "faulting attempts are the rt-* PDs' (the monitor reports them)" }
        );
        let mut red = RedTeam { net, blk, rounds: 0 };
        if red.blk.is_some() {
            red.blk_attempts();
            red.blk_answers();
        } else {
            red.filters();
            red.bad_calls();
            red.round();
        }
        red.net.poll(|_, _| {});
        red
    }

    fn notified(&mut self, channels: ChannelSet) {
        if channels.contains(TIMER) && self.blk.is_none() {
            self.round_end();
        }
        if BLK.get_optional().is_some_and(|b| channels.contains(b)) {
            self.blk_attempts();
            self.blk_answers();
        }
        let mut poked = false;
        self.net.poll(|net, frame| {
            let Ok(parsed) = classify(frame) else { return };
            let Network::Ipv4(ip) = parsed.network else { return };
            if let Transport::Tcp { dst_port: MY_PORT, .. } = ip.transport {
                poked |= ip.dst == net.node().ipv4;
            }
        });
        if poked && self.blk.is_none() {
            self.round();
        }
    }
}

pds_runtime::protection_domain!(RedTeam);
