//! The demultiplexer's policy (`net-filter`, which `net-mux-core` applies
//! to every frame and call): filters installed and removed at run time
//! from words a PD sends (`Filter::from_words`, as `net-mux-api`'s
//! Install carries them), the table that decides each received frame's
//! receivers, and transmit validation of a copy of each frame a PD sends.
//!
//! Input: a sequence of operations by four PDs (0 has the copy privilege
//! and a broad grant, 1 takes unclaimed IPv4, 2 and 3 have narrow grants):
//! install a filter from three words, remove one, classify a frame, check
//! a frame for sending.
//!
//! Checks, against the rules `net_filter::table` and `net_filter::tx`
//! write down: an installed filter is consistent, inside its owner's grant,
//! copy only with the privilege, and no two exclusive filters overlap; a
//! refusal names the rule (and an overlap names an installed exclusive
//! filter that does overlap); only the owner removes a filter, and an id
//! is never valid again after removal; a frame's exclusive receiver owns a
//! matching exclusive filter (or is the unclaimed-IPv4 owner, for IPv4
//! that no exclusive filter claims), and never also gets a copy; a frame
//! allowed out has the PD's source MAC and IPv4 address, and its reverse
//! is claimed by one of the PD's exclusive filters, or is an answer to
//! unclaimed traffic from the PD allowed to send those.

#![no_main]

use fuzz::Input;
use libfuzzer_sys::fuzz_target;
use net_filter::{Filter, FilterError, FilterId, FilterKind, Grant, Owner, Table, TxHeaders, TxPolicy, TxRefused};
use net_packet::{classify, classify_headers, EthernetAddress, Ipv4Address};

