//! The ARP table region: IPv4-to-MAC translations that `arpd` writes and
//! every network PD with `arp="true"` reads, without a protected call.
//!
//! # Region
//!
//! One region of [`TABLE_BYTES`] (`net_config::ARP_TABLE_SIZE`), mapped
//! read-write into `arpd` and read-only into its clients, at
//! `net_config::ARP_TABLE_VADDR`. Little-endian, every field naturally
//! aligned:
//!
//! | offset          | size | field          | meaning |
//! |-----------------|------|----------------|---------|
//! | 0               | 4    | `magic`        | [`MAGIC`] once arpd has initialised the table |
//! | 4               | 4    | `version`      | [`VERSION`] |
//! | 8               | 4    | `capacity`     | [`CAPACITY`] |
//! | 12              | 4    | `entry_bytes`  | [`ENTRY_BYTES`] |
//! | 16              | 48   | (reserved)     | zero |
//! | 64 + 32·i       | 4    | entry `i`: `seq`          | sequence lock, odd while being written |
//! | 68 + 32·i       | 4    | entry `i`: `state`        | 0 empty, [`State`] otherwise |
//! | 72 + 32·i       | 4    | entry `i`: `ip`           | IPv4 address, host order (`Ipv4Address::to_u32`) |
//! | 76 + 32·i       | 4    | (reserved)                | zero |
//! | 80 + 32·i       | 8    | entry `i`: `mac`          | MAC in the low 48 bits, first byte lowest (`lib_net_protocol::mac_to_word`) |
//! | 88 + 32·i       | 8    | entry `i`: `confirmed_ns` | when the neighbour last proved the translation, timer ns since boot |
//!
//! The layout is compiled into both sides: a reader never takes the
//! capacity or an offset from the region. An all-zero region is a valid,
//! empty table.
//!
//! # Who writes what
//!
//! Only `arpd` writes, through its one [`TableWriter`]; readers
//! ([`TableReader`]) only load. An entry's address stays in its slot until
//! the entry is cleared: arpd never moves a translation from one slot to
//! another, so a reader that finds an address finds its only slot.
//!
//! # The sequence lock
//!
//! Each entry has its own sequence counter, so that a reader never sees a
//! torn entry (a new address with an old MAC) and a writer never waits for
//! a reader. Writer, for entry `i` whose counter is `s` (even):
//!
//! ```text
//! W1  seq := s + 1                        (Relaxed)   odd: being written
//! W2  fence(Release)
//! W3  state, ip, mac, confirmed_ns := ... (Relaxed)
//! W4  seq := s + 2                        (Release)   even: stable
//! ```
//!
//! Reader:
//!
//! ```text
//! R1  s1 := seq                           (Acquire)   odd: retry
//! R2  read state, ip, mac, confirmed_ns   (Relaxed)
//! R3  fence(Acquire)
//! R4  s2 := seq                           (Relaxed)
//! R5  s1 == s2: the fields are one write's; else retry
//! ```
//!
//! Why it holds (the seqlock of H.-J. Boehm, "Can Seqlocks Get Along With
//! Programming Language Memory Models?", 2012): R1 reading the value W4
//! stored makes that write's fields visible to R2 (release/acquire). If R2
//! read any field written by a *later* write, that value was stored after
//! the later write's W2 release fence, so R3 synchronises with W2 and the
//! later write's W1 happens before R4: R4 reads an odd or larger counter and
//! R5 fails. So when R5 succeeds, every field comes from the write that
//! stored `s1`. A counter wraps after 2³¹ writes to one entry; a reader
//! would have to stall across exactly that many writes to be fooled.
//!
//! Every field is an atomic accessed with `Relaxed` loads and stores (plain
//! moves on x86_64): the other PD's memory is never read through a plain
//! Rust reference, and atomic loads are allowed on read-only memory (the
//! clients' mapping) for types no larger than the largest native atomic.
//!
//! # Readers must not trust the table
//!
//! The table is another PD's memory. A reader gives up on an entry after
//! [`READ_ATTEMPTS`] inconsistent reads (a writer that died mid-write leaves
//! an odd counter forever) and treats it as absent; it ignores entries with
//! an unknown state or a MAC that is not a unicast address. A miss is
//! always safe: the client then asks arpd (`arpd_api::Arpd::resolve`),
//! which answers from its own private state.
#![no_std]

