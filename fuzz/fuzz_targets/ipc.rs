//! Every decoder of what one PD hands another: protected-call messages
//! (label and registers), descriptors and requests in shared queues, the
//! configuration blobs the builder writes into PDs, and fault messages.
//!
//! The first byte chooses the decoder; the rest are its words or bytes.
//! Where the protocol crate has an encoder, what decodes must encode back
//! to a message that decodes to the same value (and, where the protocol
//! says an encoding is unique, to the same registers); what is refused is
//! refused for a reason the protocol lists.
//!
//! | byte % 11 | decoder |
//! |---|---|
//! | 0 | `net-mux-api` requests (`Request::decode`) |
//! | 1 | `net-mux-api` replies (`Request::decode_reply`) |
//! | 2 | `lib-net-protocol` driver calls (`DriverRequest::decode`, `decode_reply`) |
//! | 3 | `arpd-api` (`decode_request`, `Resolution::from_reply`) |
//! | 4 | `lib-blk-protocol` requests as the block driver checks them (`drivers-virtio-blk-core`'s `validate`), response statuses |
//! | 5 | the timer's table of timeouts under arbitrary `SET_TIMEOUT`/`CANCEL_ALL` calls, against a model |
//! | 6 | `pds-monitor-core`: a fault message's badge and registers (`FaultReport`) |
//! | 7 | `net-config`'s blob (`NetConfig::from_bytes`) |
//! | 8 | `pds-boot-spec` (`ImageHeader::from_bytes`, `Spec::decode`) |
//! | 9 | transmit descriptors: windows (`split_tx_offset`), offload descriptors (`TxOffload::from_desc`), gather lists (`FrameAssembler`) |
//! | 10 | filters in registers (`Filter::from_words`) |
//!
//! The timer's API crate has no decoder of its own (its three labels are
//! matched in `drivers/timer/src/main.rs`, and a deadline is any `u64`);
//! what a client's call can do is arm or cancel in `Timeouts`, which is
//! what case 5 drives.

#![no_main]

use drivers_timer_core::Timeouts;
use drivers_virtio_blk_core::driver::validate;
use fuzz::Input;
use lib_blk_protocol::{DiskInfo, Op, Request as BlkRequest, Status, Window};
use lib_net_protocol::{
    encode_driver_reply, split_tx_offset, tx_offset, DriverError, DriverRequest, FrameAssembler, Step, TxOffload,
    MAX_TX_SEGMENTS, TX_MORE,
};
use lib_queue::BufferDesc;
use libfuzzer_sys::fuzz_target;
use net_config::{NetConfig, CONFIG_BYTES, CONFIG_MAGIC, CONFIG_VERSION, MAX_CLIENTS};
use net_filter::Filter;
use net_mux_api::{encode_reply, label, BadRequest, Message, MuxError, ReplyMessage, Request, REPLY_WORDS};
use pds_boot_spec::{ImageHeader, PdInfo, Spec};
use pds_monitor_core::fault::{pd_index, FaultReport, What, UNKNOWN_PD};
use sel4::Fault;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 11 {
        0 => mux_request(&mut input),
        1 => mux_reply(&mut input),
        2 => driver_call(&mut input),
        3 => arpd(&mut input),
        4 => blk(&mut input),
        5 => timer(&mut input),
        6 => fault(&mut input),
        7 => net_config(&mut input),
        8 => boot_spec(&mut input),
        9 => tx_descriptors(&mut input),
        _ => filter_words(&mut input),
    }
});

/// A label and up to `max` registers.
fn registers(input: &mut Input<'_>, max: usize) -> (u64, Vec<u64>) {
    // Small labels mostly, so that the known ones come up.
    let label = if input.bool() { u64::from(input.u8() % 8) } else { input.u64() };
    let n = usize::from(input.u8()) % (max + 1);
    (label, (0..n).map(|_| input.u64()).collect())
}

fn mux_request(input: &mut Input<'_>) {
    let (label, words) = registers(input, 6);
    let Ok(request) = Request::decode(label, &words) else {
        // Refused: an unknown label, or the arguments do not decode.
        return;
    };
    assert_eq!(request.label(), label);
    let message = request.encode();
    assert_eq!(Request::decode(message.label(), message.words()), Ok(request), "a request survives its encoding");
    // One encoding per request: the arguments read are the registers sent.
    let n = message.words().len();
    assert_eq!(message.words(), &words[..n], "the encoding is the registers decoded");
    if label == label::INSTALL {
        assert_eq!(n, 4);
    }
}

