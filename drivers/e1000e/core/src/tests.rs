//! Host tests of the driver against a model of the 82574 ([`Model`]).
//!
//! The model is a register file with the behaviour the driver relies on:
//! `CTRL.RST` resets it (or, set to, never clears), `ICR` is cleared by a
//! read and by writing ones (7.4.5), `IMS`/`IMC` set and clear the mask,
//! `STATUS.LU` follows the model's link, and a link change raises `LSC`.
//! Its rings live in simulated physical memory (`lib_virtio::sim`, host
//! memory at fake physical addresses) where the driver's private region
//! is: it takes receive descriptors from `RDH` up to `RDT` and writes
//! frames from its "wire" into them (`DD`, `EOP`, errors), and transmit
//! descriptors from `TDH` up to `TDT`, gathering frames up to `EOP` and
//! writing `DD` where `RS` asks. It checks what a real device could not
//! survive: a tail beyond the ring, a tail moved past the head (the
//! driver handing over descriptors the device still owns), and a
//! descriptor changed after it was handed over. The tests play the
//! client (the demultiplexer) on the four shared queues.

use crate::driver::{
    private, tx_windows, ClientRegions, Driver, InitError, ReceiveFilter, IMS_CAUSES, RX_RING, TX_RING,
};
use crate::regs::{self, int, rctl, rxd, tctl, txd, Regs};
use lib_net_protocol::{
    tx_offset, TxWindow, MAX_FRAME_LEN, MAX_TX_SEGMENTS, MIN_FRAME_LEN, RX_BUFFERS, RX_BUFFER_SIZE, RX_DATA_SIZE,
    RX_QUEUE_CAPACITY, TX_HEADERS_SIZE, TX_MORE, TX_PAYLOAD_SIZE, TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use lib_queue::{region_size, BufferDesc, ReceiverQueues, SenderQueues};
use lib_test_rng::Rng;
use lib_virtio::sim::SimMemory;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

// Physical addresses of the simulated regions.
const PRIVATE: u64 = 0x1_1000_0000;
const RX_DATA: u64 = 0x2000_0000;
const TX_HEADERS: u64 = 0x3000_0000;
const PAYLOAD: u64 = 0x4000_0000;
const QUEUES: u64 = 0x6000_0000;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// A frame on the model's wire: its bytes, the errors byte its descriptor
/// gets, and whether it spreads over two descriptors (the first without
/// `EOP`).
#[derive(Clone, Debug)]
struct WireFrame {
    bytes: Vec<u8>,
    errors: u8,
    split: bool,
}

/// A frame the model sent: its bytes and each descriptor's `CMD`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    bytes: Vec<u8>,
    cmds: Vec<u8>,
}

/// The model of the device.
struct Model {
    regs: BTreeMap<u32, u32>,
    /// The MAC address the "EEPROM" loads into `RAL0`/`RAH0` at reset.
    eeprom_mac: [u8; 6],
    /// `CTRL.RST` never clears.
    reset_stuck: bool,
    resets: u32,
    link: bool,
    icr: u32,
    ims: u32,
    /// Every register write, in order.
    writes: Vec<(u32, u32)>,
    wire: VecDeque<WireFrame>,
    /// The transmit side does nothing (a stalled device).
    tx_stalled: bool,
    /// Transmitted descriptors are read but `DD` is not written back yet.
    hold_dd: bool,
    /// Descriptors read and not written back (`hold_dd`).
    held: Vec<usize>,
    /// Descriptors handed over and not yet processed, as they were when
    /// the tail passed them: (index, bytes).
    tx_owned: VecDeque<(usize, [u8; 16])>,
    /// The frame being gathered.
    gathering: Sent,
    sent: Vec<Sent>,
    /// Descriptors handed over and not processed, by the receive tail.
    rx_owned: usize,
    /// The rig's memory, where the rings are (set by `rig_with`).
    mem: Option<Rc<SimMemory>>,
    /// A read of `ICR` clears it (QEMU without MSI-X); when false only
    /// writing ones does (7.4.5: e.g. with MSI-X, or a read while no
    /// interrupt is asserted).
    icr_read_clears: bool,
}

impl Model {
    fn new() -> Model {
        let mut m = Model {
            regs: BTreeMap::new(),
            eeprom_mac: MAC,
            reset_stuck: false,
            resets: 0,
            link: true,
            icr: 0,
            ims: 0,
            writes: Vec::new(),
            wire: VecDeque::new(),
            tx_stalled: false,
            hold_dd: false,
            held: Vec::new(),
            tx_owned: VecDeque::new(),
            gathering: Sent { bytes: Vec::new(), cmds: Vec::new() },
            sent: Vec::new(),
            rx_owned: 0,
            mem: None,
            icr_read_clears: true,
        };
        m.power_on();
        m
    }

    /// Register values a previous owner (firmware, an earlier driver) left:
    /// what a reset does not clear must be cleared by the driver.
    fn power_on(&mut self) {
        self.regs.insert(regs::RCTL, rctl::UPE | rctl::MPE);
        self.ims = int::ALL;
        self.icr = int::LSC;
        self.reset();
    }

