//! The boot specification: the contract between the host-side system builder
//! and the root task (initialiser and monitor).
//!
//! The builder does all the thinking: it lays out every kernel object, every
//! capability, every mapping and every byte of every PD image, and writes the
//! result here. The initialiser only executes it, in order, so that what the
//! builder's report says is exactly what the running system holds. This is the
//! capDL idea in miniature.
//!
//! The spec travels inside the root task image (seL4 on x86 loads exactly one
//! boot module): the builder appends one extra loadable segment holding
//! [`ImageHeader`], the postcard-encoded [`Spec`] and a data blob with the PD
//! images, and patches the root task's [`SPEC_LOCATION_SYMBOL`] to point at it.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "spec")]
extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(feature = "spec")]
pub mod rights;
#[cfg(feature = "spec")]
mod spec;
pub mod untyped;

#[cfg(feature = "spec")]
pub use spec::*;

/// Magic number at the start of the embedded spec segment.
pub const MAGIC: [u8; 8] = *b"SEL4SYS\0";
/// Bumped whenever the encoding of [`Spec`] changes.
pub const VERSION: u32 = 3;

/// Symbol in the root task: `[u64; 2]` = (vaddr, length) of the spec segment.
pub const SPEC_LOCATION_SYMBOL: &str = "__boot_spec_location";
/// Symbol in every PD: `[u8; PD_NAME_LEN]`, NUL-padded name of the PD.
pub const PD_NAME_SYMBOL: &str = "__microkit_pd_name";
/// Longest PD name, in bytes (as in Microkit).
pub const PD_NAME_LEN: usize = 64;
/// Symbol in every PD: `[u64; 4]` = masks of channel ids that may be
/// notified, protected-called, IRQ-acked, and child ids (see [`ChannelMasks`]).
pub const PD_CHANNELS_SYMBOL: &str = "__microkit_channels";

/// Channels by name: a program refers to a channel (or IRQ) by the name the
/// description gives its end (`<end pd="httpd" id="2" setvar_id="blk"/>`,
/// `<irq ... setvar_id="device"/>`). The runtime's `channel!` declares a
/// `u64` symbol `__microkit_id_<name>` whose placeholder says what the
/// program does with the channel ([`ChannelUse`]); the builder checks it
/// against the description (a name with no end, a name no program declares,
/// a call on an end that may not call, a channel used as an IRQ) and writes
/// the id over the placeholder.
pub mod channel_names {
    /// Prefix of the symbol of the channel named `name`.
    pub const SYMBOL_PREFIX: &str = "__microkit_id_";
    /// High bits of every placeholder: never a valid id (ids are < 64).
    pub const PLACEHOLDER: u64 = 0xC4A7_0000_0000_0000;
    /// Placeholder bit of a name the program can do without (the console's
    /// channel, an optional client): the builder accepts a description that
    /// does not name it and leaves the placeholder.
    pub const OPTIONAL: u64 = 0x100;
    /// What a program does with a named channel: the low bits of its
    /// placeholder.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u64)]
    pub enum ChannelUse {
        /// Notifies the other end and/or is notified by it.
        Notify = 1,
        /// Makes protected calls to the other end (which must accept them).
        Call = 2,
        /// Receives and acknowledges an interrupt (`<irq>` or a PCI device's).
        Irq = 3,
        /// Accepts protected calls from the other end.
        Serve = 4,
    }

    impl ChannelUse {
        /// The placeholder a program's symbol starts with.
        pub const fn placeholder(self, optional: bool) -> u64 {
            PLACEHOLDER | self as u64 | if optional { OPTIONAL } else { 0 }
        }

        /// The use a placeholder declares, and whether the name is optional;
        /// `None` if it is not one (for example an id the builder already
        /// wrote).
        pub fn from_placeholder(value: u64) -> Option<(ChannelUse, bool)> {
            if value & !(0xff | OPTIONAL) != PLACEHOLDER {
                return None;
            }
            let usage = match value & 0xff {
                1 => ChannelUse::Notify,
                2 => ChannelUse::Call,
                3 => ChannelUse::Irq,
                4 => ChannelUse::Serve,
                _ => return None,
            };
            Some((usage, value & OPTIONAL != 0))
        }

