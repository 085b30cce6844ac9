//! A description using every element and attribute parses into the
//! expected model.

use std::path::{Path, PathBuf};

use tools_sdf::{Loc, PageSize, Perms, SetVarValue};

const SYSTEM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<system>
  <memory_region name="shared" size="0x2000" />
  <memory_region name="dma" size="0x20_0000" page_size="0x200000" phys_addr="0x4000_0000" />
  <protection_domain name="ping" priority="100" stack_size="0x4000">
    <program_image path="ping.elf" />
    <map mr="shared" vaddr="0x4000000" perms="rw" setvar_vaddr="shared_vaddr" setvar_size="shared_size" />
    <map mr="dma" vaddr="0x4200000" perms="r" cached="false" />
    <irq id="2" pin="4" ioapic="0" trigger="level" polarity="low" vector="40" />
    <irq id="3" pin="1" />
    <ioport id="0" addr="0x3f8" size="8" />
    <setvar symbol="dma_paddr" region_paddr="dma" /> <setvar symbol="dma_size" region_size="dma" />
    <protection_domain name="child" id="1" priority="90" passive="true">
      <program_image path="bin/child.elf" />
    </protection_domain>
  </protection_domain>
  <protection_domain name="pong" priority="150" pp="true">
    <program_image path="/abs/pong.elf" />
    <map mr="shared" vaddr="0x5000000" perms="rxw" />
  </protection_domain>
  <!-- neither end sets pp: ping calls pong because pong has pp="true" -->
  <channel>
    <end pd="ping" id="0" />
    <end pd="pong" id="1" notify="false" />
  </channel>
  <channel>
    <end pd="ping" id="1" pp="false" />
    <end pd="child" id="0" />
  </channel>
</system>
"#;

#[test]
fn every_element_parses_into_the_model() {
    let system = match tools_sdf::parse_str(Path::new("/sys/demo/microkit.system"), SYSTEM) {
        Ok(system) => system,
        Err(diagnostics) => panic!("rejected:\n{diagnostics}"),
    };
    assert_eq!(system.file, PathBuf::from("/sys/demo/microkit.system"));

    // Memory regions.
    assert_eq!(system.memory_regions.len(), 2);
    let shared = system.region("shared").expect("shared");
    assert_eq!((shared.size, shared.page_size, shared.phys_addr), (0x2000, PageSize::Small, None));
    assert_eq!(shared.page_count(), 2);
    assert_eq!(shared.loc, Loc::new(3, 3));
    let dma = system.region("dma").expect("dma");
    assert_eq!((dma.size, dma.page_size, dma.phys_addr), (0x20_0000, PageSize::Large, Some(0x4000_0000)));
    assert_eq!(dma.page_count(), 1);
    assert_eq!(PageSize::Large.bytes(), 0x20_0000);

    // Protection domains, depth-first with parents first.
    let names: Vec<&str> = system.all_pds().iter().map(|pd| pd.name.as_str()).collect();
    assert_eq!(names, ["ping", "child", "pong"]);
    assert_eq!(system.protection_domains.len(), 2);

    let ping = system.pd("ping").expect("ping");
    assert_eq!((ping.priority, ping.pp, ping.passive, ping.stack_size), (100, false, false, 0x4000));
    assert_eq!(ping.program_image, PathBuf::from("/sys/demo/ping.elf"));
    assert_eq!(ping.program_image_loc, Loc::new(6, 5));
    assert_eq!(ping.child_id, None);
    assert_eq!(ping.loc, Loc::new(5, 3));

    assert_eq!(ping.maps.len(), 2);
    let m = &ping.maps[0];
    assert_eq!((m.mr.as_str(), m.vaddr, m.perms, m.cached), ("shared", 0x400_0000, Perms::READ_WRITE, true));
    assert_eq!(m.setvar_vaddr.as_deref(), Some("shared_vaddr"));
    assert_eq!(m.setvar_size.as_deref(), Some("shared_size"));
    assert_eq!(m.loc, Loc::new(7, 5));
    let m = &ping.maps[1];
    assert_eq!(
        (m.mr.as_str(), m.vaddr, m.cached, m.setvar_vaddr.as_deref(), m.setvar_size.as_deref()),
        ("dma", 0x420_0000, false, None, None)
    );
    assert_eq!(m.perms, Perms { read: true, write: false, execute: false });

    assert_eq!(ping.irqs.len(), 2);
    let irq = &ping.irqs[0];
    assert_eq!((irq.id, irq.ioapic, irq.pin, irq.vector), (2, 0, 4, 40));
    assert!(irq.level_triggered && irq.active_low);
    let irq = &ping.irqs[1];
    assert_eq!((irq.id, irq.ioapic, irq.pin, irq.vector), (3, 0, 1, 1), "vector defaults to the pin");
    assert!(!irq.level_triggered && !irq.active_low, "edge-triggered, active high by default");

    assert_eq!(ping.ioports.len(), 1);
    let port = &ping.ioports[0];
    assert_eq!((port.id, port.addr, port.size, port.end()), (0, 0x3f8, 8, 0x400));

    assert_eq!(ping.setvars.len(), 2);
    let setvars: Vec<_> = ping.setvars.iter().map(|s| (s.symbol.as_str(), s.region.as_str(), s.value)).collect();
    assert_eq!(setvars, [("dma_paddr", "dma", SetVarValue::Paddr), ("dma_size", "dma", SetVarValue::Size)]);

    let child = &ping.children[0];
    assert_eq!(child.name, "child");
    assert_eq!((child.child_id, child.priority, child.passive), (Some(1), 90, true));
    assert_eq!(child.stack_size, 0x2000, "default stack size");
    assert_eq!(child.program_image, PathBuf::from("/sys/demo/bin/child.elf"));

    let pong = system.pd("pong").expect("pong");
    assert_eq!((pong.priority, pong.pp), (150, true));
    assert_eq!(pong.program_image, PathBuf::from("/abs/pong.elf"));
    assert_eq!(pong.maps[0].perms, Perms { read: true, write: true, execute: true });
    assert_eq!(pong.maps[0].perms.to_string(), "rwx");

    // Channels, with protected calls resolved.
    assert_eq!(system.channels.len(), 2);
    let [a, b] = &system.channels[0].ends;
    assert_eq!((a.pd.as_str(), a.id, a.pp, a.notify), ("ping", 0, true, true), "inferred: pong has pp");
    assert_eq!((b.pd.as_str(), b.id, b.pp, b.notify), ("pong", 1, false, false));
    assert_eq!(system.channels[0].loc, Loc::new(22, 3));
    assert_eq!(a.loc, Loc::new(23, 5));
    let [a, b] = &system.channels[1].ends;
    assert_eq!((a.pd.as_str(), a.id, a.pp), ("ping", 1, false), "explicit pp=false");
    assert_eq!((b.pd.as_str(), b.id, b.pp), ("child", 0, false), "not inferred when an end sets pp");
}

#[test]
fn parse_file_reads_from_disk_and_reports_missing_files() {
    let dir = std::env::temp_dir().join(format!("sdf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("microkit.system");
    std::fs::write(&path, SYSTEM).expect("write fixture");
    let system = tools_sdf::parse_file(&path).expect("parses");
    assert_eq!(system.pd("ping").map(|pd| pd.program_image.clone()), Some(dir.join("ping.elf")));
    std::fs::remove_dir_all(&dir).ok();

    let missing = dir.join("missing.system");
    let errors = tools_sdf::parse_file(&missing).expect_err("no such file");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors.0[0].loc, Loc::NONE);
    assert!(errors.to_string().starts_with(&format!("{}: error: cannot read", missing.display())));
}