    /// The global reset: registers to their defaults, the MAC
    /// from the EEPROM into entry 0. The multicast table and the other
    /// receive addresses are not initialised by a reset (left as they
    /// were: here, every bit set and an extra valid address).
    fn reset(&mut self) {
        self.resets += 1;
        self.regs.clear();
        let m = self.eeprom_mac;
        self.regs.insert(regs::RAL0, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        self.regs.insert(regs::RAH0, u32::from(m[4]) | u32::from(m[5]) << 8 | regs::RAH_AV);
        self.regs.insert(regs::ral(3), 0x0102_0304);
        self.regs.insert(regs::rah(3), 0x0506 | regs::RAH_AV);
        for i in 0..regs::MTA_ENTRIES {
            self.regs.insert(regs::MTA + 4 * i, !0);
        }
        self.ims = 0;
        self.icr = 0;
        self.held.clear();
        self.tx_owned.clear();
        self.rx_owned = 0;
    }

    fn reg(&self, offset: u32) -> u32 {
        self.regs.get(&offset).copied().unwrap_or(0)
    }

    fn read(&mut self, offset: u32) -> u32 {
        match offset {
            regs::ICR if self.icr_read_clears => core::mem::take(&mut self.icr),
            regs::ICR => self.icr,
            regs::IMS => self.ims,
            regs::STATUS => {
                if self.link {
                    regs::STATUS_LU | 1
                } else {
                    1
                }
            }
            _ => self.reg(offset),
        }
    }

    fn write(&mut self, offset: u32, value: u32) {
        assert_eq!(offset % 4, 0, "unaligned register {offset:#x}");
        self.writes.push((offset, value));
        match offset {
            regs::CTRL if value & regs::CTRL_RST != 0 => {
                if self.reset_stuck {
                    self.regs.insert(offset, value);
                } else {
                    self.reset();
                    self.regs.insert(offset, value & !regs::CTRL_RST);
                }
            }
            regs::ICR => self.icr &= !value,
            regs::IMS => self.ims |= value,
            regs::IMC => self.ims &= !value,
            regs::RDT => {
                let n = self.ring_len(regs::RDLEN);
                assert!((value as usize) < n, "RDT {value} beyond a ring of {n}");
                let old = self.reg(regs::RDT) as usize;
                let moved = (value as usize + n - old) % n;
                assert!(self.rx_owned + moved < n, "RDT moved past RDH: posted descriptors overwritten");
                self.rx_owned += moved;
                self.regs.insert(offset, value);
            }
            regs::TDT => {
                let n = self.ring_len(regs::TDLEN);
                assert!((value as usize) < n, "TDT {value} beyond a ring of {n}");
                let old = self.reg(regs::TDT) as usize;
                let moved = (value as usize + n - old) % n;
                assert!(self.tx_owned.len() + moved < n, "TDT moved past TDH: owned descriptors overwritten");
                for k in 0..moved {
                    let i = (old + k) % n;
                    let bytes = self.desc(regs::TDBAL, i);
                    self.tx_owned.push_back((i, bytes));
                }
                self.regs.insert(offset, value);
            }
            _ => {
                self.regs.insert(offset, value);
            }
        }
    }

    fn ring_len(&self, rdlen: u32) -> usize {
        self.reg(rdlen) as usize / 16
    }

    fn ring_base(&self, bal: u32) -> u64 {
        u64::from(self.reg(bal)) | u64::from(self.reg(bal + 4)) << 32
    }

    fn desc(&self, bal: u32, i: usize) -> [u8; 16] {
        let mem = self.mem.as_ref().expect("the rig's memory");
        mem.read(self.ring_base(bal) + 16 * i as u64, 16).try_into().unwrap()
    }

    /// Whether an enabled cause is pending: the line is asserted.
    fn irq(&self) -> bool {
        self.icr & self.ims != 0
    }

    fn set_link(&mut self, up: bool) {
        self.link = up;
        self.icr |= int::LSC;
    }

    /// Writes waiting frames into the receive ring; whether it did any.
    fn deliver(&mut self, mem: &SimMemory) -> bool {
        let mut any = false;
        if self.reg(regs::RCTL) & rctl::EN == 0 {
            return false;
        }
        while let Some(frame) = self.wire.front().cloned() {
            let parts = if frame.split { 2 } else { 1 };
            if self.rx_owned < parts {
                break;
            }
            self.wire.pop_front();
            let n = self.ring_len(regs::RDLEN);
            let chunk = frame.bytes.len().div_ceil(parts);
            for (k, piece) in frame.bytes.chunks(chunk.max(1)).enumerate() {
                let head = self.reg(regs::RDH) as usize;
                let at = self.ring_base(regs::RDBAL) + 16 * head as u64;
                let d = mem.read(at, 16);
                let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
                assert!(piece.len() <= RX_BUFFER_SIZE);
                mem.write(addr, piece);
                let last = k + 1 == parts;
                let status = rxd::DD | if last { rxd::EOP } else { 0 };
                let mut wb = [0u8; 8];
                wb[..2].copy_from_slice(&(piece.len() as u16).to_le_bytes());
                wb[4] = status;
                wb[5] = if last { frame.errors } else { 0 };
                mem.write(at + 8, &wb);
                self.regs.insert(regs::RDH, ((head + 1) % n) as u32);
                self.rx_owned -= 1;
            }
            self.icr |= int::RXT0;
            any = true;
        }
        any
    }

    /// Processes the transmit descriptors handed over; whether it did any.
    fn transmit(&mut self, mem: &SimMemory) -> bool {
        if self.tx_stalled || self.reg(regs::TCTL) & tctl::EN == 0 {
            return false;
        }
        let n = self.ring_len(regs::TDLEN);
        let mut any = false;
        while let Some((i, when_handed)) = self.tx_owned.pop_front() {
            let head = self.reg(regs::TDH) as usize;
            assert_eq!(i, head, "descriptors are processed in ring order");
            let at = self.ring_base(regs::TDBAL) + 16 * i as u64;
            let d: [u8; 16] = mem.read(at, 16).try_into().unwrap();
            assert_eq!(d, when_handed, "transmit descriptor {i} changed after it was handed over");
            let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
            let len = u16::from_le_bytes([d[8], d[9]]) as usize;
            let cmd = d[txd::CMD];
            assert_eq!(cmd & txd::DEXT, 0, "legacy descriptors only");
            self.gathering.bytes.extend(mem.read(addr, len));
            self.gathering.cmds.push(cmd);
            if cmd & txd::EOP != 0 {
                self.sent.push(core::mem::replace(&mut self.gathering, Sent { bytes: Vec::new(), cmds: Vec::new() }));
            }
            if cmd & txd::RS != 0 {
                if self.hold_dd {
                    self.held.push(i);
                } else {
                    mem.write(at + txd::STA as u64, &[txd::DD]);
                    self.icr |= int::TXDW;
                }
            }
            self.regs.insert(regs::TDH, ((head + 1) % n) as u32);
            any = true;
        }
        any
    }

    /// Writes back the `DD` held so far.
    fn release(&mut self, mem: &SimMemory) {
        for i in core::mem::take(&mut self.held) {
            let at = self.ring_base(regs::TDBAL) + 16 * i as u64;
            mem.write(at + txd::STA as u64, &[txd::DD]);
            self.icr |= int::TXDW;
        }
    }
}

/// The driver's view of the model's registers.
struct SimRegs(Rc<RefCell<Model>>);

impl Regs for SimRegs {
    fn read(&self, offset: u32) -> u32 {
        self.0.borrow_mut().read(offset)
    }
    fn write(&mut self, offset: u32, value: u32) {
        self.0.borrow_mut().write(offset, value)
    }
}

/// A driver, its device and its client, as the PD sets them up.
struct Rig {
    driver: Driver<'static, SimRegs>,
    /// The client's ends: receives frames, sends frames.
    client_rx: ReceiverQueues<'static, RX_QUEUE_CAPACITY>,
    client_tx: SenderQueues<'static, TX_QUEUE_CAPACITY>,
    dev: Rc<RefCell<Model>>,
    /// A client notification the driver asked for is pending.
    driver_woken: bool,
    /// The driver notified the client.
    client_woken: bool,
    // Last: the memory everything above points into.
    mem: Rc<SimMemory>,
}

fn window_len(w: TxWindow) -> u64 {
    (match w {
        TxWindow::Headers => TX_HEADERS_SIZE,
        TxWindow::Rx => RX_DATA_SIZE,
        TxWindow::Payload => TX_PAYLOAD_SIZE,
        TxWindow::Files | TxWindow::Offload => 0,
    }) as u64
}

fn window_paddr(w: TxWindow) -> u64 {
    match w {
        TxWindow::Headers => TX_HEADERS,
        TxWindow::Rx => RX_DATA,
        TxWindow::Payload => PAYLOAD,
        TxWindow::Files | TxWindow::Offload => 0,
    }
}

/// A rig whose device is `model`, just brought up (or the error).
fn rig_with(mut model: Model) -> Result<Rig, (InitError, Rc<RefCell<Model>>)> {
    let mut mem = SimMemory::default();
    mem.add(PRIVATE, private::SIZE);
    mem.add(RX_DATA, RX_DATA_SIZE);
    mem.add(TX_HEADERS, TX_HEADERS_SIZE);
    mem.add(PAYLOAD, TX_PAYLOAD_SIZE);
    let q = |i: u64| QUEUES + i * 0x1_0000;
    let (rx_free, rx_active) =
        (mem.add(q(0), region_size(RX_QUEUE_CAPACITY)), mem.add(q(1), region_size(RX_QUEUE_CAPACITY)));
    let (tx_free, tx_active) =
        (mem.add(q(2), region_size(TX_QUEUE_CAPACITY)), mem.add(q(3), region_size(TX_QUEUE_CAPACITY)));
    let mem = Rc::new(mem);
    model.mem = Some(mem.clone());
    let regions = ClientRegions { rx_data: RX_DATA, tx_windows: tx_windows(TX_HEADERS, RX_DATA, Some(PAYLOAD), None) };
    // SAFETY: the queue regions live in `mem`, which the rig keeps (and
    // drops after every handle); each end is made once.
    let (rx_client, tx_client, client_rx, client_tx) = unsafe {
        (
            SenderQueues::new(rx_free, rx_active, RX_DATA_SIZE),
            ReceiverQueues::new(tx_free, tx_active, TX_SPACE_LEN),
            ReceiverQueues::new(rx_free, rx_active, RX_DATA_SIZE),
            SenderQueues::new(tx_free, tx_active, TX_SPACE_LEN),
        )
    };
    let dev = Rc::new(RefCell::new(model));
    // SAFETY: the private region is private::SIZE bytes, page aligned, in
    // `mem`; the client regions are at the addresses given.
    let driver = match unsafe { Driver::new(SimRegs(dev.clone()), mem.dma(PRIVATE), regions, rx_client, tx_client) } {
        Ok(d) => d,
        Err(e) => return Err((e, dev)),
    };
    Ok(Rig { driver, client_rx, client_tx, dev, driver_woken: false, client_woken: false, mem })
}

fn rig() -> Rig {
    let mut r = rig_with(Model::new()).unwrap_or_else(|(e, _)| panic!("bring-up: {e:?}"));
    // The PD's init: one pass that arms the signal requests.
    r.wake(false);
    r
}

impl Rig {
    fn wake(&mut self, irq: bool) {
        self.client_woken |= self.driver.handle(irq);
    }

