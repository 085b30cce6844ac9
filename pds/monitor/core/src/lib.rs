//! The monitor's decisions, without the kernel: the program `pds-monitor`
//! (`pds/monitor`) receives fault messages and touches PCI configuration
//! space; what those mean and what it does about them is decided here, so
//! that it runs and is tested on the host.
//!
//! - [`fault`]: which PD a fault message names, what happened (a panic or
//!   another fault), the line the monitor logs, and what it does (leaves
//!   the PD stopped, or not: see [`restart`]).
//! - [`restart`]: the fault policies and the backoff rule: whether and
//!   when a faulted PD is started again.
//! - [`caps`]: the capability self-check at boot: what the kernel can
//!   confirm about the capabilities installed, and the line the monitor
//!   prints.
//! - [`pci`]: configuration-address encoding, finding the spec's devices
//!   among those present, BAR decoding and sizing, the command register
//!   given to drivers.
//! - [`iommu`]: the devices' IOSpaces: request ids, domain ids, the
//!   IOSpace mint data, whether the machine has an IOMMU.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod caps;
pub mod fault;
pub mod iommu;
pub mod pci;
pub mod restart;