#[cfg(test)]
extern crate std;

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

pub use net_packet::{EthernetAddress, Ipv4Address};

/// Bytes of the region.
pub const TABLE_BYTES: usize = 4096;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 64;
/// Bytes of one entry.
pub const ENTRY_BYTES: usize = 32;
/// Entries in the table.
pub const CAPACITY: usize = (TABLE_BYTES - HEADER_BYTES) / ENTRY_BYTES;
/// First word of an initialised table: `"ARPT"`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"ARPT");
/// Layout version; bumped with any change to the layout above.
pub const VERSION: u32 = 1;
/// Reads of one entry a reader tries before treating it as absent.
pub const READ_ATTEMPTS: usize = 8;

/// What a published translation may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// Confirmed by the neighbour recently: use it.
    Reachable = 1,
    /// Older, and arpd is asking the neighbour again (a client asked for it):
    /// use it meanwhile.
    Probing = 2,
    /// Not confirmed for a while: ask arpd (`arpd_api::Arpd::resolve`) before
    /// using it; arpd answers at once and re-validates it.
    Stale = 3,
}

impl State {
    /// The state stored as `word`; `None` for empty (0) or unknown values.
    pub fn from_word(word: u32) -> Option<State> {
        match word {
            1 => Some(State::Reachable),
            2 => Some(State::Probing),
            3 => Some(State::Stale),
            _ => None,
        }
    }

    /// Whether a reader may send to the MAC without asking arpd.
    pub fn is_usable(self) -> bool {
        matches!(self, State::Reachable | State::Probing)
    }
}

/// One published translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ip: Ipv4Address,
    pub mac: EthernetAddress,
    pub state: State,
    /// When the neighbour last proved the translation (an ARP packet from
    /// it), in the timer's nanoseconds since boot.
    pub confirmed_ns: u64,
}

/// The MAC in a word, first byte lowest.
fn mac_to_word(mac: EthernetAddress) -> u64 {
    let mut bytes = [0; 8];
    bytes[..6].copy_from_slice(&mac.0);
    u64::from_le_bytes(bytes)
}

/// The MAC in the low 48 bits of `word`.
fn mac_from_word(word: u64) -> EthernetAddress {
    let b = word.to_le_bytes();
    EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]])
}

#[repr(C)]
struct Header {
    magic: AtomicU32,
    version: AtomicU32,
    capacity: AtomicU32,
    entry_bytes: AtomicU32,
    _reserved: [AtomicU32; 12],
}

#[repr(C)]
struct Slot {
    seq: AtomicU32,
    state: AtomicU32,
    ip: AtomicU32,
    _reserved: AtomicU32,
    mac: AtomicU64,
    confirmed_ns: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            seq: AtomicU32::new(0),
            state: AtomicU32::new(0),
            ip: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
            mac: AtomicU64::new(0),
            confirmed_ns: AtomicU64::new(0),
        }
    }
}

/// The ARP table region, as shared memory: every field an atomic.
///
/// In a PD, [`Table::from_addr`] views the mapped region; on the host,
/// [`Table::new`] makes an empty one.
#[repr(C, align(64))]
pub struct Table {
    header: Header,
    slots: [Slot; CAPACITY],
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == HEADER_BYTES);
    assert!(core::mem::size_of::<Slot>() == ENTRY_BYTES);
    assert!(core::mem::size_of::<Table>() == TABLE_BYTES);
    assert!(core::mem::offset_of!(Table, slots) == HEADER_BYTES);
    assert!(core::mem::offset_of!(Slot, seq) == 0);
    assert!(core::mem::offset_of!(Slot, state) == 4);
    assert!(core::mem::offset_of!(Slot, ip) == 8);
    assert!(core::mem::offset_of!(Slot, mac) == 16);
    assert!(core::mem::offset_of!(Slot, confirmed_ns) == 24);
};