    /// Lets device and driver run until neither has anything to do. The
    /// driver runs only when the PD would: on the device's interrupt, or
    /// a client notification it asked for.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut progress = {
                let mut d = self.dev.borrow_mut();
                d.transmit(&self.mem) | d.deliver(&self.mem)
            };
            let irq = self.dev.borrow().irq();
            if irq || core::mem::take(&mut self.driver_woken) {
                self.wake(irq);
                progress = true;
            }
            if !progress {
                return;
            }
        }
        panic!("driver and device never settle");
    }

    /// Lends buffers (by index) to the driver.
    fn lend(&mut self, buffers: impl IntoIterator<Item = usize>) {
        for i in buffers {
            let desc = BufferDesc { offset: (i * RX_BUFFER_SIZE) as u64, len: RX_BUFFER_SIZE as u32, cookie: 0 };
            self.client_rx.free.enqueue(desc).unwrap();
        }
        self.driver_woken |= self.client_rx.free.should_signal();
    }

    /// Takes the received frames: (buffer offset, bytes).
    fn receive(&mut self) -> Vec<(u64, Vec<u8>)> {
        core::iter::from_fn(|| self.client_rx.active.dequeue().unwrap())
            .map(|d| (d.offset, self.mem.read(RX_DATA + d.offset, d.len as usize)))
            .collect()
    }

    /// Queues one frame of `segments` (window, offset, len) for transmit;
    /// its descriptors' cookies count from `cookie`. Returns the bytes the
    /// device must send.
    fn send(&mut self, segments: &[(TxWindow, u32, u32)], cookie: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let descs: Vec<BufferDesc> = segments
            .iter()
            .enumerate()
            .map(|(i, &(w, offset, len))| {
                if len > 0 && u64::from(offset) + u64::from(len) <= window_len(w) {
                    bytes.extend(self.mem.read(window_paddr(w) + u64::from(offset), len as usize));
                }
                let more = if i + 1 < segments.len() { TX_MORE } else { 0 };
                BufferDesc { offset: tx_offset(w, offset), len, cookie: (cookie + i as u32) | more }
            })
            .collect();
        assert_eq!(self.client_tx.active.enqueue_batch(&descs), Ok(descs.len()));
        self.driver_woken |= self.client_tx.active.should_signal();
        bytes
    }

    /// Takes the transmit descriptors given back.
    fn reclaim(&mut self) -> Vec<BufferDesc> {
        core::iter::from_fn(|| self.client_tx.free.dequeue().unwrap()).collect()
    }

    /// Writes `bytes` at `offset` of the `tx_headers` region.
    fn write_headers(&mut self, offset: u32, bytes: &[u8]) {
        self.mem.write(TX_HEADERS + u64::from(offset), bytes);
    }
}

