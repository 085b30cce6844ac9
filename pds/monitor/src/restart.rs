//! Starting a faulted PD again, and making a PD fault on a test's request.
//!
//! A restart makes the PD what the initialiser made it, except for its
//! memory regions and its kernel objects (CSpace, VSpace, notification,
//! endpoint, IPC buffer), which stay as they are:
//!
//! 1. its threads are suspended (the monitor does this for every fault
//!    already: `cancelIPC` of the thread blocked on its fault also deletes
//!    the monitor's reply capability to it);
//! 2. every frame of [`pds_boot_spec::PdInfo::reset_frames`] (the writable pages of its
//!    program image, and its stack) is mapped at the scratch address,
//!    zeroed, and given back its [`Spec::fills`] (the file's bytes, with
//!    every builder patch) and [`Spec::paddr_patches`];
//! 3. each thread gets `rip` = its entry, `rsp` = its stack top, `rdi` =
//!    the number of restarts, every other register 0, and is resumed
//!    (`WriteRegisters` with `resume`, which `restart`s it). The runtime
//!    reads `rdi` (`pds_boot_spec::monitor_protocol`).
//!
//! The IPC buffer is not reset: its `userData` word says whether the PD
//! died holding an unanswered protected call, which the runtime answers
//! first.

use crate::init::{with_frame, Booted};
use pds_boot_spec::{monitor_protocol, Spec};

/// Resets the memory of PD `pd` and starts its threads at their entry
/// with `rdi` = `rdi`: the number of restarts, or
/// [`monitor_protocol::STOPPED_FOR_GOOD`]. The threads must be stopped
/// (suspended).
pub fn restart(spec: &Spec, data: &[u8], booted: &Booted, pd: usize, rdi: u64) -> Result<(), &'static str> {
    let info = spec.pds.get(pd).ok_or("no such PD")?;
    for run in &info.reset_frames {
        for frame in run.first..run.first.saturating_add(run.count) {
            reset_frame(spec, data, booted, frame)?;
        }
    }
    for thread in spec.threads.iter().filter(|t| t.pd as usize == pd) {
        let regs = sel4::UserContext { rip: thread.entry, rsp: thread.stack_top, rdi, ..Default::default() };
        let words = (core::mem::size_of::<sel4::UserContext>() / 8) as sel4::Word;
        sel4::Tcb(booted.object(thread.tcb))
            .write_registers(true, 0, words, regs)
            .map_err(|_| "could not set its registers and resume it")?;
    }
    Ok(())
}

/// Zeroes frame object `frame` and writes back what the initialiser wrote
/// into it: its fills (sorted by frame, the builder's order) and its
/// physical-address patches.
fn reset_frame(spec: &Spec, data: &[u8], booted: &Booted, frame: u32) -> Result<(), &'static str> {
    let first = spec.fills.partition_point(|f| f.frame < frame);
    let fills = spec.fills[first..].iter().take_while(|f| f.frame == frame);
    let mut result = Ok(());
    let mut patches = [(0usize, 0u64); 8];
    let mut patch_count = 0;
    for p in spec.paddr_patches.iter().filter(|p| p.frame == frame) {
        let paddr = sel4::X86Page(booted.object(p.region))
            .get_address()
            .map_err(|_| "could not read a region's physical address")?;
        if patch_count == patches.len() {
            return Err("more physical-address patches in one page than the monitor expects");
        }
        patches[patch_count] = (p.offset as usize, paddr);
        patch_count += 1;
    }
    with_frame(booted.object(frame), |page| {
        page.fill(0);
        for fill in fills {
            let src = fill.data_offset as usize..fill.data_offset as usize + fill.len as usize;
            let dst = fill.frame_offset as usize..fill.frame_offset as usize + fill.len as usize;
            match (data.get(src), page.get_mut(dst)) {
                (Some(s), Some(d)) => d.copy_from_slice(s),
                _ => result = Err("a fill is out of bounds"),
            }
        }
        for &(offset, paddr) in &patches[..patch_count] {
            match page.get_mut(offset..offset + 8) {
                Some(dst) => dst.copy_from_slice(&paddr.to_le_bytes()),
                None => result = Err("a physical-address patch is out of its page"),
            }
        }
    })
    .map_err(|_| "could not map one of its frames")?;
    result
}

/// Makes PD `pd` take a genuine VM fault: its threads' instruction pointer
/// goes to [`monitor_protocol::INJECTED_FAULT_IP`], which is never mapped,
/// and they are resumed (a thread blocked in a system call leaves it:
/// `restart` cancels its IPC). The fault then reaches the monitor like any
/// other.
pub fn inject_fault(spec: &Spec, booted: &Booted, index: usize) -> Result<(), &'static str> {
    let words = (core::mem::size_of::<sel4::UserContext>() / 8) as sel4::Word;
    for thread in spec.threads.iter().filter(|t| t.pd as usize == index) {
        let tcb = sel4::Tcb(booted.object(thread.tcb));
        let mut regs = tcb.read_registers(true, 0, words).map_err(|_| "could not read its registers")?;
        regs.rip = monitor_protocol::INJECTED_FAULT_IP;
        tcb.write_registers(true, 0, words, regs).map_err(|_| "could not write its registers")?;
    }
    Ok(())
}