        /// How a report or error names it.
        pub fn describe(self) -> &'static str {
            match self {
                ChannelUse::Notify => "notifies or is notified",
                ChannelUse::Call => "makes protected calls",
                ChannelUse::Irq => "receives an interrupt",
                ChannelUse::Serve => "accepts protected calls",
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn placeholders_round_trip_and_ids_are_not_placeholders() {
            for u in [ChannelUse::Notify, ChannelUse::Call, ChannelUse::Irq, ChannelUse::Serve] {
                for optional in [false, true] {
                    assert_eq!(ChannelUse::from_placeholder(u.placeholder(optional)), Some((u, optional)));
                }
            }
            for id in 0..64 {
                assert_eq!(ChannelUse::from_placeholder(id), None);
            }
            assert_eq!(ChannelUse::from_placeholder(PLACEHOLDER | 9), None);
        }
    }
}

/// Variables a program cannot run without: the runtime's
/// `setvar!(name, r | rw | paddr | size | sectors)` gives the variable `name` a
/// placeholder saying what it needs ([`SetvarNeed`]); the builder checks
/// that the PD's description sets it that way (a `<map>` with
/// `setvar_vaddr="name"` and the rights, a `<setvar symbol="name">` with
/// `region_paddr`, `region_size` or `sectors`, or a `setvar_size`) and fails the build
/// with the description's position otherwise. A plain `setvar!(name)` is
/// optional (its placeholder is `u64::MAX`).
pub mod setvar_needs {
    /// High bits of every placeholder: neither an address a PD maps nor a
    /// size or physical address.
    pub const PLACEHOLDER: u64 = 0xC4A8_0000_0000_0000;

    /// What a required variable must be set to.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u64)]
    pub enum SetvarNeed {
        /// The address of a mapping the PD reads.
        Read = 1,
        /// The address of a mapping the PD writes.
        Write = 2,
        /// A region's physical address (a driver's DMA).
        Paddr = 3,
        /// A region's size in bytes.
        Size = 4,
        /// A run of disk sectors (`sectors="FIRST-LAST"`): a block
        /// client's window. The variable is two `u64`s; the placeholder is
        /// the first.
        Sectors = 5,
        /// A number the description gives (`value="N"`): a setting such as
        /// a client's quota.
        Number = 6,
    }

    impl SetvarNeed {
        pub const fn placeholder(self) -> u64 {
            PLACEHOLDER | self as u64
        }

        /// The need a placeholder declares; `None` for any other value.
        pub fn from_placeholder(value: u64) -> Option<SetvarNeed> {
            if value & !0xff != PLACEHOLDER {
                return None;
            }
            Some(match value & 0xff {
                1 => SetvarNeed::Read,
                2 => SetvarNeed::Write,
                3 => SetvarNeed::Paddr,
                4 => SetvarNeed::Size,
                5 => SetvarNeed::Sectors,
                6 => SetvarNeed::Number,
                _ => return None,
            })
        }

