//! Each rule is broken once; the diagnostic must say what is wrong, where
//! (exact line and column), and how to fix it. Fixtures start with
//! `<system>` on line 1, so line numbers can be read off the source.

use std::path::Path;

use tools_sdf::{parse_str, Diagnostic, Diagnostics, DmaAccess};

/// All diagnostics for `text`, which must be rejected.
fn errors(text: &str) -> Vec<Diagnostic> {
    match tools_sdf::parse_str(Path::new("microkit.system"), text) {
        Ok(_) => panic!("accepted an invalid description"),
        Err(Diagnostics(all)) => all,
    }
}

/// The only diagnostic for `text`: no follow-on errors.
fn single(text: &str) -> Diagnostic {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got:\n{}", Diagnostics(all.clone()));
    all.remove(0)
}

/// Checks where `d` points and that its message and hint contain the given
/// fragments.
#[track_caller]
fn check(d: &Diagnostic, line: u32, column: u32, message: &[&str], hint: &[&str]) {
    assert_eq!((d.loc.line, d.loc.column), (line, column), "wrong location for:\n{d}");
    for part in message {
        assert!(d.message.contains(part), "message lacks {part:?}:\n{d}");
    }
    for part in hint {
        assert!(d.hint.contains(part), "hint lacks {part:?}:\n{d}");
    }
}

#[test]
fn display_format() {
    let d = single(
        r#"<system>
  <protection_domain name="a" priority="255">
    <program_image path="a.elf" />
  </protection_domain>
</system>"#,
    );
    let text = d.to_string();
    assert!(text.starts_with("microkit.system:2:31: error: invalid priority=\"255\""), "{text}");
    assert!(text.contains("\n  hint: priorities are 0..=254"), "{text}");
}

#[test]
fn malformed_xml_reports_the_parser_position() {
    let d = single(
        r#"<system>
  <protection_domain name="a">
  </protection_domian>
</system>"#,
    );
    assert_eq!((d.loc.line, d.loc.column), (3, 3), "{d}");
    assert!(d.message.starts_with("malformed XML: "), "{d}");
    assert!(!d.message.contains(" at 2:"), "position is not repeated in the message: {d}");
}

#[test]
fn unknown_pd_in_channel() {
    let d = single(
        r#"<system>
  <protection_domain name="ping">
    <program_image path="ping.elf" />
  </protection_domain>
  <protection_domain name="pong">
    <program_image path="pong.elf" />
  </protection_domain>
  <channel>
    <end pd="ping" id="0" />
    <end pd="pnog" id="0" />
  </channel>
</system>"#,
    );
    check(&d, 10, 5, &["unknown protection domain `pnog`"], &["did you mean `pong`?", "`ping`, `pong`"]);
}

#[test]
fn channel_to_itself() {
    let d = single(
        r#"<system>
  <protection_domain name="ping">
    <program_image path="ping.elf" />
  </protection_domain>
  <channel>
    <end pd="ping" id="0" />
    <end pd="ping" id="1" />
  </channel>
</system>"#,
    );
    check(&d, 7, 5, &["`ping` to itself"], &[]);
}

#[test]
fn channel_needs_two_ends() {
    let d = single(
        r#"<system>
  <protection_domain name="ping">
    <program_image path="ping.elf" />
  </protection_domain>
  <channel>
    <end pd="ping" id="0" />
  </channel>
</system>"#,
    );
    check(&d, 5, 3, &["1 <end> element;", "exactly two"], &[]);
}

#[test]
fn duplicate_channel_id_in_a_pd() {
    let d = single(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
  </protection_domain>
  <protection_domain name="b">
    <program_image path="b.elf" />
  </protection_domain>
  <protection_domain name="c">
    <program_image path="c.elf" />
  </protection_domain>
  <channel>
    <end pd="a" id="3" />
    <end pd="b" id="0" />
  </channel>
  <channel>
    <end pd="c" id="0" />
    <end pd="a" id="3" />
  </channel>
</system>"#,
    );
    check(
        &d,
        17,
        5,
        &["id 3 of protection domain `a` is already used by the channel to `b` at line 12"],
        &["share the ids 0..=25", "e.g. 0"],
    );
}

