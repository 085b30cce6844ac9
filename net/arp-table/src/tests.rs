use super::*;
use lib_test_rng::Rng;
use std::boxed::Box;
use std::sync::atomic::AtomicBool;

const IP_A: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const IP_B: Ipv4Address = Ipv4Address::new(10, 0, 2, 3);
const MAC_A: EthernetAddress = EthernetAddress([0x52, 0x55, 0x0a, 0, 2, 2]);
const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0b]);

fn entry(ip: Ipv4Address, mac: EthernetAddress, state: State) -> Entry {
    Entry { ip, mac, state, confirmed_ns: 42 }
}

/// A region of raw bytes, as another PD's memory is.
#[repr(C, align(64))]
struct Raw([u8; TABLE_BYTES]);

fn raw_table(bytes: [u8; TABLE_BYTES]) -> (&'static Table, *mut u8) {
    let raw: &'static mut Raw = Box::leak(Box::new(Raw(bytes)));
    let ptr = raw.0.as_mut_ptr();
    // SAFETY: 64-byte aligned, TABLE_BYTES long, leaked (lives forever),
    // and the test touches the bytes only through the table or, while no
    // other thread runs, through `ptr`.
    (unsafe { Table::from_addr(ptr as usize) }, ptr)
}

/// Byte `at` of a raw region (single-threaded tests only).
fn byte(ptr: *mut u8, at: usize) -> u8 {
    assert!(at < TABLE_BYTES);
    // SAFETY: in bounds of the leaked region; no concurrent writer.
    unsafe { ptr.add(at).read_volatile() }
}

#[test]
fn region_is_the_size_net_config_maps() {
    assert_eq!(TABLE_BYTES as u64, net_config::ARP_TABLE_SIZE);
    assert_eq!(CAPACITY, 126);
    assert_eq!(net_config::ARP_TABLE_VADDR % 64, 0);
}

#[test]
fn layout_is_as_documented() {
    let (table, ptr) = raw_table([0; TABLE_BYTES]);
    let mut writer = TableWriter::new(table);
    assert_eq!((0..4).map(|i| byte(ptr, i)).collect::<std::vec::Vec<_>>(), b"ARPT");
    assert_eq!(byte(ptr, 4), VERSION as u8);
    assert_eq!(byte(ptr, 8), CAPACITY as u8);
    assert_eq!(byte(ptr, 12), ENTRY_BYTES as u8);
    assert!(writer.publish(3, &Entry { confirmed_ns: 0x0102_0304_0506_0708, ..entry(IP_A, MAC_A, State::Probing) }));
    let base = HEADER_BYTES + 3 * ENTRY_BYTES;
    let bytes: std::vec::Vec<u8> = (base..base + ENTRY_BYTES).map(|i| byte(ptr, i)).collect();
    // seq 4: the takeover's write (cleared) and this one, 2 each.
    assert_eq!(&bytes[0..4], &4u32.to_le_bytes());
    assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
    assert_eq!(&bytes[8..12], &[2, 2, 0, 10], "host order, little-endian");
    assert_eq!(&bytes[16..22], &MAC_A.0, "first byte lowest");
    assert_eq!(&bytes[22..24], &[0, 0]);
    assert_eq!(&bytes[24..32], &0x0102_0304_0506_0708u64.to_le_bytes());
}

#[test]
fn publish_lookup_clear() {
    let table = Table::new();
    let reader = TableReader::new(&table);
    assert!(!reader.is_initialised());
    assert_eq!(reader.lookup(IP_A), None, "an all-zero table is empty");
    let mut writer = TableWriter::new(&table);
    assert!(reader.is_initialised());
    writer.publish(0, &entry(IP_B, MAC_B, State::Reachable));
    writer.publish(CAPACITY - 1, &entry(IP_A, MAC_A, State::Reachable));
    assert_eq!(reader.lookup(IP_A), Some(MAC_A.0));
    assert_eq!(reader.lookup(IP_B), Some(MAC_B.0));
    assert_eq!(reader.lookup(Ipv4Address::new(10, 0, 2, 4)), None);
    assert_eq!(reader.read(CAPACITY - 1), Ok(Some(entry(IP_A, MAC_A, State::Reachable))));
    assert_eq!(reader.read(1), Ok(None));
    assert_eq!(reader.read(CAPACITY), Err(ReadError::OutOfRange));
    assert!(!writer.publish(CAPACITY, &entry(IP_A, MAC_A, State::Reachable)));

    writer.publish(CAPACITY - 1, &entry(IP_A, MAC_A, State::Probing));
    assert_eq!(reader.lookup(IP_A), Some(MAC_A.0), "probing entries are usable");
    writer.publish(CAPACITY - 1, &entry(IP_A, MAC_A, State::Stale));
    assert_eq!(reader.lookup(IP_A), None, "stale entries need arpd");
    assert_eq!(reader.lookup_entry(IP_A).map(|e| e.state), Some(State::Stale));
    writer.clear(CAPACITY - 1);
    assert_eq!(reader.lookup_entry(IP_A), None);
    assert_eq!(reader.lookup(IP_B), Some(MAC_B.0));
}

#[test]
fn a_new_writer_clears_the_table_and_carries_on_counters() {
    let table = Table::new();
    let mut first = TableWriter::new(&table);
    first.publish(5, &entry(IP_A, MAC_A, State::Reachable));
    let seq_before = table.slots[5].seq.load(Ordering::Relaxed);
    // arpd restarts.
    let second = TableWriter::new(&table);
    assert_eq!(second.reader().lookup(IP_A), None);
    let seq_after = table.slots[5].seq.load(Ordering::Relaxed);
    assert_eq!(seq_after, seq_before + 2, "counters only move forward");
    // A write cut short left an odd counter: the takeover completes it.
    table.slots[7].seq.store(9, Ordering::Relaxed);
    let third = TableWriter::new(&table);
    assert_eq!(table.slots[7].seq.load(Ordering::Relaxed), 10);
    assert_eq!(third.reader().read(7), Ok(None));
}

