extern crate std;

use super::*;
use std::string::ToString;

const fn at(bus: u8, device: u8, function: u8) -> Address {
    Address { bus, device, function }
}

#[test]
fn addresses_print_as_lspci_does() {
    assert_eq!(at(0, 3, 0).to_string(), "00:03.0");
    assert_eq!(at(0x1a, 0x1f, 7).to_string(), "1a:1f.7");
}

#[test]
fn config_address_packs_bus_device_function_and_register() {
    assert_eq!(config_address(at(0, 0, 0), 0), 0x8000_0000);
    assert_eq!(config_address(at(1, 3, 2), COMMAND), 0x8001_1a04);
    // Byte offsets select their 32-bit register.
    assert_eq!(config_address(at(0, 3, 0), INTERRUPT_LINE + 1), config_address(at(0, 3, 0), INTERRUPT_LINE));
    assert_eq!(config_address(at(0xff, 31, 7), 0xff), 0x80ff_fffc);
}

#[test]
fn ids_and_headers_decode() {
    assert!(is_absent(0xffff_ffff));
    assert!(!is_absent(0x1041_1af4));
    assert_eq!(ids(0x1041_1af4), (0x1af4, 0x1041));
    assert_eq!(Header::from_register(0x0000_0000), Header { bridge: false, multi_function: false });
    assert_eq!(Header::from_register(0x0080_0000), Header { bridge: false, multi_function: true });
    assert_eq!(Header::from_register(0x0081_0000), Header { bridge: true, multi_function: true });
    assert_eq!(Header::from_register(0x0001_0000), Header { bridge: true, multi_function: false });
    // Primary bus 0, secondary 1, subordinate 2.
    assert_eq!(secondary_bus(0x0002_0100), 1);
}

#[test]
fn devices_are_found_by_vendor_device_and_instance_in_bus_order() {
    let present = [
        (at(0, 1, 0), 0x8086, 0x7000),
        (at(0, 3, 0), 0x1af4, 0x1041),
        (at(0, 4, 0), 0x1af4, 0x1042),
        (at(0, 5, 0), 0x1af4, 0x1041),
    ];
    assert_eq!(find(&present, 0x1af4, 0x1041, 0), Some(at(0, 3, 0)));
    assert_eq!(find(&present, 0x1af4, 0x1041, 1), Some(at(0, 5, 0)));
    assert_eq!(find(&present, 0x1af4, 0x1041, 2), None);
    assert_eq!(find(&present, 0x1af4, 0x1042, 0), Some(at(0, 4, 0)));
    assert_eq!(find(&present, 0x1af4, 0x1043, 0), None);
    assert_eq!(find(&[], 0x1af4, 0x1041, 0), None);
}

#[test]
fn bars_are_decoded_and_sized() {
    assert_eq!(BarKind::from_register(0xc001), BarKind::Io);
    assert_eq!(BarKind::from_register(0xfebf_0000), BarKind::Memory32);
    assert_eq!(BarKind::from_register(0xfe00_000c), BarKind::Memory64);
    // A 16 KiB 32-bit BAR at 0xfebf0000.
    assert_eq!(bar_base_and_size(0xfebf_0000, None, 0xffff_c000, None), (0xfebf_0000, 0x4000));
    // A 16 KiB 64-bit prefetchable BAR above 4 GiB.
    assert_eq!(bar_base_and_size(0xfe00_000c, Some(0x1), 0xffff_c00c, Some(0xffff_ffff)), (0x1_fe00_0000, 0x4000));
    // An 8 GiB 64-bit BAR: the size needs the high mask.
    assert_eq!(bar_base_and_size(0x0000_000c, Some(0x4), 0x0000_000c, Some(0xffff_fffe)), (0x4_0000_0000, 1 << 33));
    assert!(bar_fits(0xfebf_0000, 0x4000, 0x4000));
    assert!(!bar_fits(0xfebf_0000, 0x2000, 0x4000));
    assert!(!bar_fits(0, 0x4000, 0x1000));
}

#[test]
fn drivers_get_memory_decoding_bus_mastering_and_interrupts() {
    assert_eq!(driver_command(0x0000), COMMAND_MEMORY | COMMAND_BUS_MASTER);
    assert_eq!(driver_command(0x0401), 0x0001 | COMMAND_MEMORY | COMMAND_BUS_MASTER);
    assert_eq!(sizing_command(0x0007), 0x0005);
}
