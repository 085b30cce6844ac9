//! A marshalled object invocation and the generic way to perform one.

use crate::invocations::{InvocationLabel, MAX_INVOCATION_WORDS};
use crate::{call, set_cap, set_mr, CPtr, Error, MessageInfo, Result, Word, MSG_MAX_EXTRA_CAPS};

/// What an invocation sends: label, message words and extra caps, exactly as
/// libsel4's generated stubs pack them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub label: InvocationLabel,
    pub mrs: [Word; MAX_INVOCATION_WORDS],
    pub len: usize,
    pub caps: [CPtr; MSG_MAX_EXTRA_CAPS],
    pub num_caps: usize,
}

impl Invocation {
    pub fn new(label: InvocationLabel, mrs: &[Word], caps: &[CPtr]) -> Self {
        let mut inv = Invocation {
            label,
            mrs: [0; MAX_INVOCATION_WORDS],
            len: mrs.len(),
            caps: [0; MSG_MAX_EXTRA_CAPS],
            num_caps: caps.len(),
        };
        inv.mrs[..mrs.len()].copy_from_slice(mrs);
        inv.caps[..caps.len()].copy_from_slice(caps);
        inv
    }

    /// The message words sent.
    pub fn mrs(&self) -> &[Word] {
        &self.mrs[..self.len]
    }

    /// The extra caps sent.
    pub fn caps(&self) -> &[CPtr] {
        &self.caps[..self.num_caps]
    }

    /// The message info of the request.
    pub fn info(&self) -> MessageInfo {
        MessageInfo::new(self.label as Word, 0, self.num_caps as Word, self.len as Word)
    }
}

/// Send `inv` to the object `service` with Call and return the reply's
/// message info; the reply label is the error (0 for success). Out
/// parameters are then in the message registers (`get_mr`).
pub fn invoke(service: CPtr, inv: &Invocation) -> Result<MessageInfo> {
    for (i, &c) in inv.caps().iter().enumerate() {
        set_cap(i, c);
    }
    for (i, &w) in inv.mrs().iter().enumerate() {
        set_mr(i, w);
    }
    let reply = call(service, inv.info());
    match Error::from_label(reply.label()) {
        None => Ok(reply),
        Some(e) => Err(e),
    }
}
