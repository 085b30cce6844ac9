//! What the monitor does with a fault message.
//!
//! The monitor's endpoint is the fault endpoint of every top-level PD
//! (children fault to their parent). The builder badges the capability of
//! the PD at index `i` of [`Spec::pds`](pds_boot_spec::Spec) with `i + 1`
//! (badge 0 means none), so the badge names the PD. A fault whose kind is
//! an unknown syscall numbered [`PANIC_SYSCALL`] is the runtime's panic
//! handler stopping the PD on purpose (it has printed the panic message);
//! any other fault is reported with its kind, address and instruction
//! pointer. Either way the monitor does not reply, so the faulting thread
//! stays stopped and every other PD runs on; then the PD's fault policy
//! ([`crate::restart`]) may start it again ([`FaultReport::decide`]).

use core::fmt;
use pds_boot_spec::{PdInfo, PANIC_SYSCALL};
use sel4::Fault;

/// The name shown for a badge that names no PD.
pub const UNKNOWN_PD: &str = "?";

/// What the monitor does with the faulting PD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// No reply, and the thread is suspended: it stays stopped, whether it
    /// faulted (blocked on its fault) or sent the fault message itself (a
    /// fake fault: its fault endpoint capability has Write, so without the
    /// suspension it could go on and flood the monitor's log). Nothing
    /// else changes.
    LeaveStopped,
    /// As `LeaveStopped`, and then its memory is reset to its image and
    /// it is started again, `delay_ns` after the fault: restart number
    /// `restart` of the PD.
    Restart { restart: u32, delay_ns: u64 },
    /// As `LeaveStopped`, for good: it faulted `faults` times in a streak
    /// ([`crate::restart`]).
    GiveUp { faults: u32 },
}

/// What happened to the PD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// The PD's runtime stopped it after a panic, at `ip`.
    Panicked { ip: u64 },
    /// Any other fault.
    Faulted {
        /// The kernel's kind of fault ([`Fault::kind_name`]).
        kind: &'static str,
        /// The faulting address (VM faults) or capability address (cap
        /// faults).
        addr: Option<u64>,
        ip: Option<u64>,
    },
}

/// The monitor's account of one fault message: which PD, what happened,
/// what it does. Its [`Display`](fmt::Display) is the line it logs (the
/// console adds `[monitor] `).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultReport<'a> {
    /// Index of the PD in `Spec::pds`, if the badge names one.
    pub pd: Option<usize>,
    /// Its name, or [`UNKNOWN_PD`].
    pub name: &'a str,
    pub what: What,
    pub action: Action,
}

/// The index in `Spec::pds` of the PD whose fault capability carries
/// `badge`, if it names one of `pd_count` PDs.
pub fn pd_index(badge: u64, pd_count: usize) -> Option<usize> {
    let index = usize::try_from(badge.checked_sub(1)?).ok()?;
    (index < pd_count).then_some(index)
}

/// Whether `fault` is a PD's runtime stopping it after a panic.
pub fn is_panic(fault: &Fault) -> bool {
    matches!(fault, Fault::UnknownSyscall { syscall, .. } if *syscall == PANIC_SYSCALL)
}

impl<'a> FaultReport<'a> {
    /// Decides about a fault received with `badge`, the PDs being `pds`.
    pub fn new(pds: &'a [PdInfo], badge: u64, fault: Fault) -> Self {
        let pd = pd_index(badge, pds.len());
        let name = pd.map_or(UNKNOWN_PD, |i| pds[i].name.as_str());
        let what = match fault {
            Fault::UnknownSyscall { fault_ip, syscall, .. } if syscall == PANIC_SYSCALL => {
                What::Panicked { ip: fault_ip }
            }
            _ => What::Faulted { kind: fault.kind_name(), addr: fault.addr(), ip: fault.ip() },
        };
        FaultReport { pd, name, what, action: Action::LeaveStopped }
    }

    /// Applies the PD's restart decision: what the monitor does, and the
    /// end of the line it logs.
    pub fn decide(&mut self, decision: crate::restart::Decision) {
        use crate::restart::Decision;
        self.action = match decision {
            Decision::Stop => Action::LeaveStopped,
            Decision::GiveUp { faults } => Action::GiveUp { faults },
            Decision::Restart { restart, delay_ns } => Action::Restart { restart, delay_ns },
        };
    }
}

/// An optional address: `0x..`, or `-` when the fault has none.
struct Hex(Option<u64>);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v:#x}"),
            None => f.write_str("-"),
        }
    }
}

impl fmt::Display for FaultReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name;
        match self.what {
            What::Panicked { ip } => write!(f, "PD '{name}' panicked (ip {ip:#x})")?,
            What::Faulted { kind, addr, ip } => {
                write!(f, "PD '{name}' faulted: {kind} at address {} ip {}", Hex(addr), Hex(ip))?
            }
        }
        match self.action {
            Action::LeaveStopped => f.write_str("; it is stopped, the others go on"),
            Action::Restart { restart, delay_ns: 0 } => write!(f, "; restarting it (restart {restart})"),
            Action::Restart { restart, delay_ns } => {
                write!(f, "; restarting it in {} ms (restart {restart})", delay_ns / 1_000_000)
            }
            Action::GiveUp { faults } => {
                write!(f, "; {faults} faults in a row: it is stopped for good, the others go on")
            }
        }
    }
}

#[cfg(test)]
mod tests;