fn mux_reply(input: &mut Input<'_>) {
    let requests = [
        Request::Stats,
        Request::Node,
        Request::Attach,
        Request::Remove(net_filter::FilterId::from_raw(input.u32())),
        Request::Install { filter: Filter::parse("tcp dst 80").unwrap(), kind: net_filter::FilterKind::Exclusive },
    ];
    let request = requests[usize::from(input.u8()) % requests.len()];
    let (label, words) = registers(input, REPLY_WORDS);
    let reply = ReplyMessage::with_words(label, &words);
    let decoded = request.decode_reply(&reply);
    match decoded {
        Err(MuxError::Unexpected { label: l, words: n }) => assert_eq!((l, n), (label, words.len())),
        result => {
            // What decodes is what the demultiplexer would have sent.
            let again = encode_reply(&result);
            assert_eq!(request.decode_reply(&again), result, "a reply survives its encoding");
        }
    }
}

fn driver_call(input: &mut Input<'_>) {
    let (label, words) = registers(input, 10);
    match DriverRequest::decode(label, &words) {
        Ok(request) => {
            assert_eq!(request.label(), label);
            assert_eq!(DriverRequest::decode(request.encode().label(), &[]), Ok(request));
            let (reply_label, reply_words) = registers(input, 10);
            let reply = Message::<10>::with_words(reply_label, &reply_words);
            let result = request.decode_reply(&reply);
            match result {
                Err(DriverError::Unexpected { label: l, words: n }) => {
                    assert_eq!((l, n), (reply_label, reply_words.len()))
                }
                result => assert_eq!(request.decode_reply(&encode_driver_reply(&result)), result),
            }
        }
        Err(BadRequest) => {}
    }
}

fn arpd(input: &mut Input<'_>) {
    let (label, count, mr0) = (u64::from(input.u8() % 4), u64::from(input.u8() % 3), input.u64());
    match arpd_api::decode_request(label, count, mr0) {
        Ok(ip) => {
            assert!(label == arpd_api::RESOLVE && count >= 1);
            assert_eq!(u64::from(ip.to_u32()), mr0, "the address is MR0, which fits 32 bits");
        }
        Err(_) => assert!(label != arpd_api::RESOLVE || count == 0 || mr0 > u64::from(u32::MAX)),
    }
    let reply_label = u64::from(input.u8() % 6);
    if let Some(resolution) = arpd_api::Resolution::from_reply(reply_label, mr0) {
        let (l, word) = resolution.reply();
        assert_eq!(l, reply_label);
        if let Some(word) = word {
            assert_eq!(word, mr0 & 0xffff_ffff_ffff, "a MAC is the low 48 bits");
            assert_eq!(arpd_api::Resolution::from_reply(l, word), Some(resolution));
        }
    } else {
        assert!(reply_label > 3);
    }
}

fn blk(input: &mut Input<'_>) {
    let request = BlkRequest {
        op: u32::from(input.u8() % 5),
        count: if input.bool() { u32::from(input.u8()) } else { input.u32() },
        sector: if input.bool() { u64::from(input.u16()) } else { input.u64() },
        offset: if input.bool() { u64::from(input.u32() % 0x30_0000) } else { input.u64() },
        id: input.u32(),
    };
    let disk = DiskInfo {
        capacity: u64::from(input.u32()),
        read_only: input.bool(),
        max_request_sectors: u32::from(input.u8()),
    };
    let data_len = lib_blk_protocol::DATA_REGION_SIZE >> (input.u8() % 4);
    let start = if input.bool() { u64::from(input.u16()) } else { input.u64() };
    let window = Window { start, end: start.saturating_add(u64::from(input.u32())) };
    match validate(&request, &disk, &window, data_len) {
        Ok(Op::Flush) => assert_eq!(request.op, 2),
        Ok(Op::Sync) => assert_eq!(request.op, 3),
        Ok(op) => {
            // Accepted: the device may touch exactly these sectors and bytes.
            assert_eq!(Op::from_code(request.op), Some(op));
            assert!(request.count > 0 && request.count <= disk.max_request_sectors);
            assert!(request.sector + u64::from(request.count) <= disk.capacity, "sectors inside the disk");
            assert!(
                request.sector >= window.start && request.sector + u64::from(request.count) <= window.end,
                "sectors inside the client's window"
            );
            assert!(request.offset + request.bytes() <= data_len as u64, "the buffer inside blk_data");
            assert!(!(op == Op::Write && disk.read_only));
        }
        Err(status) => {
            assert!(matches!(
                status,
                Status::BadOp | Status::BadBuffer | Status::OutOfRange | Status::OutsideWindow | Status::ReadOnly
            ));
            assert_eq!(Status::from_code(status as u32), Some(status));
        }
    }
    let code = input.u32() % 10;
    if let Some(status) = Status::from_code(code) {
        assert_eq!(status as u32, code);
    }
}