/// A frame of `len` bytes that names `seed` in every byte.
fn frame(seed: u64, len: usize) -> Vec<u8> {
    let mut f = vec![0; len];
    Rng(seed | 1 << 40).fill(&mut f);
    f
}

fn good(bytes: Vec<u8>) -> WireFrame {
    WireFrame { bytes, errors: 0, split: false }
}

/// Bring-up resets the device and programs the filter (the node's MAC
/// valid, the other entries and the multicast table cleared, broadcasts
/// on, not promiscuous), both rings, `TCTL`, `RCTL` and link up, with
/// interrupts masked until the end. Catches: skipping the reset; leaving
/// `UPE`/`MPE` set or `BAM` clear; not clearing `MTA` or the stale
/// receive address; a wrong buffer size, ring base or length; a missing
/// `PSP`, `CT`, `COLD`, `SECRC` or `SLU`; enabling interrupts before the
/// rings are set, or not enabling the four causes.
#[test]
fn bring_up_programs_the_filter_and_rings_not_promiscuous() {
    let r = rig();
    assert_eq!(r.driver.receive_filter(), ReceiveFilter::NodeOnly);
    let d = r.dev.borrow();
    assert_eq!(d.resets, 2, "power-on and the driver's reset");
    assert_eq!(r.driver.mac(), Some(MAC));
    // The filter.
    assert_eq!(mac_of(&d, 0), Some(MAC), "RAL0/RAH0 hold the node's MAC with AV");
    for n in 1..regs::RAR_ENTRIES {
        assert_eq!(d.reg(regs::rah(n)) & regs::RAH_AV, 0, "receive address {n} is not valid");
    }
    for i in 0..regs::MTA_ENTRIES {
        assert_eq!(d.reg(regs::MTA + 4 * i), 0, "MTA[{i}] clear: no multicast");
    }
    let rctl = d.reg(regs::RCTL);
    assert_eq!(rctl & (rctl::UPE | rctl::MPE | rctl::SBP | rctl::LPE), 0, "not promiscuous, no bad or long frames");
    assert_eq!(rctl & (rctl::EN | rctl::BAM | rctl::SECRC), rctl::EN | rctl::BAM | rctl::SECRC);
    assert_eq!(rctl & (rctl::BSIZE_MASK | rctl::BSEX), rctl::BSIZE_2048, "2048-byte buffers");
    assert_eq!(rctl & (rctl::DTYP_MASK | rctl::LBM_MASK), 0, "legacy descriptors, no loopback");
    assert_eq!(d.reg(regs::RFCTL), 0, "legacy descriptor format (EXSTEN clear)");
    // The rings.
    assert_eq!(d.ring_base(regs::RDBAL), PRIVATE + private::RX_RING_AT as u64);
    assert_eq!(d.ring_base(regs::TDBAL), PRIVATE + private::TX_RING_AT as u64);
    assert_eq!(d.reg(regs::RDLEN) as usize, RX_RING * 16);
    assert_eq!(d.reg(regs::TDLEN) as usize, TX_RING * 16);
    assert_eq!((d.reg(regs::RDH), d.reg(regs::TDH), d.reg(regs::TDT)), (0, 0, 0));
    let tctl = d.reg(regs::TCTL);
    assert_eq!(tctl & (tctl::EN | tctl::PSP), tctl::EN | tctl::PSP);
    assert_eq!((tctl & tctl::CT_MASK) >> tctl::CT_SHIFT, 0x0f);
    assert_eq!((tctl & tctl::COLD_MASK) >> tctl::COLD_SHIFT, 0x3f);
    assert_ne!(d.reg(regs::CTRL) & regs::CTRL_SLU, 0, "link set up");
    // Interrupts: masked first, enabled last, the four causes.
    assert_eq!(d.writes.first(), Some(&(regs::IMC, int::ALL)));
    let enable = d.writes.iter().position(|&(o, _)| o == regs::IMS).expect("IMS written");
    for reg in [regs::RCTL, regs::TCTL, regs::RDBAL, regs::TDBAL, regs::RAH0, regs::MTA] {
        let last = d.writes.iter().rposition(|&(o, _)| o == reg).unwrap();
        assert!(last < enable, "register {reg:#x} written after interrupts were enabled");
    }
    assert_eq!(d.ims, IMS_CAUSES);
    assert_eq!(IMS_CAUSES, int::RXT0 | int::TXDW | int::LSC | int::RXO);
    assert!(r.driver.link_up());
}

/// The MAC address in receive address entry `n`, if valid.
fn mac_of(d: &Model, n: u32) -> Option<[u8; 6]> {
    let (l, h) = (d.reg(regs::ral(n)).to_le_bytes(), d.reg(regs::rah(n)));
    (h & regs::RAH_AV != 0).then(|| [l[0], l[1], l[2], l[3], h as u8, (h >> 8) as u8])
}

