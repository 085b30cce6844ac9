//! The IPC buffer. On x86_64 the kernel points the GS base at the current
//! thread's IPC buffer, so it is reached through `%gs` with no pointer to
//! keep. Host unit tests (`cfg(test)`) use a thread-local buffer instead.

use crate::{CPtr, MessageInfo, Word, MSG_MAX_EXTRA_CAPS, MSG_MAX_LENGTH};

/// `seL4_IPCBuffer`, laid out as the kernel's `shared_types.h`.
#[repr(C)]
#[derive(Clone)]
pub struct IpcBuffer {
    pub tag: MessageInfo,
    pub msg: [Word; MSG_MAX_LENGTH],
    pub user_data: Word,
    pub caps_or_badges: [Word; MSG_MAX_EXTRA_CAPS],
    pub receive_cnode: CPtr,
    pub receive_index: CPtr,
    pub receive_depth: Word,
}

const MSG: usize = core::mem::offset_of!(IpcBuffer, msg);
const CAPS: usize = core::mem::offset_of!(IpcBuffer, caps_or_badges);
const USER_DATA: usize = core::mem::offset_of!(IpcBuffer, user_data);
const RECV_CNODE: usize = core::mem::offset_of!(IpcBuffer, receive_cnode);
const RECV_INDEX: usize = core::mem::offset_of!(IpcBuffer, receive_index);
const RECV_DEPTH: usize = core::mem::offset_of!(IpcBuffer, receive_depth);

/// Set message register `i`.
pub fn set_mr(i: usize, v: Word) {
    assert!(i < MSG_MAX_LENGTH);
    backend::write(MSG + 8 * i, v);
}

/// Message register `i`.
pub fn get_mr(i: usize) -> Word {
    assert!(i < MSG_MAX_LENGTH);
    backend::read(MSG + 8 * i)
}

/// The IPC buffer's `userData` word: the thread's own, never read or
/// written by the kernel.
pub fn user_data() -> Word {
    backend::read(USER_DATA)
}

/// Sets the IPC buffer's `userData` word.
pub fn set_user_data(v: Word) {
    backend::write(USER_DATA, v);
}

/// Extra cap `i` of the next message sent.
pub fn set_cap(i: usize, c: CPtr) {
    assert!(i < MSG_MAX_EXTRA_CAPS);
    backend::write(CAPS + 8 * i, c);
}

/// Badge `i` of unwrapped caps in the message just received.
pub fn get_badge(i: usize) -> Word {
    assert!(i < MSG_MAX_EXTRA_CAPS);
    backend::read(CAPS + 8 * i)
}

/// Where a received cap is stored: slot `index` at `depth` in CNode `root`.
pub fn set_receive_path(root: CPtr, index: CPtr, depth: Word) {
    backend::write(RECV_CNODE, root);
    backend::write(RECV_INDEX, index);
    backend::write(RECV_DEPTH, depth);
}

#[cfg(not(test))]
mod backend {
    use crate::Word;

    pub fn read(offset: usize) -> Word {
        let v: Word;
        // SAFETY: the kernel sets GS base to this thread's IPC buffer, which
        // is mapped for the thread's whole life; callers bound `offset` to
        // the buffer (see the asserts above).
        unsafe {
            core::arch::asm!("mov {v}, qword ptr gs:[{o}]", v = out(reg) v, o = in(reg) offset, options(nostack, readonly, preserves_flags))
        };
        v
    }

    pub fn write(offset: usize, v: Word) {
        // SAFETY: as for `read`; the IPC buffer is the thread's own memory.
        unsafe {
            core::arch::asm!("mov qword ptr gs:[{o}], {v}", v = in(reg) v, o = in(reg) offset, options(nostack, preserves_flags))
        };
    }
}

#[cfg(test)]
mod backend {
    use crate::Word;
    use std::cell::RefCell;

    const WORDS: usize = core::mem::size_of::<super::IpcBuffer>() / 8;
    std::thread_local!(static BUFFER: RefCell<[Word; WORDS]> = const { RefCell::new([0; WORDS]) });

    pub fn read(offset: usize) -> Word {
        BUFFER.with(|b| b.borrow()[offset / 8])
    }

    pub fn write(offset: usize, v: Word) {
        BUFFER.with(|b| b.borrow_mut()[offset / 8] = v)
    }
}