fn timer(input: &mut Input<'_>) {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 8;
    let mut table = Timeouts::<CLIENTS, PER_CLIENT>::new();
    let mut model: Vec<Vec<u64>> = vec![Vec::new(); CLIENTS];
    let mut now = 0u64;
    while !input.is_empty() {
        // The client is the caller's channel id: any of 0..63 may call.
        let client = usize::from(input.u8() % 64);
        match input.u8() % 4 {
            0 | 1 => {
                let deadline = if input.bool() { now.saturating_add(u64::from(input.u16())) } else { input.u64() };
                let armed = table.arm(client, deadline);
                match model.get_mut(client) {
                    None => assert!(armed.is_err(), "a channel that is no client's is refused"),
                    Some(d) if d.len() == PER_CLIENT => assert!(armed.is_err(), "a full client is refused"),
                    Some(d) => {
                        assert_eq!(armed, Ok(()));
                        d.push(deadline);
                    }
                }
            }
            2 => {
                table.cancel_all(client);
                if let Some(d) = model.get_mut(client) {
                    d.clear();
                }
            }
            _ => {
                now = now.saturating_add(u64::from(input.u16()));
                let expired = table.expire(now);
                for (c, d) in model.iter_mut().enumerate() {
                    let due = d.iter().any(|&t| t <= now);
                    assert_eq!(expired.0 & 1 << c != 0, due, "client {c} told exactly when a deadline passed");
                    d.retain(|&t| t > now);
                }
                assert!(expired.iter().all(|c| c < CLIENTS));
            }
        }
        for (c, d) in model.iter().enumerate() {
            assert_eq!(table.pending(c), d.len());
        }
        assert_eq!(table.next(), model.iter().flatten().copied().min(), "the next deadline is the nearest");
    }
}

fn fault(input: &mut Input<'_>) {
    let pds: Vec<PdInfo> =
        (0..input.u8() % 8).map(|i| PdInfo { name: format!("pd{i}"), parent: None, ..Default::default() }).collect();
    let badge = if input.bool() { u64::from(input.u8()) } else { input.u64() };
    let fault = match input.u8() % 6 {
        0 => Fault::Null,
        1 => Fault::CapFault {
            ip: input.u64(),
            addr: input.u64(),
            in_recv_phase: input.bool(),
            lookup_failure_type: input.u64(),
            bits_left: input.u64(),
        },
        2 => Fault::UnknownSyscall {
            fault_ip: input.u64(),
            rsp: input.u64(),
            flags: input.u64(),
            syscall: if input.bool() { pds_boot_spec::PANIC_SYSCALL } else { input.u64() },
            rax: input.u64(),
        },
        3 => Fault::UserException {
            fault_ip: input.u64(),
            stack: input.u64(),
            flags: input.u64(),
            number: input.u64(),
            code: input.u64(),
        },
        4 => Fault::VmFault { ip: input.u64(), addr: input.u64(), prefetch_fault: input.bool(), fsr: input.u64() },
        _ => Fault::Unknown(input.u64()),
    };
    let report = FaultReport::new(&pds, badge, fault);
    let index = pd_index(badge, pds.len());
    assert_eq!(report.pd, index);
    match index {
        Some(i) => {
            assert_eq!(u64::try_from(i).unwrap() + 1, badge, "badge i + 1 names PD i");
            assert_eq!(report.name, pds[i].name);
        }
        None => assert_eq!(report.name, UNKNOWN_PD),
    }
    if let What::Panicked { ip } = report.what {
        assert!(matches!(fault, Fault::UnknownSyscall { syscall, fault_ip, .. }
            if syscall == pds_boot_spec::PANIC_SYSCALL && fault_ip == ip));
    }
    let line = report.to_string();
    assert!(line.starts_with(&format!("PD '{}' ", report.name)), "{line}");
}