/// A device whose `CTRL.RST` never clears fails bring-up with
/// `ResetTimeout`, and the driver programs nothing after it (the rings
/// stay unset). Catches: an unbounded wait (the test would hang), a wait
/// that ignores the bit, or carrying on regardless.
#[test]
fn reset_that_never_clears_is_an_error() {
    let mut m = Model::new();
    m.reset_stuck = true;
    let (e, dev) = rig_with(m).err().expect("bring-up must fail");
    assert_eq!(e, InitError::ResetTimeout);
    let d = dev.borrow();
    assert!(d.writes.iter().all(|&(o, _)| o != regs::RCTL && o != regs::TCTL && o != regs::IMS));
}

/// An all-zero or multicast (broadcast included) MAC from the EEPROM is
/// refused. Catches: accepting a blank EEPROM, or checking the wrong bit
/// or byte for multicast.
#[test]
fn a_blank_or_multicast_mac_is_refused() {
    for bad in [[0; 6], [0x01, 0, 0x5e, 0, 0, 1], [0xff; 6], [0x53, 0x54, 0, 0, 0, 1]] {
        let mut m = Model::new();
        m.eeprom_mac = bad;
        m.reset();
        let (e, _) = rig_with(m).err().expect("bring-up must fail");
        assert_eq!(e, InitError::BadMac(bad));
    }
    // A locally administered unicast address is fine.
    let mut m = Model::new();
    m.eeprom_mac = [0x02, 0, 0, 0, 0, 1];
    assert!(rig_with(m).is_ok());
}

/// A frame of two descriptors (a header from `tx_headers`, a payload from
/// `tx_payload`) is sent as two legacy descriptors, `IFCS` on both and
/// `EOP|RS` on the last only, with the right bytes; its descriptors come
/// back to the client, cookies unchanged, only once the device wrote
/// `DD`. Catches: missing `EOP`, `RS` or `IFCS`; `EOP` on every
/// descriptor (the device would send two frames); giving buffers back
/// before `DD` (the client would reuse bytes the device still reads);
/// never giving them back; a wrong address or length.
#[test]
fn a_sent_frame_has_the_right_flags_and_its_buffers_come_back_after_dd() {
    let mut r = rig();
    r.dev.borrow_mut().hold_dd = true;
    let header = frame(1, 42);
    r.write_headers(0x100, &header);
    r.mem.write(PAYLOAD + 0x2000, &frame(2, 300));
    let want = r.send(&[(TxWindow::Headers, 0x100, 42), (TxWindow::Payload, 0x2000, 300)], 7);
    r.settle();
    {
        let d = r.dev.borrow();
        assert_eq!(d.sent.len(), 1);
        assert_eq!(d.sent[0].bytes, want);
        assert_eq!(d.sent[0].cmds, vec![txd::IFCS, txd::IFCS | txd::EOP | txd::RS]);
    }
    assert!(r.reclaim().is_empty(), "nothing comes back before DD");
    assert_eq!(r.driver.stats().tx_frames, 0);
    let mem = r.mem.clone();
    r.dev.borrow_mut().release(&mem);
    r.settle();
    let back = r.reclaim();
    assert_eq!(
        back.iter().map(|d| (d.offset, d.len, d.cookie)).collect::<Vec<_>>(),
        [(tx_offset(TxWindow::Headers, 0x100), 42, 7 | TX_MORE), (tx_offset(TxWindow::Payload, 0x2000), 300, 8)]
    );
    let s = r.driver.stats();
    assert_eq!((s.tx_frames, s.tx_bytes, s.tx_dropped), (1, 342, 0));
}

/// Received frames reach the client in order with their bytes, through
/// more than two laps of the ring while the client gives buffers back;
/// the tail always stays behind the head (the model checks). Catches:
/// out-of-order delivery, a wrong length or buffer, a tail that laps the
/// head, buffers not given back to the device (delivery stalls).
#[test]
fn received_frames_reach_the_client_in_order() {
    let mut r = rig();
    r.lend(0..RX_BUFFERS);
    r.settle();
    assert_eq!(r.dev.borrow().rx_owned, RX_RING - 1, "every descriptor but one handed over");
    let frames: Vec<Vec<u8>> = (0..600).map(|i| frame(i, MIN_FRAME_LEN + (i as usize * 37) % 1500)).collect();
    let mut got = Vec::new();
    for chunk in frames.chunks(50) {
        r.dev.borrow_mut().wire.extend(chunk.iter().cloned().map(good));
        r.settle();
        let batch = r.receive();
        let offsets: Vec<u64> = batch.iter().map(|(o, _)| *o).collect();
        got.extend(batch.into_iter().map(|(_, b)| b));
        r.lend(offsets.iter().map(|&o| o as usize / RX_BUFFER_SIZE));
        r.settle();
    }
    assert_eq!(got.len(), frames.len());
    assert!(got == frames, "bytes and order");
    let s = r.driver.stats();
    assert_eq!((s.rx_frames, s.rx_dropped), (600, 0));
    assert_eq!(s.rx_bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
}

/// A descriptor written back with an error bit is dropped and counted,
/// its buffer goes straight back to the device, and the frames around it
/// arrive. Catches: passing errored frames to the client, not counting
/// them, or losing their buffer (the ring would shrink by one each time).
#[test]
fn an_errored_descriptor_is_dropped_and_counted() {
    let mut r = rig();
    r.lend(0..100);
    r.settle();
    assert_eq!(r.dev.borrow().rx_owned, 100);
    let (a, b, c) = (frame(10, 60), frame(11, 70), frame(12, 80));
    r.dev.borrow_mut().wire.extend([
        good(a.clone()),
        WireFrame { bytes: b, errors: rxd::CE, split: false },
        WireFrame { bytes: frame(13, 90), errors: rxd::RXE, split: false },
        good(c.clone()),
    ]);
    r.settle();
    let got: Vec<Vec<u8>> = r.receive().into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, [a, c]);
    assert_eq!(r.driver.stats().rx_dropped, 2);
    assert_eq!(r.driver.stats().rx_frames, 2);
    // The two errored buffers were posted again: the device holds every
    // buffer lent but the two frames the client holds.
    assert_eq!(r.dev.borrow().rx_owned, 100 - 2);
}

