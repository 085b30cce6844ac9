//! The bootable root-task image: the initialiser's own segments plus one
//! segment with the boot spec and the PD images.

use crate::elf::{page_up, Program, Segment, PAGE};
use crate::plan::Plan;
use crate::Error;
use pds_boot_spec::{ImageHeader, MAGIC, SPEC_LOCATION_SYMBOL, VERSION};

/// Builds the image from the initialiser's program and the plan.
pub fn compose(mut monitor: Program, plan: &Plan) -> Result<Vec<u8>, Error> {
    let spec = plan.spec.encode();
    let data_offset = page_up((ImageHeader::SIZE + spec.len()) as u64);
    let header = ImageHeader {
        magic: MAGIC,
        version: VERSION,
        spec_len: spec.len() as u32,
        data_offset,
        data_len: plan.data.len() as u64,
    };
    let mut segment = header.to_bytes().to_vec();
    segment.extend_from_slice(&spec);
    segment.resize(data_offset as usize, 0);
    segment.extend_from_slice(&plan.data);

    // Right after the initialiser's last page, leaving one page unmapped.
    let vaddr = page_up(monitor.extent().1) + PAGE;
    let location: Vec<u8> = [vaddr, segment.len() as u64].iter().flat_map(|w| w.to_le_bytes()).collect();
    monitor.patch(SPEC_LOCATION_SYMBOL, &location).map_err(|e| {
        Error::other(format!("{}: {e}: is this the initialiser (monitor) program?", monitor.path.display()))
    })?;
    let mut segments = monitor.segments.clone();
    segments.push(Segment { vaddr, mem_size: segment.len() as u64, data: segment, writable: false, executable: false });
    Ok(crate::elf::write_executable(monitor.entry, &segments))
}