#[test]
fn an_entry_left_mid_write_is_absent_not_a_hang() {
    let table = Table::new();
    let mut writer = TableWriter::new(&table);
    writer.publish(2, &entry(IP_A, MAC_A, State::Reachable));
    table.slots[2].seq.fetch_add(1, Ordering::Relaxed); // a writer died at W1
    let reader = writer.reader();
    assert_eq!(reader.read(2), Err(ReadError::Busy));
    assert_eq!(reader.lookup(IP_A), None);
}

#[test]
fn invalid_entries_are_refused() {
    let table = Table::new();
    let mut writer = TableWriter::new(&table);
    writer.publish(0, &entry(IP_A, MAC_A, State::Reachable));
    table.slots[0].state.store(9, Ordering::Relaxed);
    assert_eq!(writer.reader().read(0), Err(ReadError::Invalid));
    assert_eq!(writer.reader().lookup(IP_A), None);
    for bad in [EthernetAddress::BROADCAST, EthernetAddress::ZERO, EthernetAddress([0x01, 0, 0x5e, 0, 0, 1])] {
        writer.publish(0, &entry(IP_A, bad, State::Reachable));
        assert_eq!(writer.reader().read(0), Err(ReadError::Invalid), "{bad:?}");
        assert_eq!(writer.reader().lookup(IP_A), None);
    }
}

#[test]
fn arbitrary_contents_never_panic_and_yield_only_unicast_macs() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..200 {
        let mut bytes = [0u8; TABLE_BYTES];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes());
        }
        // Make some slots look plausible: even counters, known states, and
        // addresses the lookups below ask for.
        for i in 0..CAPACITY {
            let base = HEADER_BYTES + i * ENTRY_BYTES;
            if rng.next().is_multiple_of(2) {
                bytes[base] &= !1;
            }
            if rng.next().is_multiple_of(2) {
                bytes[base + 4..base + 8].copy_from_slice(&((rng.next() % 5) as u32).to_le_bytes());
            }
            if rng.next().is_multiple_of(2) {
                bytes[base + 8..base + 12].copy_from_slice(&(0x0a00_0200 + (rng.next() % 8) as u32).to_le_bytes());
            }
        }
        let (table, _) = raw_table(bytes);
        let reader = TableReader::new(table);
        for host in 0..8 {
            let ip = Ipv4Address::from_u32(0x0a00_0200 + host);
            if let Some(mac) = reader.lookup(ip) {
                assert!(EthernetAddress(mac).is_unicast(), "round {round}");
            }
            if let Some(entry) = reader.lookup_entry(ip) {
                assert_eq!(entry.ip, ip);
            }
        }
        for i in 0..CAPACITY {
            if let Ok(Some(entry)) = reader.read(i) {
                assert!(entry.mac.is_unicast());
            }
        }
    }
}

/// The MAC the torture writer pairs with `ip` in `round`: a torn read
/// (fields of two writes) breaks the pairing.
fn torture_mac(ip: Ipv4Address, round: u64) -> EthernetAddress {
    let r = (round as u32).to_be_bytes();
    EthernetAddress([0x02, ip.0[3] ^ ip.0[2], r[0], r[1], r[2], r[3]])
}

#[test]
fn concurrent_reader_never_sees_a_torn_entry() {
    const SLOTS: usize = 4;
    const ROUNDS: u64 = 200_000;
    let table = Table::new();
    let mut writer = TableWriter::new(&table);
    let reader = writer.reader();
    let done = AtomicBool::new(false);
    let (consistent, found) = std::thread::scope(|s| {
        s.spawn(|| {
            for round in 1..=ROUNDS {
                let slot = (round as usize) % SLOTS;
                if round % 7 == 0 {
                    writer.clear(slot);
                    continue;
                }
                // Addresses move between values, so a mixed read shows.
                let ip = Ipv4Address::new(10, slot as u8, (round >> 8) as u8, round as u8);
                let state = if round % 3 == 0 { State::Stale } else { State::Reachable };
                writer.publish(slot, &Entry { ip, mac: torture_mac(ip, round), state, confirmed_ns: round });
            }
            done.store(true, Ordering::Release);
        });
        let reader_thread = s.spawn(|| {
            let (mut consistent, mut found) = (0u64, 0u64);
            while !done.load(Ordering::Acquire) {
                for slot in 0..SLOTS {
                    match reader.read(slot) {
                        Ok(Some(entry)) => {
                            assert_eq!(entry.ip.0[1] as usize, slot, "{entry:?}");
                            assert_eq!(entry.mac, torture_mac(entry.ip, entry.confirmed_ns), "torn: {entry:?}");
                            let stale = entry.confirmed_ns % 3 == 0;
                            assert_eq!(entry.state == State::Stale, stale, "torn state: {entry:?}");
                            consistent += 1;
                            // A lookup of what was just seen finds it, a newer
                            // write of the slot, or nothing; never a wrong MAC.
                            if let Some(mac) = reader.lookup(entry.ip) {
                                let mac = EthernetAddress(mac);
                                assert_eq!(mac.0[1], entry.ip.0[3] ^ entry.ip.0[2]);
                                found += 1;
                            }
                        }
                        Ok(None) | Err(ReadError::Busy) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            (consistent, found)
        });
        reader_thread.join().unwrap()
    });
    assert!(consistent > 0, "the reader saw entries");
    std::println!("{consistent} consistent reads, {found} lookups found");
}