/// A frame spread over two descriptors (the first without `EOP`) is
/// dropped whole and counted once; the next frame arrives. Catches:
/// handing out a partial frame, or counting each piece.
#[test]
fn a_frame_over_two_descriptors_is_dropped_once() {
    let mut r = rig();
    r.lend(0..RX_BUFFERS);
    r.settle();
    let next = frame(21, 64);
    r.dev.borrow_mut().wire.extend([WireFrame { bytes: frame(20, 1000), errors: 0, split: true }, good(next.clone())]);
    r.settle();
    let got: Vec<Vec<u8>> = r.receive().into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, [next]);
    assert_eq!((r.driver.stats().rx_dropped, r.driver.stats().rx_frames), (1, 1));
}

/// With the device stalled, the client sends more frames than the ring
/// holds: the driver hands over at most a ring less one descriptor
/// (never moving the tail past the head, never changing a descriptor the
/// device owns: the model checks both) and leaves the rest on
/// `tx_active`; once the device runs, every frame goes out once, in
/// order, and every buffer comes back. Catches: taking frames without
/// looking at the ring's room (in-flight descriptors overwritten),
/// dropping frames for want of room, losing the ones held back.
#[test]
fn a_full_transmit_ring_holds_frames_back() {
    let mut r = rig();
    r.dev.borrow_mut().tx_stalled = true;
    let n = 400;
    let mut want = Vec::new();
    for i in 0..n {
        let at = (i % 64) * 64;
        r.write_headers(at, &frame(u64::from(i % 64), 60));
        want.push(r.send(&[(TxWindow::Headers, at, 60)], i));
    }
    r.settle();
    let in_ring = r.dev.borrow().tx_owned.len();
    assert!(in_ring < TX_RING, "at most a ring less one handed over");
    assert!(in_ring >= TX_RING - 1 - MAX_TX_SEGMENTS, "the ring is used ({in_ring})");
    assert_eq!(r.client_tx.active.len().unwrap(), n as usize - in_ring, "the rest waits on tx_active");
    assert!(r.reclaim().is_empty());
    r.dev.borrow_mut().tx_stalled = false;
    let mut back = Vec::new();
    for _ in 0..10 {
        r.settle();
        back.extend(r.reclaim());
    }
    let d = r.dev.borrow();
    assert_eq!(d.sent.len(), n as usize);
    assert!(d.sent.iter().map(|s| &s.bytes).eq(want.iter()), "each frame once, in order");
    assert_eq!(back.iter().map(|d| d.cookie).collect::<Vec<_>>(), (0..n).collect::<Vec<_>>());
    assert_eq!(r.driver.stats().tx_dropped, 0);
}

/// Link down, then up, each raises `LSC`: the driver reads `STATUS.LU`
/// and reports the change once. Catches: a link state read only at
/// bring-up, `LSC` not enabled or not acknowledged (the line would stay
/// up and the model's interrupt never clear: `settle` would spin).
#[test]
fn link_down_then_up_is_reported() {
    let mut r = rig();
    assert!(r.driver.link_up());
    assert_eq!(r.driver.take_link_change(), None);
    r.dev.borrow_mut().set_link(false);
    r.settle();
    assert!(!r.driver.link_up());
    assert_eq!(r.driver.take_link_change(), Some(false));
    assert_eq!(r.driver.take_link_change(), None, "reported once");
    r.dev.borrow_mut().set_link(true);
    r.settle();
    assert_eq!(r.driver.take_link_change(), Some(true));
    assert_eq!(r.driver.events().link_changes, 2);
    assert_eq!(r.dev.borrow().icr, 0, "causes acknowledged");
}

/// Frames the driver must refuse (a segment outside its window, an empty
/// segment, too short, an offload descriptor: none negotiated) come back
/// unsent and are counted; a good frame after them goes out. Catches:
/// handing the device an address outside the client's regions.
#[test]
fn bad_frames_are_refused_and_given_back() {
    let mut r = rig();
    r.write_headers(0, &frame(30, 60));
    r.send(&[(TxWindow::Headers, TX_HEADERS_SIZE as u32 - 10, 20)], 1);
    r.send(&[(TxWindow::Headers, 0, 10)], 2);
    r.send(&[(TxWindow::Offload, 0, 0), (TxWindow::Headers, 0, 60)], 3);
    let ok = r.send(&[(TxWindow::Headers, 0, 60)], 10);
    r.settle();
    assert_eq!(r.driver.stats().tx_dropped, 3);
    let d = r.dev.borrow();
    assert_eq!(d.sent.iter().map(|s| &s.bytes).collect::<Vec<_>>(), [&ok]);
    drop(d);
    let mut cookies: Vec<u32> = r.reclaim().iter().map(|d| d.cookie & !TX_MORE).collect();
    cookies.sort();
    assert_eq!(cookies, [1, 2, 3, 4, 10]);
}

/// A restarted driver sends the restart marker and touches no queue until
/// the client attaches; then it serves again. Catches: serving stale
/// queue indices after a restart.
#[test]
fn a_restarted_driver_waits_for_attach() {
    let mut r = rig();
    assert!(r.driver.restarted());
    let marker = r.client_rx.active.dequeue();
    assert!(matches!(marker, Err(lib_queue::QueueError::OutOfBounds(d)) if lib_net_protocol::is_restart_marker(&d)));
    r.lend(0..8);
    r.settle();
    assert_eq!(r.dev.borrow().rx_owned, 0, "no buffer posted before Attach");
    r.driver.attach();
    r.client_rx.reset();
    r.client_tx.reset();
    r.lend(0..8);
    // The client notifies the driver after attaching.
    r.driver_woken = true;
    r.settle();
    assert_eq!(r.dev.borrow().rx_owned, 8);
    let f = frame(40, 100);
    r.client_rx.active.request_signal();
    r.client_woken = false;
    r.dev.borrow_mut().wire.push_back(good(f.clone()));
    r.settle();
    assert_eq!(r.receive().into_iter().map(|(_, b)| b).collect::<Vec<_>>(), [f]);
    assert!(r.client_woken, "the client asked and was notified");
}

