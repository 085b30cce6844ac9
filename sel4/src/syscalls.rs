//! System calls (x86_64 `syscall` instruction).
//!
//! Registers: `rdx` syscall number, `rdi` capability or badge, `rsi` message
//! info, `r10 r8 r9 r15` message registers 0-3; the kernel clobbers `rcx`
//! and `r11` and zeroes `rsp`, so `rsp` is kept in `r12` across the call
//! (libsel4 uses `rbx`, which Rust `asm!` cannot name). Like libsel4, the
//! wrappers move MR0-3 between these registers and the IPC buffer, so
//! callers use `set_mr`/`get_mr` whatever the message length.

use crate::constants::syscall_number as sys;
use crate::{get_mr, set_mr, Badge, CPtr, MessageInfo, Word};

/// The raw system call. Returns (rdi, rsi) and updates `mrs` in place.
#[inline(always)]
fn raw(number: i64, dest: Word, info: Word, mrs: &mut [Word; 4]) -> (Word, Word) {
    let (badge, out_info);
    // SAFETY: the `syscall` instruction enters the seL4 kernel, which
    // preserves every register except those listed as outputs here (rcx and
    // r11 by the instruction, rsp zeroed: restored from r12). It touches user
    // memory only through the IPC buffer, hence no `nomem`.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "syscall",
            "mov rsp, r12",
            inout("rdx") number => _,
            inout("rdi") dest => badge,
            inout("rsi") info => out_info,
            inout("r10") mrs[0],
            inout("r8") mrs[1],
            inout("r9") mrs[2],
            inout("r15") mrs[3],
            out("rcx") _,
            out("r11") _,
            out("r12") _,
        );
    }
    (badge, out_info)
}

fn load_mrs() -> [Word; 4] {
    [get_mr(0), get_mr(1), get_mr(2), get_mr(3)]
}

fn store_mrs(mrs: &[Word; 4]) {
    for (i, &w) in mrs.iter().enumerate() {
        set_mr(i, w);
    }
}

/// A send-only syscall: registers come from MR0-3, nothing comes back.
fn send_only(number: i64, dest: CPtr, info: MessageInfo) {
    let mut mrs = load_mrs();
    raw(number, dest, info.0, &mut mrs);
}

/// A syscall that receives: MR0-3 go back into the IPC buffer.
fn send_recv(number: i64, dest: CPtr, info: MessageInfo) -> (MessageInfo, Badge) {
    let mut mrs = load_mrs();
    let (badge, out) = raw(number, dest, info.0, &mut mrs);
    store_mrs(&mrs);
    (MessageInfo(out), badge)
}

/// Send a message; blocks until it is delivered.
pub fn send(dest: CPtr, info: MessageInfo) {
    send_only(sys::SEND, dest, info)
}

/// Send a message if the receiver is waiting; drop it otherwise.
pub fn nb_send(dest: CPtr, info: MessageInfo) {
    send_only(sys::NB_SEND, dest, info)
}

/// Send and wait for the reply (object invocations use this).
pub fn call(dest: CPtr, info: MessageInfo) -> MessageInfo {
    send_recv(sys::CALL, dest, info).0
}

/// Wait for a message or signal on `src`.
pub fn recv(src: CPtr) -> (MessageInfo, Badge) {
    send_recv(sys::RECV, src, MessageInfo(0))
}

/// Receive without blocking: the label/badge are 0 if nothing was pending.
pub fn nb_recv(src: CPtr) -> (MessageInfo, Badge) {
    send_recv(sys::NB_RECV, src, MessageInfo(0))
}

/// Reply to the last caller.
pub fn reply(info: MessageInfo) {
    send_only(sys::REPLY, 0, info)
}

/// Reply to the last caller, then wait on `src`.
pub fn reply_recv(src: CPtr, info: MessageInfo) -> (MessageInfo, Badge) {
    send_recv(sys::REPLY_RECV, src, info)
}

/// Give up the rest of the time slice.
pub fn yield_now() {
    raw(sys::YIELD, 0, 0, &mut [0; 4]);
}

/// Signal a notification.
pub fn signal(dest: CPtr) {
    raw(sys::SEND, dest, MessageInfo::new(0, 0, 0, 0).0, &mut [0; 4]);
}

/// Wait on a notification; returns the accumulated badge bits.
pub fn wait(src: CPtr) -> Badge {
    raw(sys::RECV, src, 0, &mut [0; 4]).0
}

/// Poll a notification; returns 0 if it was not signalled.
pub fn poll(src: CPtr) -> Badge {
    raw(sys::NB_RECV, src, 0, &mut [0; 4]).0
}

/// Whether the kernel was built with its debug syscalls.
pub const DEBUG_BUILD: bool = cfg!(sel4_debug_build);
/// Whether the kernel prints: `debug_put_char` reaches its serial console.
pub const PRINTING: bool = cfg!(sel4_printing);

/// Print a character on the kernel's serial console. A kernel built without
/// printing has no console: the character is dropped (a serial driver PD
/// provides the console then).
pub fn debug_put_char(c: u8) {
    #[cfg(sel4_printing)]
    raw(sys::DEBUG_PUT_CHAR, c as Word, 0, &mut [0; 4]);
    #[cfg(not(sel4_printing))]
    let _ = c;
}

/// Stop the whole system. A release kernel cannot: the calling thread then
/// gives up the processor forever instead.
pub fn debug_halt() -> ! {
    #[cfg(sel4_debug_build)]
    raw(sys::DEBUG_HALT, 0, 0, &mut [0; 4]);
    loop {
        yield_now();
    }
}

/// System call `number`, whatever the kernel was built with, `arg` in the
/// destination register and no message: for a test that checks how a
/// kernel answers a call it may not have (the red team calls the debug
/// calls on the release kernel, which must answer with an unknown-syscall
/// fault to the caller's fault handler). No PD needs it otherwise.
pub fn unchecked_syscall(number: i64, arg: Word) {
    raw(number, arg, 0, &mut [0; 4]);
}

/// Name a thread for the kernel's debug output (a no-op on release kernels).
/// The name travels as a NUL-terminated string in the message registers
/// (truncated to fit).
pub fn debug_name_thread(tcb: CPtr, name: &str) {
    if !DEBUG_BUILD {
        let _ = (tcb, name);
        return;
    }
    let bytes = name.as_bytes();
    let max = crate::MSG_MAX_LENGTH * 8 - 1;
    let len = bytes.len().min(max);
    for w in 0..(len + 1).div_ceil(8) {
        let mut word = [0u8; 8];
        for (i, b) in word.iter_mut().enumerate() {
            *b = bytes.get(w * 8 + i).copied().filter(|_| w * 8 + i < len).unwrap_or(0);
        }
        set_mr(w, Word::from_le_bytes(word));
    }
    #[cfg(sel4_debug_build)]
    raw(sys::DEBUG_NAME_THREAD, tcb, 0, &mut [0; 4]);
}