        /// How an error names it.
        pub fn describe(self) -> &'static str {
            match self {
                SetvarNeed::Read => "the address of a mapping it reads",
                SetvarNeed::Write => "the address of a mapping it writes",
                SetvarNeed::Paddr => "a region's physical address",
                SetvarNeed::Size => "a region's size",
                SetvarNeed::Sectors => "a run of disk sectors",
                SetvarNeed::Number => "a number",
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn placeholders_round_trip_and_real_values_are_not_placeholders() {
            for n in [
                SetvarNeed::Read,
                SetvarNeed::Write,
                SetvarNeed::Paddr,
                SetvarNeed::Size,
                SetvarNeed::Sectors,
                SetvarNeed::Number,
            ] {
                assert_eq!(SetvarNeed::from_placeholder(n.placeholder()), Some(n));
            }
            for v in [0, 0x4000_0000, 0x7fff_ffff_f000, u64::MAX, PLACEHOLDER | 9] {
                assert_eq!(SetvarNeed::from_placeholder(v), None);
            }
        }
    }
}

/// Symbol in a parent PD: `[u64; badge::MAX_CHILD_ID + 1]`, the entry point
/// of each child by id (for restarting a child after a fault).
pub const PD_CHILD_ENTRIES_SYMBOL: &str = "__microkit_child_entries";

/// Fixed places in every PD's address space.
pub mod layout {
    /// The PD's IPC buffer (one page).
    pub const IPC_BUFFER_VADDR: u64 = 0x7fff_ffe0_0000;
    /// Top of the PD's stack; the page below the stack stays unmapped so
    /// that an overflow faults instead of corrupting memory.
    pub const STACK_TOP: u64 = 0x7fff_ff80_0000;
}

/// Where each capability sits in a PD's own CSpace. Shared by the builder,
/// which puts them there, and the PD runtime, which invokes them.
pub mod cspace {
    /// A PD's CNode has 2^RADIX_BITS slots.
    pub const RADIX_BITS: u8 = 9;
    /// The guard makes every 64-bit CPtr resolve in a single-level CSpace.
    pub const GUARD_SIZE: u8 = 64 - RADIX_BITS;
    /// What the PD waits on: its endpoint if it accepts protected calls or
    /// has children (notification bound to the TCB), else its notification.
    pub const INPUT: u64 = 1;
    /// Badged endpoint of its fault handler (monitor, or parent PD); the
    /// kernel looks this CPtr up in the PD's own CSpace on a fault.
    pub const FAULT_EP: u64 = 2;
    /// The PD's own notification object.
    pub const NOTIFICATION: u64 = 3;
    // Slot 4 held the PD's own TCB, which no PD uses: it stays empty (a PD
    // that could suspend, reconfigure or rewrite its own thread holds more
    // than its job needs). The monitor holds every PD's TCB; a parent holds
    // its children's at `CHILD_TCB_BASE`.
    /// Notification cap for channel `id`: `OUTPUT_NOTIFICATION_BASE + id`.
    pub const OUTPUT_NOTIFICATION_BASE: u64 = 64;
    /// Endpoint cap for a protected call on channel `id`.
    pub const PROTECTED_CALL_BASE: u64 = 128;
    /// IRQ handler cap for irq `id` (irq ids share the channel id space).
    pub const IRQ_BASE: u64 = 192;
    /// IO port range cap for ioport `id`.
    pub const IOPORT_BASE: u64 = 256;
    /// TCB cap of child PD `id`.
    pub const CHILD_TCB_BASE: u64 = 320;
    /// One past the last slot used.
    pub const END: u64 = 384;
}

/// How badges encode events. seL4 5.0's `CNode_Mint` carries a 28-bit badge
/// (`seL4_CapData` Badge field), so Microkit's 63 channel ids (bit 63 for
/// protected calls) do not fit: here ids are 0..=MAX_CHANNEL_ID, bit 26 marks
/// a fault from a child PD and bit 27 marks a protected call.
pub mod badge {
    /// Highest channel or irq id a PD may use.
    pub const MAX_CHANNEL_ID: u64 = 25;
    /// Highest child PD id.
    pub const MAX_CHILD_ID: u64 = 25;
    /// Set in the badge of an endpoint cap used for a child's faults.
    pub const CHILD_FAULT: u64 = 1 << 26;
    /// Set in the badge of an endpoint cap used for protected calls.
    pub const PROTECTED_CALL: u64 = 1 << 27;
    /// Low bits of a protected-call or child-fault badge: the id.
    pub const ID_MASK: u64 = 0xff;
    /// Largest badge `CNode_Mint` accepts on this kernel.
    pub const MAX: u64 = (1 << 28) - 1;
}

/// Syscall number (in `rdx`) that the PD runtime's panic handler uses: the
/// kernel does not know it, so it sends the monitor an UnknownSyscall fault,
/// which the monitor reports as a panic of that PD.
pub const PANIC_SYSCALL: u64 = 0x0050_414e_4943; // "PANIC"

/// What passes between the monitor and a PD besides the kernel's fault
/// messages. Every top-level PD's fault endpoint capability (slot
/// [`cspace::FAULT_EP`]) is the monitor's endpoint, badged with the PD's
/// index + 1; the kernel sends a PD's faults there, and the PD itself may
/// send on it (the capability has Write and Grant, which the kernel's
/// fault messages need). Labels of the kernel's fault messages are small
/// (`seL4_Fault_*`, below 8 on seL4 5.0 x86_64); the monitor's own labels
/// are at the top of the 20-bit label space, and anything else a PD sends
/// there is treated as a fault (reported, the PD stopped).
///
/// # Restart
///
/// The monitor restarts a PD (policy `on_fault`) with its memory reset to
/// the image ([`PdInfo::reset_frames`](crate::PdInfo)), `rip` at its entry,
/// `rsp` at its stack top and `rdi` = the number of restarts so far (0
/// at boot, when every register is 0). The runtime then:
///
/// 1. answers the protected call its predecessor was serving, if any,
///    with [`LABEL_SERVER_RESTARTED`]: on the non-MCS kernel a faulted
///    server's TCB keeps the caller's reply capability in its caller slot
///    (`suspend` and `restart` do not touch it, seL4 5.0
///    `src/kernel/thread.c`), but its first `seL4_Recv` would delete it
///    (`handleRecv` calls `deleteCallerCap`, `src/api/syscall.c`), and a
///    deleted reply capability never wakes its caller
///    (`finaliseCap` of a reply cap does nothing, `src/object/objecttype.c`):
///    the caller would wait forever. Whether a call is unanswered is the
///    word at [`IN_CALL_USER_DATA`] of the IPC buffer (`userData`, which
///    the kernel never touches and a restart does not reset): 1 from the
///    receipt of a call until its reply is sent;
/// 2. runs `init`;
/// 3. sends the monitor [`LABEL_RESTARTED`] (no registers; `seL4_Send`)
///    and enters its event loop: the monitor logs that the PD is back and
///    how long after its fault.
///
/// # Stopped for good
///
/// A PD that accepts protected calls ([`Spec::accepts_calls`](crate::Spec))
/// and is stopped for good (policy `stop`, or a `restart-backoff` streak
/// given up) would leave its callers blocked on its endpoint forever: no
/// one else may receive there. So the monitor resets it as for a restart
/// and starts it with `rdi` = [`STOPPED_FOR_GOOD`]; the runtime then runs
/// no `init` and none of the PD's code, only a loop that answers every
/// protected call (the one its predecessor died in first) with
/// [`LABEL_SERVER_STOPPED`] and ignores every other event. It never tells
/// the monitor it serves.
pub mod monitor_protocol {
    /// Label of the reply a restarted server sends to the caller its
    /// predecessor was serving: the call's effect is unknown (it may have
    /// happened or not), and the server is back. Every protocol's client
    /// turns it into an error of its own.
    pub const LABEL_SERVER_RESTARTED: u64 = 0xF_FFF0;
    /// Label of every reply of a server stopped for good ("Stopped for
    /// good" above): the call did not take effect, and no later call will.
    /// Every protocol's client turns it into an error of its own.
    pub const LABEL_SERVER_STOPPED: u64 = 0xF_FFF3;
    /// `rdi` of a PD started only to answer its callers
    /// [`LABEL_SERVER_STOPPED`]; any other value is its number of restarts.
    pub const STOPPED_FOR_GOOD: u64 = u64::MAX;
    /// Label of a restarted PD's message to the monitor: its `init` is
    /// done and it is in its event loop.
    pub const LABEL_RESTARTED: u64 = 0xF_FFF1;
    /// Label of a fault-injection request (only from a PD the spec marks
    /// [`fault_injector`](crate::PdInfo)): the registers hold the name of
    /// the PD to fault, 8 bytes a register, the first byte lowest,
    /// NUL-padded (at most [`crate::PD_NAME_LEN`] bytes: 8 registers). The monitor makes that PD take a genuine VM fault: it
    /// points its instruction pointer at [`INJECTED_FAULT_IP`] (never
    /// mapped) and resumes it, and the fault goes the normal way.
    pub const LABEL_INJECT_FAULT: u64 = 0xF_FFF2;
    /// Where an injected fault's instruction pointer points: in the first
    /// page, which the builder never maps.
    pub const INJECTED_FAULT_IP: u64 = 0xdead;
    /// Offset in the IPC buffer of the word that says whether the PD holds
    /// an unanswered protected call (`seL4_IPCBuffer.userData`).
    pub const IN_CALL_USER_DATA: usize = 8 + 8 * 120;

