//! Decoding of fault messages delivered to a thread's fault endpoint. The
//! labels are the `seL4_Fault` tags of the `.bf`; the message-register
//! positions are the headers' `seL4_<Fault>_<Field>` enums.

use crate::{fault_label as label, fault_mr as mr, get_mr, MessageInfo, Word};

/// A fault, as reported by the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Null,
    CapFault {
        ip: Word,
        addr: Word,
        in_recv_phase: bool,
        lookup_failure_type: Word,
        bits_left: Word,
    },
    UnknownSyscall {
        fault_ip: Word,
        rsp: Word,
        flags: Word,
        syscall: Word,
        rax: Word,
    },
    UserException {
        fault_ip: Word,
        stack: Word,
        flags: Word,
        number: Word,
        code: Word,
    },
    VmFault {
        ip: Word,
        addr: Word,
        prefetch_fault: bool,
        fsr: Word,
    },
    /// A label this crate does not decode.
    Unknown(Word),
}

impl Fault {
    /// Decode a fault message just received: the label comes from `info`,
    /// the values from the message registers.
    pub fn from_message(info: MessageInfo) -> Fault {
        match info.label() {
            label::NULL_FAULT => Fault::Null,
            label::CAP_FAULT => Fault::CapFault {
                ip: get_mr(mr::CAP_FAULT_IP),
                addr: get_mr(mr::CAP_FAULT_ADDR),
                in_recv_phase: get_mr(mr::CAP_FAULT_IN_RECV_PHASE) != 0,
                lookup_failure_type: get_mr(mr::CAP_FAULT_LOOKUP_FAILURE_TYPE),
                bits_left: get_mr(mr::CAP_FAULT_BITS_LEFT),
            },
            label::UNKNOWN_SYSCALL => Fault::UnknownSyscall {
                fault_ip: get_mr(mr::UNKNOWN_SYSCALL_FAULT_IP),
                rsp: get_mr(mr::UNKNOWN_SYSCALL_SP),
                flags: get_mr(mr::UNKNOWN_SYSCALL_FLAGS),
                syscall: get_mr(mr::UNKNOWN_SYSCALL_SYSCALL),
                rax: get_mr(mr::UNKNOWN_SYSCALL_RAX),
            },
            label::USER_EXCEPTION => Fault::UserException {
                fault_ip: get_mr(mr::USER_EXCEPTION_FAULT_IP),
                stack: get_mr(mr::USER_EXCEPTION_SP),
                flags: get_mr(mr::USER_EXCEPTION_FLAGS),
                number: get_mr(mr::USER_EXCEPTION_NUMBER),
                code: get_mr(mr::USER_EXCEPTION_CODE),
            },
            label::VM_FAULT => Fault::VmFault {
                ip: get_mr(mr::VM_FAULT_IP),
                addr: get_mr(mr::VM_FAULT_ADDR),
                prefetch_fault: get_mr(mr::VM_FAULT_PREFETCH_FAULT) != 0,
                fsr: get_mr(mr::VM_FAULT_FSR),
            },
            other => Fault::Unknown(other),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::Null => "null fault",
            Fault::CapFault { .. } => "cap fault",
            Fault::UnknownSyscall { .. } => "unknown syscall",
            Fault::UserException { .. } => "user exception",
            Fault::VmFault { .. } => "VM fault",
            Fault::Unknown(_) => "unknown fault",
        }
    }

    /// The faulting instruction pointer.
    pub fn ip(&self) -> Option<Word> {
        match *self {
            Fault::CapFault { ip, .. } | Fault::VmFault { ip, .. } => Some(ip),
            Fault::UnknownSyscall { fault_ip, .. } | Fault::UserException { fault_ip, .. } => Some(fault_ip),
            Fault::Null | Fault::Unknown(_) => None,
        }
    }

    /// The faulting address (VM faults) or capability address (cap faults).
    pub fn addr(&self) -> Option<Word> {
        match *self {
            Fault::CapFault { addr, .. } | Fault::VmFault { addr, .. } => Some(addr),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fault_mr, set_mr};

    #[test]
    fn decodes_vm_fault_from_message_registers() {
        set_mr(fault_mr::VM_FAULT_IP, 0x401000);
        set_mr(fault_mr::VM_FAULT_ADDR, 0xdead0000);
        set_mr(fault_mr::VM_FAULT_PREFETCH_FAULT, 0);
        set_mr(fault_mr::VM_FAULT_FSR, 6);
        let f = Fault::from_message(MessageInfo::new(crate::fault_label::VM_FAULT, 0, 0, 4));
        assert_eq!(f, Fault::VmFault { ip: 0x401000, addr: 0xdead0000, prefetch_fault: false, fsr: 6 });
        assert_eq!((f.ip(), f.addr(), f.kind_name()), (Some(0x401000), Some(0xdead0000), "VM fault"));
        assert_eq!(Fault::from_message(MessageInfo::new(42, 0, 0, 0)), Fault::Unknown(42));
    }
}
