//! The event loop, as libmicrokit's `handler_loop`.

use crate::pd::{flush_deferred, Channel, ChannelSet, Child};
use crate::Handler;
use pds_boot_spec::{badge, cspace};

/// Runs the PD: `init`, then dispatch events forever.
///
/// All events arrive on the input capability. A badge with
/// [`badge::PROTECTED_CALL`] is a protected call (its low bits name the
/// channel) and must be answered with a reply; one with [`badge::CHILD_FAULT`]
/// is a child's fault; any other badge is a notification word whose set bits
/// are the channels (and IRQs) signalled. Replying and waiting for the next
/// event is one system call (`ReplyRecv`).
pub fn run<H: Handler>() -> ! {
    let mut handler = H::init();
    let mut reply = None;
    loop {
        flush_deferred();
        let (info, badge) = match reply.take() {
            Some(msg) => sel4::reply_recv(cspace::INPUT, msg),
            None => sel4::recv(cspace::INPUT),
        };
        let id = (badge & badge::ID_MASK) as u8;
        if badge & badge::PROTECTED_CALL != 0 {
            reply = Some(handler.protected(Channel::new(id), info));
        } else if badge & badge::CHILD_FAULT != 0 {
            reply = handler.fault(Child(id), info);
        } else {
            handler.notified(ChannelSet(badge));
        }
    }
}