#[test]
fn channel_and_irq_ids_share_a_space() {
    let d = single(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <irq id="1" pin="4" />
  </protection_domain>
  <protection_domain name="b">
    <program_image path="b.elf" />
  </protection_domain>
  <channel>
    <end pd="a" id="1" />
    <end pd="b" id="1" />
  </channel>
</system>"#,
    );
    check(
        &d,
        10,
        5,
        &["id 1 of protection domain `a` is already used by the irq on IOAPIC 0 pin 4 at line 4"],
        &["e.g. 0"],
    );
}

#[test]
fn overlapping_mappings() {
    let d = single(
        r#"<system>
  <memory_region name="buf" size="0x3000" />
  <memory_region name="regs" size="0x1000" />
  <protection_domain name="drv">
    <program_image path="drv.elf" />
    <map mr="buf" vaddr="0x10000" />
    <map mr="regs" vaddr="0x12000" />
  </protection_domain>
</system>"#,
    );
    check(
        &d,
        7,
        5,
        &["map of `regs` in `drv` at 0x12000..0x13000 overlaps the map of `buf` at 0x10000..0x13000 (line 6)"],
        &["0x13000"],
    );
}

#[test]
fn misaligned_vaddr() {
    let d = single(
        r#"<system>
  <memory_region name="big" size="0x200000" page_size="0x200000" />
  <protection_domain name="drv">
    <program_image path="drv.elf" />
    <map mr="big" vaddr="0x4001000" />
  </protection_domain>
</system>"#,
    );
    check(
        &d,
        5,
        5,
        &["map of `big` in `drv`: vaddr 0x4001000 is not aligned to the region's page size 0x200000"],
        &["e.g. 0x4200000"],
    );
}

