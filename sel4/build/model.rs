//! How each XML parameter type travels in a message: its size in the packed
//! message, and its Rust type. This mirrors the type table of the kernel's
//! `syscall_stub_gen.py` (which also has to be told every type's size).

use crate::xml::Struct;

pub const WORD_BITS: u32 = 64;

#[derive(Clone)]
pub enum Kind {
    /// A capability: travels in the extra caps, not in the message words.
    Cap,
    /// An integer, bool or bitfield word: `bits` wide in the message.
    Scalar { bits: u32, rust: &'static str, to_word: &'static str },
    /// A word-array struct passed by reference (`seL4_UserContext`).
    Struct { rust: String, members: Vec<String> },
}

/// Capability types known to libsel4 for x86_64 (syscall_stub_gen.py's
/// `CapType`s); interface names of the XML are caps as well.
const CAP_TYPES: &[&str] = &[
    "seL4_CPtr",
    "seL4_CNode",
    "seL4_IRQHandler",
    "seL4_IRQControl",
    "seL4_TCB",
    "seL4_Untyped",
    "seL4_DomainSet",
    "seL4_X86_IOPort",
    "seL4_X86_ASIDControl",
    "seL4_X86_ASIDPool",
    "seL4_X86_IOSpace",
    "seL4_X86_Page",
    "seL4_X64_PML4",
    "seL4_X86_PDPT",
    "seL4_X86_PageDirectory",
    "seL4_X86_PageTable",
    "seL4_X86_IOPageTable",
    "seL4_X86_VCPU",
    "seL4_X86_EPTPML4",
    "seL4_X86_EPTPDPT",
    "seL4_X86_EPTPD",
    "seL4_X86_EPTPT",
];

pub fn kind(ty: &str, structs: &[Struct]) -> Kind {
    let scalar = |bits, rust, to_word| Kind::Scalar { bits, rust, to_word };
    match ty {
        "seL4_Word" | "seL4_X86_VMAttributes" => scalar(64, "Word", "{}"),
        "seL4_Uint64" => scalar(64, "u64", "{}"),
        "long" => scalar(64, "i64", "{} as Word"),
        "int" => scalar(32, "i32", "{} as Word"),
        "seL4_Uint32" => scalar(32, "u32", "{} as Word"),
        "seL4_Uint16" => scalar(16, "u16", "{} as Word"),
        "seL4_Uint8" => scalar(8, "u8", "{} as Word"),
        "seL4_Bool" => scalar(1, "bool", "{} as Word"),
        "seL4_CapData_t" => scalar(64, "CapData", "{}.0"),
        "seL4_CapRights_t" => scalar(64, "CapRights", "{}.0"),
        "seL4_PrioProps_t" => scalar(64, "PrioProps", "{}.0"),
        t if CAP_TYPES.contains(&t) => Kind::Cap,
        t => match structs.iter().find(|s| s.name == t) {
            Some(s) => Kind::Struct { rust: crate::names::interface_type(t), members: s.members.clone() },
            None => panic!("unknown parameter type {t} in interface XML: add it to build/model.rs"),
        },
    }
}

impl Kind {
    pub fn size_bits(&self) -> u32 {
        match self {
            Kind::Cap => WORD_BITS,
            Kind::Scalar { bits, .. } => *bits,
            Kind::Struct { members, .. } => WORD_BITS * members.len() as u32,
        }
    }

    pub fn rust(&self) -> String {
        match self {
            Kind::Cap => "CPtr".into(),
            Kind::Scalar { rust, .. } => rust.to_string(),
            Kind::Struct { rust, .. } => rust.clone(),
        }
    }
}

/// Bit positions of a parameter list packed into message words, by
/// syscall_stub_gen.py's `get_parameter_positions`: each parameter is
/// aligned to its own size or to a word, whichever is smaller.
pub fn positions(sizes: &[u32]) -> Vec<u32> {
    let mut used: u32 = 0;
    sizes
        .iter()
        .map(|&size| {
            assert!(size.is_power_of_two() || size % WORD_BITS == 0);
            let align = size.min(WORD_BITS);
            used = used.div_ceil(align) * align;
            let at = used;
            used += size;
            at
        })
        .collect()
}
