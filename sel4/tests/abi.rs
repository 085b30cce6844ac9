//! Checks of the generated ABI against the kernel's own definitions.

use sel4::*;
use std::path::PathBuf;
use std::process::Command;

fn kernel_source() -> PathBuf {
    PathBuf::from(env!("SEL4_BUILD_KERNEL_SOURCE"))
}

#[test]
fn message_info_matches_bf_layout() {
    assert_eq!(MessageInfo::new(1, 0, 1, 2).0, (1 << 12) | (1 << 7) | 2);
    let mi = MessageInfo::new(0xfffff, 7, 3, 0x7f);
    assert_eq!(mi.0, 0xffff_ffff);
    assert_eq!((mi.label(), mi.caps_unwrapped(), mi.extra_caps(), mi.length()), (0xfffff, 7, 3, 0x7f));
    // Fields truncate like the kernel's generated constructors.
    assert_eq!(MessageInfo::new(0, 0, 0, 0x80).length(), 0);
}

#[test]
fn cap_rights_and_cap_data_match_bf_layout() {
    assert_eq!(CapRights::ALL.0, 0b111);
    assert_eq!(CapRights::new(true, false, false).0, 0b100);
    assert_eq!(CapRights::READ_ONLY.0, 0b010);
    assert_eq!(CapRights::WRITE_ONLY.0, 0b001);
    assert_eq!(CapRights::READ_WRITE.0, 0b011);
    // Badge: tag 0 at bit 31, 28-bit badge.
    assert_eq!(CapData::badge(0x123).0, 0x123);
    assert_eq!(CapData::badge(0xffff_ffff).0, 0x0fff_ffff);
    // Guard: tag 1 at bit 31, GuardBits 18 at bit 8, GuardSize 6 at bit 2.
    assert_eq!(CapData::guard(0, 52).0, (1 << 31) | (52 << 2));
    assert_eq!(CapData::guard(5, 3).0, (1 << 31) | (5 << 8) | (3 << 2));
    assert_eq!(PrioProps::new(254, 100).0, (254 << 8) | 100);
}

#[test]
fn object_types_and_sizes_match_headers() {
    assert_eq!(ObjectType::Untyped as u64, 0);
    assert_eq!(ObjectType::Tcb as u64, 1);
    assert_eq!(ObjectType::CapTable as u64, 4);
    // Mode objects follow the api ones, arch objects follow the mode ones.
    assert_eq!(ObjectType::X86_Pdpt as u64, 5);
    assert_eq!(ObjectType::X64_Pml4 as u64, 6);
    assert_eq!(ObjectType::Tcb.fixed_size_bits(), Some(11));
    assert_eq!(ObjectType::Endpoint.fixed_size_bits(), Some(4));
    assert_eq!(ObjectType::X86_4K.fixed_size_bits(), Some(12));
    assert_eq!(ObjectType::X86_LargePage.fixed_size_bits(), Some(21));
    assert_eq!(ObjectType::Untyped.fixed_size_bits(), None);
    assert_eq!(SLOT_BITS, 5);
    assert_eq!((MSG_MAX_LENGTH, MSG_MAX_EXTRA_CAPS), (120, 3));
    assert_eq!(init_caps::TCB, 1);
    assert_eq!(init_caps::CNODE, 2);
    assert_eq!(init_caps::VSPACE, 3);
    assert_eq!(init_caps::DOMAIN, 11);
    assert_eq!(Error::from_label(0), None);
    assert_eq!(Error::from_label(10), Some(Error::NotEnoughMemory));
    assert_eq!(fault_label::VM_FAULT, 5);
    assert_eq!(vm_attributes::CACHE_DISABLED, 2);
}

#[test]
fn bootinfo_layout() {
    // 5 words, 6 slot regions, u8, 2 words, 1 slot region, then 12-byte descriptors.
    assert_eq!(core::mem::size_of::<UntypedDesc>(), 12);
    assert_eq!(core::mem::size_of::<SlotRegion>(), 16);
    let expected = 5 * 8 + 6 * 16 + 1 + 2 * 8 + 16 + 12 * MAX_NUM_BOOTINFO_UNTYPED_CAPS;
    assert_eq!(core::mem::size_of::<BootInfo>(), expected);
    assert_eq!(core::mem::offset_of!(BootInfo, untyped), 5 * 8 + 6 * 16 + 1 + 2 * 8);
    assert_eq!(core::mem::size_of::<IpcBuffer>(), (1 + 120 + 1 + 3 + 3) * 8);
}

#[test]
fn marshal_cnode_mint_and_copy() {
    let inv = CNode::marshal_mint(0x45, 12, 2, 0x77, 64, CapRights::READ_WRITE, CapData::badge(9));
    assert_eq!(inv.label, InvocationLabel::CNodeMint);
    // dest_index | dest_depth(u8) | src_index | src_depth(u8) | rights | badge
    assert_eq!(inv.mrs(), &[0x45, 12, 0x77, 64, 0b011, 9]);
    assert_eq!(inv.caps(), &[2]);
    assert_eq!(inv.info(), MessageInfo::new(InvocationLabel::CNodeMint as u64, 0, 1, 6));

    let inv = CNode::marshal_copy(1, 2, 3, 4, 5, CapRights::ALL);
    assert_eq!(inv.mrs(), &[1, 2, 4, 5, 7]);
    assert_eq!(inv.caps(), &[3]);
}

