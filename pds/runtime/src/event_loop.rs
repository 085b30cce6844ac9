//! The event loop, as libmicrokit's `handler_loop`.

use crate::pd::{flush_deferred, set_restarts, Channel, ChannelSet, Child};
use crate::Handler;
use pds_boot_spec::{badge, cspace, monitor_protocol};

/// `userData` while a protected call is unanswered.
const IN_CALL: u64 = 1;

/// Events the loop has received (notifications, protected calls, faults).
static WAKES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// How many times this PD has been woken since it started: each is at least
/// one switch into its address space, which under QEMU's TCG flushes the
/// soft TLB and the jump cache (the node's dominant cost per packet, so the
/// stats lines show it: wake-ups per request are the figure to lower).
pub fn wakes() -> u64 {
    WAKES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Runs the PD: `init`, then dispatch events forever.
///
/// All events arrive on the input capability. A badge with
/// [`badge::PROTECTED_CALL`] is a protected call (its low bits name the
/// channel) and must be answered with a reply; one with [`badge::CHILD_FAULT`]
/// is a child's fault; any other badge is a notification word whose set bits
/// are the channels (and IRQs) signalled. Replying and waiting for the next
/// event is one system call (`ReplyRecv`).
///
/// `restarts` is how many times the monitor restarted the PD (0 at
/// boot). After a restart (`pds_boot_spec::monitor_protocol`), the
/// runtime first answers the protected call its predecessor died
/// serving, if any, with `LABEL_SERVER_RESTARTED`, and once `init` is
/// done tells the monitor it is back ([`crate::serving`]; later for a PD
/// whose `Handler::SERVING_AFTER_INIT` is false). From the receipt of a protected
/// call until its reply is sent, the IPC buffer's `userData` word is 1.
///
/// `restarts` = [`monitor_protocol::STOPPED_FOR_GOOD`] means the PD is
/// stopped for good: only [`answer_stopped`] runs.
pub fn run<H: Handler>(restarts: u64) -> ! {
    if restarts == monitor_protocol::STOPPED_FOR_GOOD {
        answer_stopped();
    }
    set_restarts(restarts);
    if restarts > 0 && sel4::user_data() == IN_CALL {
        sel4::reply(crate::msginfo(monitor_protocol::LABEL_SERVER_RESTARTED, 0));
    }
    sel4::set_user_data(0);
    let mut handler = H::init();
    if H::SERVING_AFTER_INIT {
        crate::serving();
    }
    let mut reply = None;
    loop {
        flush_deferred();
        let (info, badge) = match reply.take() {
            Some(msg) => {
                // The reply goes with the next wait, in one system call,
                // which cannot fault: the call is answered from here on.
                sel4::set_user_data(0);
                sel4::reply_recv(cspace::INPUT, msg)
            }
            None => sel4::recv(cspace::INPUT),
        };
        WAKES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let id = (badge & badge::ID_MASK) as u8;
        if badge & badge::PROTECTED_CALL != 0 {
            sel4::set_user_data(IN_CALL);
            reply = Some(handler.protected(Channel::new(id), info));
        } else if badge & badge::CHILD_FAULT != 0 {
            reply = handler.fault(Child(id), info);
        } else {
            handler.notified(ChannelSet(badge));
        }
    }
}

/// A server stopped for good (`pds_boot_spec::monitor_protocol`, "Stopped
/// for good"): answers the call its predecessor died in, and every later
/// protected call, [`monitor_protocol::LABEL_SERVER_STOPPED`]; ignores
/// notifications and child faults. Runs none of the PD's own code.
fn answer_stopped() -> ! {
    let stopped = crate::msginfo(monitor_protocol::LABEL_SERVER_STOPPED, 0);
    if sel4::user_data() == IN_CALL {
        sel4::reply(stopped);
    }
    sel4::set_user_data(0);
    let (_, mut badge) = sel4::recv(cspace::INPUT);
    loop {
        badge = if badge & badge::PROTECTED_CALL != 0 {
            sel4::reply_recv(cspace::INPUT, stopped).1
        } else {
            sel4::recv(cspace::INPUT).1
        };
    }
}