#[test]
fn mapping_at_zero_or_past_user_top() {
    let all = errors(
        r#"<system>
  <memory_region name="r" size="0x2000" />
  <protection_domain name="drv">
    <program_image path="drv.elf" />
    <map mr="r" vaddr="0" />
    <map mr="r" vaddr="0x7fff_ffff_e000" />
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(&all[0], 5, 5, &["maps the page at address 0"], &["null pointer"]);
    check(&all[1], 6, 5, &["go past the end of user address space (0x7ffffffff000)"], &["at most 0x7fffffffd000"]);
}

#[test]
fn protected_call_to_lower_priority() {
    let d = single(
        r#"<system>
  <protection_domain name="client" priority="200">
    <program_image path="client.elf" />
  </protection_domain>
  <protection_domain name="server" priority="100" pp="true">
    <program_image path="server.elf" />
  </protection_domain>
  <channel>
    <end pd="client" id="0" pp="true" />
    <end pd="server" id="0" />
  </channel>
</system>"#,
    );
    check(
        &d,
        9,
        5,
        &["protected call to lower or equal priority: `client` (priority 200) calls `server` (priority 100)"],
        &["raise `server` above 200"],
    );
}

#[test]
fn protected_call_to_pd_without_pp() {
    let d = single(
        r#"<system>
  <protection_domain name="client" priority="1">
    <program_image path="client.elf" />
  </protection_domain>
  <protection_domain name="server" priority="2">
    <program_image path="server.elf" />
  </protection_domain>
  <channel>
    <end pd="client" id="0" pp="true" />
    <end pd="server" id="0" />
  </channel>
</system>"#,
    );
    check(&d, 9, 5, &["`server` does not accept them"], &["add pp=\"true\" to <protection_domain name=\"server\">"]);
}

#[test]
fn inferred_calls_between_two_pp_pds() {
    // Neither end sets pp and both PDs accept calls: each end is taken to
    // call the other; only the call from low to high priority is allowed.
    let d = single(
        r#"<system>
  <protection_domain name="low" priority="1" pp="true">
    <program_image path="low.elf" />
  </protection_domain>
  <protection_domain name="high" priority="2" pp="true">
    <program_image path="high.elf" />
  </protection_domain>
  <channel>
    <end pd="low" id="0" />
    <end pd="high" id="0" />
  </channel>
</system>"#,
    );
    check(
        &d,
        10,
        5,
        &["`high` (priority 2) calls `low` (priority 1)", "both `high` and `low` have pp=\"true\""],
        &["set pp=\"true\" on the <end>"],
    );
}

#[test]
fn both_ends_pp() {
    let d = single(
        r#"<system>
  <protection_domain name="a" priority="1" pp="true">
    <program_image path="a.elf" />
  </protection_domain>
  <protection_domain name="b" priority="2" pp="true">
    <program_image path="b.elf" />
  </protection_domain>
  <channel>
    <end pd="a" id="0" pp="true" />
    <end pd="b" id="0" pp="true" />
  </channel>
</system>"#,
    );
    check(&d, 10, 5, &["both ends of the channel between `a` and `b` set pp=\"true\""], &[]);
}

#[test]
fn unknown_attribute_with_suggestion() {
    let d = single(
        r#"<system>
  <protection_domain name="a" pririty="3">
    <program_image path="a.elf" />
  </protection_domain>
</system>"#,
    );
    check(&d, 2, 31, &["unknown attribute `pririty` on <protection_domain name=\"a\">"], &["did you mean `priority`?"]);
}

#[test]
fn unknown_element_with_suggestion() {
    let d = single(
        r#"<system>
  <memory_region name="r" size="0x1000" />
  <protection_domain name="a">
    <program_image path="a.elf" />
    <mapp mr="r" vaddr="0x1000" />
  </protection_domain>
</system>"#,
    );
    check(&d, 5, 5, &["unknown element <mapp> in <protection_domain name=\"a\">"], &["did you mean `map`?"]);
}

#[test]
fn misplaced_element() {
    let d = single(
        r#"<system>
  <map mr="r" vaddr="0x1000" />
</system>"#,
    );
    check(&d, 2, 3, &["<map> is not allowed in <system>"], &["belongs inside <protection_domain>"]);
}

#[test]
fn bad_number() {
    let d = single(
        r#"<system>
  <memory_region name="r" size="0x10g0" />
</system>"#,
    );
    check(&d, 2, 27, &["invalid size=\"0x10g0\" on <memory_region name=\"r\">: not a hexadecimal number"], &["0x1000"]);
}

#[test]
fn bad_bool_and_perms() {
    let all = errors(
        r#"<system>
  <memory_region name="r" size="0x1000" />
  <protection_domain name="a" passive="yes">
    <program_image path="a.elf" />
    <map mr="r" vaddr="0x1000" perms="w" />
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(&all[0], 3, 31, &["invalid passive=\"yes\"", "expected `true` or `false`"], &[]);
    check(&all[1], 5, 32, &["invalid perms=\"w\"", "must be readable"], &["write-only"]);
}

#[test]
fn missing_required_attribute() {
    let d = single(
        r#"<system>
  <memory_region name="r" />
</system>"#,
    );
    check(&d, 2, 3, &["<memory_region name=\"r\"> is missing the required attribute `size`"], &[]);
}

#[test]
fn region_size_not_a_multiple_of_page_size() {
    let d = single(
        r#"<system>
  <memory_region name="r" size="0x201000" page_size="0x200000" />
</system>"#,
    );
    check(
        &d,
        2,
        3,
        &["memory region `r`: size 0x201000 is not a multiple of its page size 0x200000"],
        &["round size up to 0x400000"],
    );
}

#[test]
fn region_phys_addr_misaligned_and_bad_page_size() {
    let all = errors(
        r#"<system>
  <memory_region name="r" size="0x200000" page_size="0x200000" phys_addr="0xfee01000" />
  <memory_region name="s" size="0x1000" page_size="0x4000" />
</system>"#,
    );
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(&all[0], 2, 3, &["phys_addr 0xfee01000 is not aligned to its page size 0x200000"], &[]);
    check(&all[1], 3, 41, &["invalid page_size=\"0x4000\""], &["0x1000 (4 KiB, the default) or 0x200000"]);
}

#[test]
fn duplicate_pd_name() {
    let d = single(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <protection_domain name="a" id="0">
      <program_image path="child.elf" />
    </protection_domain>
  </protection_domain>
</system>"#,
    );
    check(&d, 4, 5, &["duplicate protection domain name `a`; it is first used at line 2"], &["children included"]);
}

#[test]
fn duplicate_region_name() {
    let d = single(
        r#"<system>
  <memory_region name="r" size="0x1000" />
  <memory_region name="r" size="0x2000" />
</system>"#,
    );
    check(&d, 3, 3, &["duplicate memory region name `r`; it is first used at line 2"], &[]);
}

#[test]
fn priority_out_of_range() {
    let d = single(
        r#"<system>
  <protection_domain name="a" priority="300">
    <program_image path="a.elf" />
  </protection_domain>
</system>"#,
    );
    check(
        &d,
        2,
        31,
        &["invalid priority=\"300\" on <protection_domain name=\"a\">: must be in 0..=254"],
        &["reserved for the monitor"],
    );
}

#[test]
fn pd_name_too_long() {
    let name = "p".repeat(64);
    let text = format!("<system>\n  <protection_domain name=\"{name}\">\n    <program_image path=\"a.elf\" />\n  </protection_domain>\n</system>");
    let d = single(&text);
    check(&d, 2, 22, &["64 bytes long, longer than 63"], &["NUL"]);
}

#[test]
fn missing_program_image() {
    let d = single(
        r#"<system>
  <protection_domain name="a">
  </protection_domain>
</system>"#,
    );
    check(&d, 2, 3, &["<protection_domain name=\"a\"> has no <program_image>"], &["<program_image path="]);
}

#[test]
fn second_program_image() {
    let d = single(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <program_image path="b.elf" />
  </protection_domain>
</system>"#,
    );
    check(&d, 4, 5, &["`a` has a second <program_image>; the first is at line 3"], &[]);
}

#[test]
fn stack_size_rules() {
    let d = single(
        r#"<system>
  <protection_domain name="a" stack_size="0x1800">
    <program_image path="a.elf" />
  </protection_domain>
</system>"#,
    );
    check(&d, 2, 31, &["stack_size=\"0x1800\"", "not a multiple of the page size"], &["16 MiB"]);
}

#[test]
fn irq_vector_conflict() {
    let d = single(
        r#"<system>
  <protection_domain name="serial">
    <program_image path="serial.elf" />
    <irq id="0" pin="4" />
  </protection_domain>
  <protection_domain name="timer">
    <program_image path="timer.elf" />
    <irq id="0" pin="2" vector="4" />
  </protection_domain>
</system>"#,
    );
    check(
        &d,
        8,
        5,
        &["irq vector 4 of `timer` (IOAPIC 0 pin 2) is already used by `serial`'s irq (IOAPIC 0 pin 4) at line 4"],
        &["defaults to the pin number", "vector=\"0\""],
    );
}

#[test]
fn irq_pin_claimed_twice() {
    let all = errors(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <irq id="0" pin="4" />
  </protection_domain>
  <protection_domain name="b">
    <program_image path="b.elf" />
    <irq id="0" pin="4" vector="9" />
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 1, "{}", Diagnostics(all.clone()));
    check(&all[0], 8, 5, &["IOAPIC 0 pin 4 of `b` is already claimed by `a` at line 4"], &[]);
}

#[test]
fn irq_pin_and_vector_ranges() {
    let all = errors(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <irq id="0" pin="24" />
    <irq id="1" pin="3" vector="108" trigger="rising" />
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 3, "{}", Diagnostics(all.clone()));
    check(&all[0], 4, 17, &["invalid pin=\"24\"", "0..=23"], &[]);
    check(&all[1], 5, 25, &["invalid vector=\"108\"", "0..=107"], &[]);
    check(&all[2], 5, 38, &["invalid trigger=\"rising\"", "`edge`, `level`"], &[]);
}

#[test]
fn ioport_overlap() {
    let d = single(
        r#"<system>
  <protection_domain name="serial">
    <program_image path="serial.elf" />
    <ioport id="0" addr="0x3f8" size="8" />
  </protection_domain>
  <protection_domain name="debug">
    <program_image path="debug.elf" />
    <ioport id="0" addr="0x3fc" size="2" />
  </protection_domain>
</system>"#,
    );
    check(
        &d,
        8,
        5,
        &["I/O ports 0x3fc..=0x3fd of `debug` (id 0) overlap ports 0x3f8..=0x3ff of `serial` (id 0) at line 4"],
        &["single protection domain"],
    );
}

#[test]
fn ioport_pci_configuration_space_is_the_initialisers() {
    // The range ends one port before 0xcf8 (accepted) and one that touches
    // its last port (refused).
    let d = single(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <ioport id="0" addr="0xcf0" size="8" />
    <ioport id="1" addr="0xcff" size="1" />
  </protection_domain>
</system>"#,
    );
    check(
        &d,
        5,
        5,
        &["I/O ports 0xcff..=0xcff of `a` reach the PCI configuration ports 0xcf8..=0xcff"],
        &["<pci_device>"],
    );
}

#[test]
fn ioport_ids_and_space() {
    let all = errors(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <ioport id="0" addr="0x60" size="1" />
    <ioport id="0" addr="0x64" size="1" />
    <ioport id="1" addr="0xfff8" size="16" />
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(&all[0], 5, 5, &["ioport id 0 of protection domain `a` is already used at line 4"], &["e.g. 2"]);
    check(&all[1], 6, 5, &["I/O ports 0xfff8..=0x10007 of `a` run past the last port"], &["at most 0x8"]);
}

#[test]
fn channel_id_too_large() {
    let d = single(
        r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
  </protection_domain>
  <protection_domain name="b">
    <program_image path="b.elf" />
  </protection_domain>
  <channel>
    <end pd="a" id="26" />
    <end pd="b" id="0" />
  </channel>
</system>"#,
    );
    check(
        &d,
        9,
        17,
        &["invalid id=\"26\" on <end pd=\"a\">: must be in 0..=25"],
        &["28-bit badge", "bits 0..=25 are notification channels", "bit 26", "bit 27"],
    );
}

#[test]
fn child_ids() {
    let all = errors(
        r#"<system>
  <protection_domain name="parent">
    <program_image path="parent.elf" />
    <protection_domain name="c1" id="1">
      <program_image path="c1.elf" />
    </protection_domain>
    <protection_domain name="c2" id="1">
      <program_image path="c2.elf" />
    </protection_domain>
    <protection_domain name="c3">
      <program_image path="c3.elf" />
    </protection_domain>
    <protection_domain name="c4" id="26">
      <program_image path="c4.elf" />
    </protection_domain>
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 3, "{}", Diagnostics(all.clone()));
    check(&all[0], 7, 5, &["child id 1 of `parent` is used by both `c1` (line 4) and `c2`"], &["e.g. 0"]);
    check(&all[1], 10, 5, &["<protection_domain name=\"c3\"> is missing the required attribute `id`"], &[]);
    check(&all[2], 13, 34, &["invalid id=\"26\"", "0..=25"], &["fault badge"]);
}

#[test]
fn only_children_have_ids() {
    let d = single(
        r#"<system>
  <protection_domain name="top" id="0">
    <program_image path="top.elf" />
  </protection_domain>
</system>"#,
    );
    check(&d, 2, 33, &["<protection_domain name=\"top\"> is not a child, so it cannot have an `id`"], &[]);
}

#[test]
fn unknown_mr_in_map_and_setvar() {
    let all = errors(
        r#"<system>
  <memory_region name="shared" size="0x1000" />
  <protection_domain name="a">
    <program_image path="a.elf" />
    <map mr="sahred" vaddr="0x10000" />
    <setvar symbol="buf_paddr" region_paddr="shraed" />
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(
        &all[0],
        5,
        5,
        &["<map> in protection domain `a` names unknown memory region `sahred`"],
        &["did you mean `shared`?"],
    );
    check(
        &all[1],
        6,
        5,
        &["<setvar symbol=\"buf_paddr\"> in protection domain `a` names unknown memory region `shraed`"],
        &["did you mean `shared`?"],
    );
}

#[test]
fn setvar_with_both_or_neither_value() {
    let all = errors(
        r#"<system>
  <memory_region name="r" size="0x1000" />
  <protection_domain name="a">
    <program_image path="a.elf" />
    <setvar symbol="x" region_paddr="r" region_size="r" />
    <setvar symbol="y" />
  </protection_domain>
</system>"#,
    );
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(
        &all[0],
        5,
        5,
        &["<setvar> has more than one of region_paddr, region_size, sectors and value"],
        &["one per <setvar>"],
    );
    check(
        &all[1],
        6,
        5,
        &["<setvar> needs region_paddr, region_size, sectors or value"],
        &["region_size=\"mr\" its size in bytes"],
    );
}

#[test]
fn size_symbol_set_twice() {
    let d = single(
        r#"<system>
  <memory_region name="r" size="0x1000" />
  <protection_domain name="a">
    <program_image path="a.elf" />
    <map mr="r" vaddr="0x10000" setvar_size="len" />
    <setvar symbol="len" region_paddr="r" />
  </protection_domain>
</system>"#,
    );
    check(&d, 6, 5, &["symbol `len` of protection domain `a` is already set by the <map setvar_size> at line 5"], &[]);
}

#[test]
fn symbol_set_twice() {
    let d = single(
        r#"<system>
  <memory_region name="r" size="0x1000" />
  <protection_domain name="a">
    <program_image path="a.elf" />
    <map mr="r" vaddr="0x10000" setvar_vaddr="buf" />
    <setvar symbol="buf" region_paddr="r" />
  </protection_domain>
</system>"#,
    );
    check(&d, 6, 5, &["symbol `buf` of protection domain `a` is already set by the <map setvar_vaddr> at line 5"], &[]);
}

#[test]
fn too_many_pds() {
    let mut text = String::from("<system>\n");
    for i in 0..64 {
        text += &format!("  <protection_domain name=\"pd{i}\"><program_image path=\"pd.elf\" /></protection_domain>\n");
    }
    text += "</system>\n";
    let d = single(&text);
    check(&d, 65, 3, &["too many protection domains: `pd63` is number 64", "at most 63"], &[]);
}

#[test]
fn several_errors_are_reported_together_without_follow_on_errors() {
    let all = errors(
        r#"<system>
  <memory_region name="buf" size="0x1800" />
  <memory_region name="dev" size="zero" />
  <protection_domain name="a" priority="300">
    <program_image path="a.elf" />
  </protection_domain>
  <protection_domain name="b">
    <program_image path="b.elf" />
    <map mr="buf" vaddr="0x10000" />
    <map mr="dev" vaddr="0x20000" />
    <map mr="nope" vaddr="0x30000" />
  </protection_domain>
  <channel>
    <end pd="a" id="0" />
    <end pd="b" id="0" />
  </channel>
  <channel>
    <end pd="b" id="0" />
    <end pd="timer" id="1" />
  </channel>
</system>"#,
    );
    // `a` and `dev` are left out of the model for their bad attributes, but
    // the references to them (lines 10 and 14) are not reported again.
    assert_eq!(all.len(), 6, "{}", Diagnostics(all.clone()));
    check(&all[0], 2, 3, &["size 0x1800 is not a multiple"], &[]);
    check(&all[1], 3, 29, &["invalid size=\"zero\""], &[]);
    check(&all[2], 4, 31, &["invalid priority=\"300\""], &[]);
    check(&all[3], 11, 5, &["unknown memory region `nope`"], &["memory regions: `buf`"]);
    check(&all[4], 18, 5, &["id 0 of protection domain `b` is already used by the channel to `a` at line 15"], &[]);
    check(&all[5], 19, 5, &["unknown protection domain `timer`"], &[]);
    // Diagnostics are in file order, one block each.
    assert_eq!(Diagnostics(all).to_string().matches("\n\nmicrokit.system:").count(), 5);
}

#[test]
fn a_window_of_sectors_is_parsed_and_checked() {
    let system = |sectors: &str| {
        format!(
            r#"<system>
  <protection_domain name="blk" priority="200">
    <program_image path="blk.elf" />
    <setvar symbol="client_sectors" sectors="{sectors}" />
  </protection_domain>
</system>"#
        )
    };
    let sys = tools_sdf::parse_str(Path::new("microkit.system"), &system("0x800-0x107ff")).expect("valid");
    let setvar = &sys.pd("blk").expect("blk").setvars[0];
    assert_eq!(setvar.value, tools_sdf::SetVarValue::Sectors { first: 0x800, last: 0x107ff });
    assert_eq!(setvar.region, "", "a window names no region");
    let one = tools_sdf::parse_str(Path::new("microkit.system"), &system("7-7")).expect("one sector");
    assert_eq!(one.pd("blk").unwrap().setvars[0].value, tools_sdf::SetVarValue::Sectors { first: 7, last: 7 });

    let d = single(&system("0x4000-0x100"));
    check(
        &d,
        4,
        37,
        &["invalid sectors=\"0x4000-0x100\"", "the last sector 0x100 is before the first 0x4000"],
        &["FIRST-LAST"],
    );
    let d = single(&system("0x4000"));
    check(&d, 4, 37, &["not a run of sectors FIRST-LAST"], &["both inclusive"]);
    let d = single(&system("0-0xffffffffffffffff"));
    check(&d, 4, 37, &["below 2^64 - 1"], &[]);
    let d = single(&system("0-lots"));
    check(&d, 4, 37, &["invalid sectors=\"0-lots\""], &["FIRST-LAST"]);
    let d = single(
        r#"<system>
  <protection_domain name="blk" priority="200">
    <program_image path="blk.elf" />
    <setvar symbol="w" sectors="0-9" region_size="r" />
  </protection_domain>
  <memory_region name="r" size="0x1000" />
</system>"#,
    );
    check(&d, 4, 5, &["more than one of region_paddr, region_size, sectors and value"], &["sectors=\"FIRST-LAST\""]);
}

#[test]
fn a_number_is_parsed_and_checked() {
    let system = |value: &str| {
        format!(
            r#"<system>
  <protection_domain name="cache" priority="150">
    <program_image path="cache.elf" />
    <setvar symbol="quota_0" value="{value}" />
  </protection_domain>
</system>"#
        )
    };
    for (text, n) in [("8192", 8192), ("0x2000", 0x2000), ("0", 0), ("0xffffffffffffffff", u64::MAX)] {
        let sys = tools_sdf::parse_str(Path::new("microkit.system"), &system(text)).expect("valid");
        let setvar = &sys.pd("cache").expect("cache").setvars[0];
        assert_eq!(setvar.value, tools_sdf::SetVarValue::Number(n), "{text}");
        assert_eq!(setvar.region, "", "a number names no region");
    }
    let d = single(&system("lots"));
    check(&d, 4, 30, &["invalid value=\"lots\"", "not a number"], &["hexadecimal"]);
    let d = single(&system("0x10000000000000000"));
    check(&d, 4, 30, &["invalid value="], &[]);
    let d = single(
        r#"<system>
  <protection_domain name="cache" priority="150">
    <program_image path="cache.elf" />
    <setvar symbol="w" value="9" region_size="r" />
  </protection_domain>
  <memory_region name="r" size="0x1000" />
</system>"#,
    );
    check(&d, 4, 5, &["more than one of region_paddr, region_size, sectors and value"], &["value=\"N\" a number"]);
}

#[test]
fn dma_access_is_r_w_or_rw_and_only_on_region_paddr() {
    let system = |setvar: &str| {
        format!(
            r#"<system>
  <protection_domain name="drv" priority="200">
    <program_image path="drv.elf" />
    {setvar}
  </protection_domain>
  <memory_region name="r" size="0x1000" />
</system>"#
        )
    };
    let d = single(&system(r#"<setvar symbol="s" region_size="r" dma="r" />"#));
    check(&d, 4, 5, &["dma= applies only to a <setvar region_paddr>"], &["dma=\"r\", \"w\" or \"rw\""]);
    let d = single(&system(r#"<setvar symbol="p" region_paddr="r" dma="wr" />"#));
    check(&d, 4, 41, &["invalid dma=\"wr\"", "`r`", "`rw`"], &[]);
    for (text, access) in [("r", DmaAccess::Read), ("w", DmaAccess::Write), ("rw", DmaAccess::ReadWrite)] {
        let sys = parse_str(
            Path::new("t.system"),
            &system(&format!(r#"<setvar symbol="p" region_paddr="r" dma="{text}" />"#)),
        )
        .expect("valid");
        assert_eq!(sys.protection_domains[0].setvars[0].dma, access);
    }
    let sys = parse_str(Path::new("t.system"), &system(r#"<setvar symbol="p" region_paddr="r" />"#)).expect("valid");
    assert_eq!(sys.protection_domains[0].setvars[0].dma, DmaAccess::ReadWrite, "the default");
}

#[test]
fn on_fault_must_name_a_policy() {
    let d = single(
        r#"<system>
  <protection_domain name="a" on_fault="restrat">
    <program_image path="a.elf" />
  </protection_domain>
</system>"#,
    );
    check(&d, 2, 31, &["invalid on_fault=\"restrat\"", "did you mean `restart`"], &["stop", "restart-backoff"]);
}

#[test]
fn a_child_has_no_on_fault() {
    let d = single(
        r#"<system>
  <protection_domain name="parent">
    <program_image path="p.elf" />
    <protection_domain name="child" id="1" on_fault="restart">
      <program_image path="c.elf" />
    </protection_domain>
  </protection_domain>
</system>"#,
    );
    check(&d, 4, 44, &["child", "parent"], &["remove on_fault"]);
}