    /// Registers of a name in [`LABEL_INJECT_FAULT`].
    pub const NAME_WORDS: usize = crate::PD_NAME_LEN / 8;

    /// `name` as the registers of [`LABEL_INJECT_FAULT`] (truncated to
    /// [`crate::PD_NAME_LEN`] bytes).
    pub fn name_to_words(name: &str) -> [u64; NAME_WORDS] {
        let mut words = [0u64; NAME_WORDS];
        for (i, b) in name.bytes().take(crate::PD_NAME_LEN).enumerate() {
            words[i / 8] |= u64::from(b) << (8 * (i % 8));
        }
        words
    }

    /// Whether the registers `words` of [`LABEL_INJECT_FAULT`] name `name`.
    pub fn words_name(words: &[u64], name: &str) -> bool {
        name.len() <= crate::PD_NAME_LEN && words.len() == NAME_WORDS && words == name_to_words(name)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_round_trip_through_registers() {
            let words = name_to_words("arpd");
            assert_eq!(words[0], u64::from_le_bytes(*b"arpd\0\0\0\0"));
            assert!(words[1..].iter().all(|&w| w == 0));
            assert!(words_name(&words, "arpd"));
            assert!(!words_name(&words, "arp"));
            assert!(!words_name(&words, "arpd2"));
            let long = "virtio-net-driver-with-a-long-name";
            assert!(words_name(&name_to_words(long), long));
            assert!(!words_name(&words[..7], "arpd"));
        }
    }
}

/// Index of one kernel object instance in [`Spec::objects`] order, counting
/// every instance of a run separately.
pub type ObjId = u32;

#[cfg(all(test, feature = "spec"))]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let h = ImageHeader { magic: MAGIC, version: VERSION, spec_len: 77, data_offset: 4096, data_len: 12345 };
        assert_eq!(ImageHeader::from_bytes(&h.to_bytes()), Ok(h));
        let mut bad = h.to_bytes();
        bad[0] = b'X';
        assert_eq!(ImageHeader::from_bytes(&bad), Err(SpecError::BadMagic));
        let mut old = h.to_bytes();
        old[8] = 99;
        assert_eq!(ImageHeader::from_bytes(&old), Err(SpecError::WrongVersion(99)));
        assert_eq!(ImageHeader::from_bytes(&h.to_bytes()[..10]), Err(SpecError::Truncated));
    }