fn net_config(input: &mut Input<'_>) {
    let mut bytes = [0u8; CONFIG_BYTES];
    let given = input.rest();
    bytes[..given.len().min(CONFIG_BYTES)].copy_from_slice(&given[..given.len().min(CONFIG_BYTES)]);
    // Mostly with the magic and version, so that the fields are reached.
    if given.first().is_some_and(|b| b & 1 == 0) {
        bytes[..8].copy_from_slice(&CONFIG_MAGIC);
        bytes[8..12].copy_from_slice(&CONFIG_VERSION.to_le_bytes());
    }
    let Ok(config) = NetConfig::from_bytes(&bytes) else { return };
    let count = usize::from(config.client_count);
    assert!(count <= MAX_CLIENTS);
    assert_eq!(config.clients().len(), count);
    assert!(config.me.is_none_or(|me| usize::from(me) < count), "me names a client");
    assert!(config.arpd.is_none_or(|a| usize::from(a) < count), "arpd names a client");
    assert!(config.node.prefix_len <= 32);
    assert_eq!(NetConfig::from_bytes(&config.to_bytes()), Ok(config), "a configuration survives its encoding");
}

fn boot_spec(input: &mut Input<'_>) {
    let extra = usize::from(input.u8() % 2);
    let header = input.take(ImageHeader::SIZE + extra);
    if let Ok(h) = ImageHeader::from_bytes(header) {
        assert_eq!(h.to_bytes()[..], header[..ImageHeader::SIZE], "a header encodes back to its bytes");
    }
    let spec = input.rest();
    if let Ok(decoded) = Spec::decode(spec) {
        let again = decoded.encode();
        assert_eq!(Spec::decode(&again), Ok(decoded.clone()), "a spec survives its encoding");
        let _ = decoded.instance_count();
    }
}

fn tx_descriptors(input: &mut Input<'_>) {
    let mut assembler = FrameAssembler::default();
    while !input.is_empty() {
        let desc = BufferDesc { offset: input.u64(), len: input.u32(), cookie: input.u32() };
        if let Some((window, offset)) = split_tx_offset(desc.offset) {
            assert_eq!(tx_offset(window, offset), desc.offset, "a window and offset are the descriptor's");
        }
        if let Some(offload) = TxOffload::from_desc(&desc) {
            assert!(offload.csum() && offload.tso() == (offload.mss > 0));
            let back = offload.to_desc(desc.cookie);
            assert_eq!((back.offset, back.len), (desc.offset, desc.len), "an offload descriptor has one encoding");
        }
        let before = assembler.held();
        match assembler.push(desc, input.bool()) {
            Step::Held => {
                assert!(desc.cookie & TX_MORE != 0);
                assert!(assembler.held() <= MAX_TX_SEGMENTS);
            }
            Step::Discard(d) => assert_eq!(d, desc),
            Step::Frame(frame) => {
                assert_eq!(assembler.held(), 0);
                assert_eq!(frame.descs().len(), before + 1, "a frame is the held ones and this");
                assert_eq!(frame.descs().last(), Some(&desc));
                if frame.too_many {
                    assert_eq!(frame.descs().len(), MAX_TX_SEGMENTS, "a frame is cut at the most segments");
                } else {
                    assert_eq!(desc.cookie & TX_MORE, 0, "a frame ends without TX_MORE");
                }
            }
        }
    }
}

fn filter_words(input: &mut Input<'_>) {
    let words = [input.u64(), input.u64(), input.u64()];
    let Some(filter) = Filter::from_words(words) else { return };
    assert_eq!(filter.to_words(), words, "one filter, one encoding");
    let text = filter.to_string();
    if filter.is_consistent() {
        assert_eq!(Filter::parse(&text), Ok(filter), "a filter reads back from its text: {text}");
    } else {
        assert_eq!(Filter::parse(&text), Err(net_filter::ParseError::Inconsistent), "{text}");
    }
}
