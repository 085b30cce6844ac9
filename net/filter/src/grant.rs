//! What a protection domain may claim.

use crate::Filter;

/// The traffic a PD may claim, from the system description: a list of
/// filters, and whether it may hold copy filters (monitoring).
///
/// A claim is inside the grant when it [is within](Filter::is_within) one
/// of the grant's filters. This is sound (a claim that passes matches only
/// granted traffic) but does not combine entries: with a grant of ports
/// 8000–8009 and 8010–8019 as two filters, a claim of 8005–8015 is refused.
/// A system description that wants that claim grants 8000–8019 as one
/// filter. The check stays one linear pass over the grant, with no set
/// algebra in the demultiplexer.
#[derive(Clone, Copy, Debug)]
pub struct Grant<'a> {
    pub filters: &'a [Filter],
    /// Whether the PD may install [`FilterKind::Copy`](crate::FilterKind::Copy)
    /// filters, which see copies of other PDs' traffic.
    pub may_copy: bool,
}

impl<'a> Grant<'a> {
    /// A grant of `filters` without the copy privilege.
    pub const fn new(filters: &'a [Filter]) -> Self {
        Grant { filters, may_copy: false }
    }

    /// A grant of `filters` with the copy privilege.
    pub const fn privileged(filters: &'a [Filter]) -> Self {
        Grant { filters, may_copy: true }
    }

    /// Whether `claim` lies inside one of the granted filters.
    pub fn permits(&self, claim: &Filter) -> bool {
        self.filters.iter().any(|granted| claim.is_within(granted))
    }
}