    #[test]
    fn spec_round_trips_and_locates_runs() {
        let spec = Spec {
            objects: vec![
                Object { kind: ObjectKind::Tcb, count: 1 },
                Object { kind: ObjectKind::Frame { size_bits: 12, paddr: None }, count: 3 },
                Object { kind: ObjectKind::CNode { radix_bits: 9 }, count: 1 },
            ],
            pds: vec![PdInfo { name: "a".into(), parent: None, ..Default::default() }],
            ..Default::default()
        };
        let bytes = spec.encode();
        assert_eq!(Spec::decode(&bytes).unwrap(), spec);
        assert_eq!(spec.instance_count(), 5);
        assert_eq!(spec.locate(0).unwrap().0.kind, ObjectKind::Tcb);
        assert_eq!(spec.locate(3).unwrap().1, 2);
        assert_eq!(spec.locate(4).unwrap().0.kind, ObjectKind::CNode { radix_bits: 9 });
        assert!(spec.locate(5).is_none());
        assert_eq!(Spec::decode(&bytes[..bytes.len() - 1]), Err(SpecError::Decode));
    }

    /// Found by the `ipc` fuzz target: a decoded spec whose counts add up
    /// past `u32::MAX` overflowed (a panic in debug builds, a wrapped small
    /// count in release ones).
    #[test]
    fn counts_past_u32_saturate() {
        let spec = Spec {
            objects: vec![
                Object { kind: ObjectKind::Tcb, count: u32::MAX - 1 },
                Object { kind: ObjectKind::CNode { radix_bits: 9 }, count: 3 },
            ],
            ..Default::default()
        };
        let spec = Spec::decode(&spec.encode()).unwrap();
        assert_eq!(spec.instance_count(), u32::MAX);
        assert_eq!(spec.locate(u32::MAX - 2).unwrap().1, u32::MAX - 2);
        assert_eq!(spec.locate(u32::MAX - 1).unwrap(), (&spec.objects[1], 0));
    }

    /// Badges fit the kernel's mint field and CSpace slots its CNode:
    /// checked when the crate compiles.
    #[test]
    fn badges_fit_the_kernel_mint_field() {
        const {
            // The marker bits lie above the ids they are combined with, and
            // the largest badge fits.
            assert!(badge::MAX_CHANNEL_ID < badge::PROTECTED_CALL && badge::MAX_CHILD_ID < badge::CHILD_FAULT);
            assert!(badge::PROTECTED_CALL + badge::MAX_CHANNEL_ID <= badge::MAX);
            assert!(badge::CHILD_FAULT + badge::MAX_CHILD_ID <= badge::MAX);
            assert!((1u64 << badge::MAX_CHANNEL_ID) < badge::CHILD_FAULT);
            assert!(cspace::CHILD_TCB_BASE + badge::MAX_CHILD_ID < cspace::END);
            assert!(cspace::END <= 1 << cspace::RADIX_BITS);
        }
    }
}