#[test]
fn marshal_untyped_retype() {
    let inv = Untyped::marshal_retype(ObjectType::Endpoint as Word, 0, init_caps::CNODE, 0, 0, 100, 5);
    assert_eq!(inv.label, InvocationLabel::UntypedRetype);
    assert_eq!(inv.label as u64, 1);
    assert_eq!(inv.mrs(), &[2, 0, 0, 0, 100, 5]);
    assert_eq!(inv.caps(), &[2]);
}

#[test]
fn marshal_tcb_configure_and_small_params() {
    let inv =
        Tcb::marshal_configure(7, PrioProps::new(255, 100), 2, CapData::guard(0, 52), 3, CapData::NONE, 0x1000, 10);
    assert_eq!(inv.mrs(), &[7, (255 << 8) | 100, (1 << 31) | (52 << 2), 0, 0x1000]);
    assert_eq!(inv.caps(), &[2, 3, 10]);
    // bool (1 bit) then u8 aligned to 8 bits share a word; count is the next word.
    let inv = Tcb::marshal_read_registers(true, 0xab, 19);
    assert_eq!(inv.mrs(), &[1 | (0xab << 8), 19]);
    let inv = Tcb::marshal_copy_registers(9, true, false, true, true, 3);
    assert_eq!(inv.mrs(), &[0b1101 | (3 << 8)]);
    assert_eq!(inv.caps(), &[9]);
}

#[test]
fn marshal_x86_invocations() {
    let inv = IrqControl::marshal_get_ioapic(2, 0x200, 64, 0, 4, 1, 0, 3);
    assert_eq!(inv.label, InvocationLabel::X86IRQIssueIRQHandlerIOAPIC);
    assert_eq!(inv.mrs(), &[0x200, 64, 0, 4, 1, 0, 3]);
    assert_eq!(inv.caps(), &[2]);
    let inv = X86Page::marshal_map(3, 0x40_0000, CapRights::READ_WRITE, vm_attributes::DEFAULT);
    assert_eq!(inv.label, InvocationLabel::X86PageMap);
    assert_eq!(inv.mrs(), &[0x40_0000, 0b011, 0]);
    assert_eq!(inv.caps(), &[3]);
    let inv = X86IoPort::marshal_in8(0xcfc);
    assert_eq!(inv.mrs(), &[0xcfc]);
}

/// Run the kernel's invocation_header_gen.py on the same XML, compile the
/// headers with gcc against the same config and compare every label.
#[test]
fn invocation_labels_match_kernel_generator() {
    let src = kernel_source();
    let config = PathBuf::from(env!("SEL4_BUILD_CONFIG_FILE"));
    let tmp = std::env::temp_dir().join(format!("sel4-labels-{}", std::process::id()));
    let inc = tmp.join("include");
    std::fs::create_dir_all(inc.join("sel4/sel4_arch")).unwrap();
    std::fs::create_dir_all(inc.join("sel4/arch")).unwrap();
    std::fs::copy(&config, inc.join("autoconf.h")).unwrap();
    let lib = src.join("libsel4");
    let gen = lib.join("tools/invocation_header_gen.py");
    for (xml, dest, flag) in [
        ("include/interfaces/sel4.xml", "sel4/invocation.h", None),
        ("sel4_arch_include/x86_64/interfaces/sel4arch.xml", "sel4/sel4_arch/invocation.h", Some("--sel4_arch")),
        ("arch_include/x86/interfaces/sel4arch.xml", "sel4/arch/invocation.h", Some("--arch")),
    ] {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&gen).arg("--libsel4").arg("--xml").arg(lib.join(xml)).arg("--dest").arg(inc.join(dest));
        cmd.args(flag);
        let out = cmd.output().expect("running /usr/bin/python3");
        assert!(
            out.status.success(),
            "invocation_header_gen.py failed (it needs python3 modules tempita and six: \
             apt-get install python3-tempita python3-six python3-ply): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut c =
        String::from("#include <autoconf.h>\n#include <sel4/invocation.h>\n#include <stdio.h>\nint main(void) {\n");
    for (name, _) in InvocationLabel::ALL {
        c += &format!("    printf(\"%s %d\\n\", \"{name}\", (int){name});\n");
    }
    c += "    printf(\"count %d\\n\", (int)nArchInvocationLabels);\n    return 0;\n}\n";
    std::fs::write(tmp.join("labels.c"), c).unwrap();
    let exe = tmp.join("labels");
    let out =
        Command::new("gcc").arg("-I").arg(&inc).arg(tmp.join("labels.c")).arg("-o").arg(&exe).output().expect("gcc");
    assert!(out.status.success(), "gcc: {}", String::from_utf8_lossy(&out.stderr));
    let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();
    let mut lines = out.lines();
    for (name, label) in InvocationLabel::ALL {
        assert_eq!(lines.next().unwrap(), format!("{name} {}", *label as u64));
    }
    // Ours has every label the kernel has: no more, no fewer.
    assert_eq!(lines.next().unwrap(), format!("count {}", InvocationLabel::ALL.len() + 1));
    let _ = std::fs::remove_dir_all(tmp);
}