/// `Mmio` reads and writes the 32-bit word at the offset. Catches: byte
/// rather than word indexing.
#[test]
fn mmio_addresses_words() {
    let mut bar = vec![0u32; 8];
    {
        // SAFETY: the vector outlives the handle and is used only through it.
        let mut m = unsafe { crate::regs::Mmio::new(bar.as_mut_ptr().cast(), 32) };
        m.write(8, 0xdead_beef);
        assert_eq!(m.read(8), 0xdead_beef);
        assert_eq!(m.read(4), 0);
    }
    assert_eq!(bar[2], 0xdead_beef);
}

/// Frames of the most descriptors ([`MAX_TX_SEGMENTS`]) against a stalled
/// device fill the ring to exactly one descriptor short of full (15
/// frames of 16: 240 of 255 usable), and all go out once it runs.
/// Catches: counting the last descriptor as free (the 16th frame would
/// bring the tail round onto the head, which the device reads as an
/// empty ring: nothing would go out), and frames of many segments sent
/// out of order or with `EOP` in the wrong place.
#[test]
fn frames_of_the_most_segments_fill_the_ring_to_one_short() {
    let mut r = rig();
    r.dev.borrow_mut().tx_stalled = true;
    r.write_headers(0, &frame(50, 16 * 8));
    let segments: Vec<(TxWindow, u32, u32)> =
        (0..MAX_TX_SEGMENTS as u32).map(|k| (TxWindow::Headers, k * 8, 8)).collect();
    let mut want = Vec::new();
    for i in 0..20 {
        want.push(r.send(&segments, i * 100));
    }
    r.settle();
    assert_eq!(r.dev.borrow().tx_owned.len(), 15 * MAX_TX_SEGMENTS);
    assert_eq!(r.client_tx.active.len().unwrap(), 5 * MAX_TX_SEGMENTS);
    r.dev.borrow_mut().tx_stalled = false;
    r.settle();
    let d = r.dev.borrow();
    assert!(d.sent.iter().map(|s| &s.bytes).eq(want.iter()));
    let mut cmds = vec![txd::IFCS; MAX_TX_SEGMENTS];
    cmds[MAX_TX_SEGMENTS - 1] |= txd::EOP | txd::RS;
    assert!(d.sent.iter().all(|s| s.cmds == cmds));
    drop(d);
    assert_eq!(r.reclaim().len(), 20 * MAX_TX_SEGMENTS);
}

/// A device whose `ICR` a read does not clear (7.4.5: with MSI-X, or a
/// read while no interrupt is asserted) still has every cause
/// acknowledged: the driver writes the causes it read back to `ICR`.
/// Catches: relying on read-to-clear alone (the line would stay asserted
/// and the driver be woken for ever: `settle` would give up).
#[test]
fn causes_are_acknowledged_by_writing_icr_back() {
    let mut r = rig();
    r.dev.borrow_mut().icr_read_clears = false;
    r.lend(0..16);
    r.settle();
    let f = frame(60, 200);
    r.dev.borrow_mut().wire.push_back(good(f.clone()));
    r.dev.borrow_mut().set_link(false);
    r.settle();
    assert_eq!(r.dev.borrow().icr, 0);
    assert_eq!(r.receive().into_iter().map(|(_, b)| b).collect::<Vec<_>>(), [f]);
    assert!(!r.driver.link_up());
}

/// Random interleavings (20 seeds of 300 steps) of frames arriving in
/// bursts, the client taking them and giving back some of its buffers
/// late, the client sending frames of one to four segments and
/// reclaiming late, the device stalling its transmit side and holding
/// `DD` back: in the end every frame on the wire reached the client once
/// and in order, every frame sent went out once and in order, and every
/// transmit descriptor came back once, in order. The model checks the
/// ring rules at each tail write. Catches: descriptors given back twice
/// or never (a wrong step of the reclaim index), reordering across ring
/// wrap-around, buffers or frames lost when stalls and late `DD` meet.
#[test]
fn random_traffic_loses_nothing_and_keeps_order() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed);
        let mut r = rig();
        r.write_headers(0, &frame(seed, TX_HEADERS_SIZE));
        r.lend(0..RX_BUFFERS);
        r.settle();
        let (mut on_wire, mut received, mut held) = (Vec::new(), Vec::new(), Vec::new());
        let (mut want_tx, mut want_back, mut back) = (Vec::new(), Vec::new(), Vec::new());
        let mut cookie = 0u32;
        for _ in 0..300 {
            match rng.below(6) {
                0 => {
                    for _ in 0..1 + rng.below(40) {
                        let f = frame(rng.next(), MIN_FRAME_LEN + rng.below(MAX_FRAME_LEN - MIN_FRAME_LEN + 1));
                        on_wire.push(f.clone());
                        r.dev.borrow_mut().wire.push_back(good(f));
                    }
                }
                1 => {
                    for (offset, bytes) in r.receive() {
                        received.push(bytes);
                        held.push(offset);
                    }
                    let k = rng.below(held.len() + 1);
                    let give: Vec<u64> = held.drain(..k).collect();
                    r.lend(give.iter().map(|&o| o as usize / RX_BUFFER_SIZE));
                }
                2 => {
                    let n = 1 + rng.below(4);
                    let outstanding = want_back.len() - back.len();
                    if outstanding + n <= TX_QUEUE_CAPACITY {
                        let segments: Vec<(TxWindow, u32, u32)> = (0..n)
                            .map(|_| {
                                let len = 4 + rng.below(300) as u32;
                                (TxWindow::Headers, rng.below(TX_HEADERS_SIZE - 400) as u32, len)
                            })
                            .collect();
                        let total: u32 = segments.iter().map(|s| s.2).sum();
                        if total as usize >= MIN_FRAME_LEN {
                            want_tx.push(r.send(&segments, cookie));
                            want_back.extend(cookie..cookie + n as u32);
                            cookie += n as u32;
                        }
                    }
                }
                3 => back.extend(r.reclaim().iter().map(|d| d.cookie & !TX_MORE)),
                4 => {
                    let mem = r.mem.clone();
                    let mut d = r.dev.borrow_mut();
                    d.tx_stalled = rng.below(3) == 0;
                    d.hold_dd = rng.below(3) == 0;
                    if !d.hold_dd {
                        d.release(&mem);
                    }
                }
                _ => {}
            }
            r.settle();
        }
        // Drain: the device runs, the client takes and returns everything.
        {
            let mem = r.mem.clone();
            let mut d = r.dev.borrow_mut();
            (d.tx_stalled, d.hold_dd) = (false, false);
            d.release(&mem);
        }
        for _ in 0..10 {
            r.settle();
            for (offset, bytes) in r.receive() {
                received.push(bytes);
                held.push(offset);
            }
            let give: Vec<u64> = core::mem::take(&mut held);
            r.lend(give.iter().map(|&o| o as usize / RX_BUFFER_SIZE));
            back.extend(r.reclaim().iter().map(|d| d.cookie & !TX_MORE));
        }
        assert!(received == on_wire, "seed {seed}: {} of {} frames received, in order", received.len(), on_wire.len());
        let d = r.dev.borrow();
        assert!(d.sent.iter().map(|s| &s.bytes).eq(want_tx.iter()), "seed {seed}: frames sent once, in order");
        assert_eq!(back, want_back, "seed {seed}: every descriptor back once, in order");
        let s = r.driver.stats();
        assert_eq!(
            (s.rx_frames, s.rx_dropped, s.tx_frames, s.tx_dropped),
            (on_wire.len() as u64, 0, want_tx.len() as u64, 0)
        );
    }
}