impl Table {
    /// An all-zero (empty, uninitialised) table.
    pub const fn new() -> Table {
        Table {
            header: Header {
                magic: AtomicU32::new(0),
                version: AtomicU32::new(0),
                capacity: AtomicU32::new(0),
                entry_bytes: AtomicU32::new(0),
                _reserved: [const { AtomicU32::new(0) }; 12],
            },
            slots: [const { Slot::new() }; CAPACITY],
        }
    }

    /// The table in the region mapped at `addr`.
    ///
    /// # Safety
    ///
    /// `addr` must be 64-byte aligned and [`TABLE_BYTES`] bytes there must
    /// be mapped (read-only suffices for a [`TableReader`]; a
    /// [`TableWriter`] needs read-write) for the rest of the program, and
    /// accessed in this address space only through this type. Another
    /// address space may write any bytes at any time: every field is an
    /// atomic, so that is not undefined behaviour here, only wrong data,
    /// which readers check.
    pub unsafe fn from_addr(addr: usize) -> &'static Table {
        // SAFETY: the caller guarantees alignment, size and lifetime; every
        // bit pattern is a valid `Table` (atomics of plain integers).
        unsafe { &*(addr as *const Table) }
    }

    /// Whether the header says arpd initialised this layout.
    pub fn is_initialised(&self) -> bool {
        let h = &self.header;
        h.magic.load(Ordering::Acquire) == MAGIC
            && h.version.load(Ordering::Relaxed) == VERSION
            && h.capacity.load(Ordering::Relaxed) == CAPACITY as u32
            && h.entry_bytes.load(Ordering::Relaxed) == ENTRY_BYTES as u32
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

/// Why an entry could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// No entry with that index.
    OutOfRange,
    /// [`READ_ATTEMPTS`] reads found the entry being written.
    Busy,
    /// A consistent read found an unknown state or a MAC that is not
    /// unicast.
    Invalid,
}

/// A reader's view of the table: any network PD, including arpd.
#[derive(Clone, Copy)]
pub struct TableReader<'a> {
    table: &'a Table,
}

impl<'a> TableReader<'a> {
    pub fn new(table: &'a Table) -> Self {
        TableReader { table }
    }

    /// Whether arpd has initialised the table (its header is this layout).
    pub fn is_initialised(&self) -> bool {
        self.table.is_initialised()
    }

    /// The MAC of `ip`, if the table has a usable ([`State::is_usable`])
    /// translation for it. `None` means "ask arpd", never "unreachable".
    pub fn lookup(&self, ip: Ipv4Address) -> Option<[u8; 6]> {
        self.lookup_entry(ip).filter(|entry| entry.state.is_usable()).map(|entry| entry.mac.0)
    }

    /// The entry for `ip` in any state, read consistently.
    pub fn lookup_entry(&self, ip: Ipv4Address) -> Option<Entry> {
        let wanted = ip.to_u32();
        (0..CAPACITY).find_map(|index| {
            // A cheap look first: most slots hold other addresses. A slot
            // being rewritten to `ip` right now is missed as if the lookup
            // had come a moment earlier.
            if self.table.slots[index].ip.load(Ordering::Relaxed) != wanted {
                return None;
            }
            match self.read(index) {
                Ok(Some(entry)) if entry.ip == ip => Some(entry),
                _ => None,
            }
        })
    }