const PDS: usize = 4;
const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const ADDRESSES: [Ipv4Address; 1] = [Ipv4Address::new(10, 0, 2, 15)];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let grants: [Vec<Filter>; PDS] = [
        vec![Filter::ANY],
        vec![],
        vec![Filter::parse("tcp dst 80").unwrap(), Filter::parse("tcp dst 8080-8089").unwrap()],
        vec![Filter::parse("udp dst 5353 from 10.0.0.0/8").unwrap(), Filter::parse("arp").unwrap()],
    ];
    let grant = |pd: usize| Grant { filters: &grants[pd], may_copy: pd == 0 };
    let stray = Owner::new(1).unwrap();
    let mut table = Table::<16>::new(Some(stray));
    let mut installed: Vec<(FilterId, Owner, Filter, FilterKind)> = Vec::new();
    let mut removed: Vec<FilterId> = Vec::new();
    let mut policies: Vec<TxPolicy<'_>> = (0..PDS)
        .map(|pd| {
            let policy = TxPolicy::new(Owner::new(pd).unwrap(), MAC, &ADDRESSES);
            if pd == 1 {
                policy.answering_unclaimed()
            } else {
                policy
            }
        })
        .collect();
    let mut turns = 0;
    while !input.is_empty() && turns < 64 {
        turns += 1;
        let pd = usize::from(input.u8()) % PDS;
        let owner = Owner::new(pd).unwrap();
        match input.u8() % 4 {
            0 => {
                let words = [input.u64(), input.u64(), input.u64()];
                let kind = if input.bool() { FilterKind::Copy } else { FilterKind::Exclusive };
                let Some(filter) = Filter::from_words(words) else { continue };
                match table.install(owner, &grant(pd), filter, kind) {
                    Ok(id) => {
                        assert!(filter.is_consistent());
                        assert!(grant(pd).permits(&filter), "installed inside the grant");
                        assert!(kind == FilterKind::Exclusive || pd == 0, "copy only with the privilege");
                        if kind == FilterKind::Exclusive {
                            assert!(
                                !installed
                                    .iter()
                                    .any(|(_, _, f, k)| *k == FilterKind::Exclusive && f.overlaps(&filter)),
                                "two exclusive filters overlap"
                            );
                        }
                        assert!(!installed.iter().any(|(i, ..)| *i == id), "an id in use given twice");
                        assert!(!removed.contains(&id), "a removed id given again");
                        installed.push((id, owner, filter, kind));
                    }
                    Err(FilterError::Inconsistent) => assert!(!filter.is_consistent()),
                    Err(FilterError::CopyNotPrivileged) => assert!(kind == FilterKind::Copy && pd != 0),
                    Err(FilterError::OutOfGrant) => assert!(!grant(pd).permits(&filter)),
                    Err(FilterError::Overlaps { with }) => {
                        let other =
                            installed.iter().find(|(i, ..)| *i == with).expect("the overlap names an installed filter");
                        assert!(other.3 == FilterKind::Exclusive && other.2.overlaps(&filter));
                    }
                    Err(FilterError::Full) => assert_eq!(installed.len(), 16),
                    Err(e) => panic!("install refused with {e:?}"),
                }
            }
            1 => {
                let id = match installed.get(usize::from(input.u8()) % (installed.len() + 1)) {
                    Some((id, ..)) if input.bool() => *id,
                    _ => FilterId::from_raw(input.u32()),
                };
                let entry = installed.iter().position(|(i, ..)| *i == id);
                match (table.remove(owner, id), entry) {
                    (Ok(()), Some(at)) => {
                        assert_eq!(installed[at].1, owner, "only the owner removes");
                        installed.remove(at);
                        removed.push(id);
                    }
                    (Err(FilterError::NotOwner), Some(at)) => assert_ne!(installed[at].1, owner),
                    (Err(FilterError::NoSuchFilter), None) => {}
                    (result, entry) => panic!("remove {id:?} by {pd}: {result:?}, installed {entry:?}"),
                }
            }
            2 => {
                let frame = input.piece();
                let Ok(decision) = table.classify_frame(frame) else {
                    assert!(classify(frame).is_err());
                    continue;
                };
                let parsed = classify(frame).unwrap();
                let first = installed
                    .iter()
                    .filter(|(_, _, f, k)| *k == FilterKind::Exclusive && f.matches(&parsed))
                    .collect::<Vec<_>>();
                assert!(first.len() <= 1, "exclusive filters never overlap, so at most one matches");
                match (decision.exclusive, first.first()) {
                    (Some(o), Some((id, owner, ..))) => {
                        assert_eq!((o, decision.filter), (*owner, Some(*id)));
                    }
                    (Some(o), None) => assert!(o == stray && parsed.ipv4().is_some() && decision.filter.is_none()),
                    (None, None) => assert!(parsed.ipv4().is_none()),
                    (None, Some(_)) => panic!("a claimed frame went to no one"),
                }
                for o in decision.copies.iter() {
                    assert_ne!(Some(o), decision.exclusive, "the receiver gets no second copy");
                    assert!(installed
                        .iter()
                        .any(|(_, owner, f, k)| *owner == o && *k == FilterKind::Copy && f.matches(&parsed)));
                }
            }
            _ => {
                let headers = TxHeaders::<128>::copy_from(input.piece());
                let verdict = policies[pd].check(&table, &headers);
                let Ok(()) = verdict else {
                    if let Err(TxRefused::Malformed(reason)) = verdict {
                        assert_eq!(classify_headers(headers.as_bytes()), Err(reason));
                    }
                    continue;
                };
                let parsed = classify_headers(headers.as_bytes()).expect("an allowed frame parses");
                assert_eq!(parsed.src_mac, MAC, "sent from the PD's MAC");
                if let Some(ip) = parsed.ipv4() {
                    assert!(ADDRESSES.contains(&ip.src), "sent from the PD's address");
                }
                let reply = parsed.reversed();
                let owns = installed
                    .iter()
                    .any(|(_, o, f, k)| *o == owner && *k == FilterKind::Exclusive && f.matches(&reply));
                let unclaimed = !installed.iter().any(|(_, _, f, k)| *k == FilterKind::Exclusive && f.matches(&reply));
                assert!(owns || (pd == 1 && unclaimed), "pd {pd} sent traffic it could not have received");
            }
        }
    }
    let counters =
        policies.iter().map(|p| p.counters().allowed + p.counters().refused.iter().sum::<u64>()).sum::<u64>();
    assert!(counters <= turns as u64);
});