/// Every buffer at the client and none posted, frames still waiting on
/// the wire: when the client gives its buffers back, the driver (which
/// asked for a signal on `rx_free`, having fewer than `RX_REFILL_BELOW`
/// posted) is woken, posts them, and the rest of the frames arrive.
/// Catches: not waiting on `rx_free` when the ring runs low (no
/// interrupt would ever come again: delivery would stop for good).
#[test]
fn returned_buffers_wake_a_driver_with_none_posted() {
    let mut r = rig();
    r.lend(0..RX_BUFFERS);
    r.settle();
    let frames: Vec<Vec<u8>> = (0..400).map(|i| frame(i, 100)).collect();
    r.dev.borrow_mut().wire.extend(frames.iter().cloned().map(good));
    r.settle();
    let first = r.receive();
    assert_eq!(first.len(), RX_BUFFERS, "every buffer filled");
    assert_eq!(r.dev.borrow().rx_owned, 0, "none posted");
    r.lend(first.iter().map(|(o, _)| *o as usize / RX_BUFFER_SIZE));
    assert!(r.driver_woken, "the driver asked to be told");
    r.settle();
    let rest = r.receive();
    let got: Vec<Vec<u8>> = first.into_iter().chain(rest).map(|(_, b)| b).collect();
    assert!(got == frames, "all 400, in order");
}

/// A client that sends more than it reclaims is served only as far as
/// `tx_free` can take the descriptors back: with 400 sent frames'
/// descriptors unreclaimed on `tx_free` (capacity 512), 200 more frames
/// go out only 112, the rest waiting on `tx_active` until the client
/// reclaims and sends again; no descriptor is lost. Catches: taking frames
/// without counting the room on `tx_free` (the driver could not give
/// back what the device sent: `client_errors`, descriptors lost).
#[test]
fn unreclaimed_descriptors_hold_transmission_back() {
    let mut r = rig();
    r.write_headers(0, &frame(70, 64));
    for i in 0..400 {
        r.send(&[(TxWindow::Headers, 0, 64)], i);
        if i % 100 == 99 {
            r.settle();
        }
    }
    r.settle();
    assert_eq!(r.dev.borrow().sent.len(), 400);
    for i in 400..600 {
        r.send(&[(TxWindow::Headers, 0, 64)], i);
    }
    r.settle();
    assert_eq!(r.dev.borrow().sent.len(), TX_QUEUE_CAPACITY, "only what tx_free can take back");
    assert_eq!(r.client_tx.active.len().unwrap(), 600 - TX_QUEUE_CAPACITY);
    let mut back: Vec<u32> = r.reclaim().iter().map(|d| d.cookie).collect();
    // Reclaiming wakes no one (net-protocol: the driver waits on
    // `tx_active` only); the client's next frame does.
    r.send(&[(TxWindow::Headers, 0, 64)], 600);
    r.settle();
    back.extend(r.reclaim().iter().map(|d| d.cookie));
    assert_eq!(back, (0..601).collect::<Vec<_>>());
    assert_eq!((r.driver.stats().tx_frames, r.driver.stats().client_errors), (601, 0));
}

/// A burst of 50 frames handled on one interrupt moves `RDT` with one
/// register write (the 50 buffers given back later, on the next
/// interrupt, with one more), and 10 frames sent together move `TDT`
/// once. Catches: a tail write per descriptor (an uncached MMIO write
/// each, and on real hardware a descriptor fetch each).
#[test]
fn tails_are_written_once_per_batch() {
    let mut r = rig();
    r.lend(0..RX_BUFFERS);
    r.settle();
    let count = |r: &Rig, reg: u32| r.dev.borrow().writes.iter().filter(|&&(o, _)| o == reg).count();
    let (rdt, tdt) = (count(&r, regs::RDT), count(&r, regs::TDT));
    r.dev.borrow_mut().wire.extend((0..50).map(|i| good(frame(i, 64))));
    r.settle();
    let got = r.receive();
    assert_eq!(got.len(), 50);
    assert_eq!(count(&r, regs::RDT), rdt + 1, "the one spare buffer posted: one write");
    r.lend(got.iter().map(|(o, _)| *o as usize / RX_BUFFER_SIZE));
    r.dev.borrow_mut().wire.push_back(good(frame(99, 64)));
    r.settle();
    assert_eq!(count(&r, regs::RDT), rdt + 2, "the 50 returned and the new frame's buffer: one write");
    r.write_headers(0, &frame(98, 64));
    for i in 0..10 {
        r.send(&[(TxWindow::Headers, 0, 64)], i);
    }
    r.settle();
    assert_eq!(r.dev.borrow().sent.len(), 10);
    assert_eq!(count(&r, regs::TDT), tdt + 1);
    assert_eq!(r.driver.stats().device_notifies as usize, count(&r, regs::RDT) + count(&r, regs::TDT) - 2);
}