    /// A consistent copy of entry `index` (R1–R5 in the crate docs):
    /// `Ok(None)` if it is empty.
    pub fn read(&self, index: usize) -> Result<Option<Entry>, ReadError> {
        let slot = self.table.slots.get(index).ok_or(ReadError::OutOfRange)?;
        for _ in 0..READ_ATTEMPTS {
            let before = slot.seq.load(Ordering::Acquire); // R1
            if before & 1 != 0 {
                core::hint::spin_loop();
                continue;
            }
            let state = slot.state.load(Ordering::Relaxed); // R2
            let ip = slot.ip.load(Ordering::Relaxed);
            let mac = slot.mac.load(Ordering::Relaxed);
            let confirmed_ns = slot.confirmed_ns.load(Ordering::Relaxed);
            fence(Ordering::Acquire); // R3
            if slot.seq.load(Ordering::Relaxed) != before {
                // R4, R5
                core::hint::spin_loop();
                continue;
            }
            if state == 0 {
                return Ok(None);
            }
            let state = State::from_word(state).ok_or(ReadError::Invalid)?;
            let mac = mac_from_word(mac);
            if !mac.is_unicast() {
                return Err(ReadError::Invalid);
            }
            return Ok(Some(Entry { ip: Ipv4Address::from_u32(ip), mac, state, confirmed_ns }));
        }
        Err(ReadError::Busy)
    }
}

/// arpd's handle on the table: the only writer.
pub struct TableWriter<'a> {
    table: &'a Table,
    /// Each entry's counter, even; the authoritative copy (the region's is
    /// only written).
    seqs: [u32; CAPACITY],
}

impl<'a> TableWriter<'a> {
    /// Takes over the table: clears every entry and writes the header.
    /// Counters carry on from the region's (arpd may have restarted while
    /// clients held old values).
    pub fn new(table: &'a Table) -> Self {
        let mut writer = TableWriter {
            table,
            // An odd counter (a write cut short) becomes the next write's
            // W1 value, so readers keep seeing it as being written.
            seqs: core::array::from_fn(|i| table.slots[i].seq.load(Ordering::Relaxed) & !1),
        };
        for index in 0..CAPACITY {
            writer.write(index, 0, Ipv4Address::UNSPECIFIED, EthernetAddress::ZERO, 0);
        }
        let h = &table.header;
        h.version.store(VERSION, Ordering::Relaxed);
        h.capacity.store(CAPACITY as u32, Ordering::Relaxed);
        h.entry_bytes.store(ENTRY_BYTES as u32, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        writer
    }

    /// Publishes `entry` in slot `index`; `false` if there is no such slot.
    pub fn publish(&mut self, index: usize, entry: &Entry) -> bool {
        self.write(index, entry.state as u32, entry.ip, entry.mac, entry.confirmed_ns)
    }

    /// Empties slot `index`; `false` if there is no such slot.
    pub fn clear(&mut self, index: usize) -> bool {
        self.write(index, 0, Ipv4Address::UNSPECIFIED, EthernetAddress::ZERO, 0)
    }

    /// A reader of the same table (arpd's own checks, tests).
    pub fn reader(&self) -> TableReader<'a> {
        TableReader::new(self.table)
    }

    /// W1–W4 of the crate docs.
    fn write(&mut self, index: usize, state: u32, ip: Ipv4Address, mac: EthernetAddress, confirmed_ns: u64) -> bool {
        let (Some(slot), Some(seq)) = (self.table.slots.get(index), self.seqs.get_mut(index)) else {
            return false;
        };
        slot.seq.store(seq.wrapping_add(1), Ordering::Relaxed); // W1
        fence(Ordering::Release); // W2
        slot.state.store(state, Ordering::Relaxed); // W3
        slot.ip.store(ip.to_u32(), Ordering::Relaxed);
        slot._reserved.store(0, Ordering::Relaxed);
        slot.mac.store(mac_to_word(mac), Ordering::Relaxed);
        slot.confirmed_ns.store(confirmed_ns, Ordering::Relaxed);
        *seq = seq.wrapping_add(2);
        slot.seq.store(*seq, Ordering::Release); // W4
        true
    }
}

#[cfg(test)]
mod tests;
