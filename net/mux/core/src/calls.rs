//! Protected calls from the clients, boot claims, and the logs.

use core::fmt;
use lib_net_protocol::FrameAssembler;

use net_filter::{Filter, FilterError, FilterId, FilterKind, Grant, Owner, Table};
use net_mux_api::{encode_reply, MuxError, MuxStats, NodeInfo, Reply, ReplyMessage, Request, MAX_FILTERS_PER_CLIENT};
use net_packet::Malformed;

use crate::{Client, LogSink, Mux, SharedMemory, TxDrop, FILTER_SLOTS};

fn kind_name(kind: FilterKind) -> &'static str {
    match kind {
        FilterKind::Exclusive => "exclusive",
        FilterKind::Copy => "copy",
    }
}

/// Why a claim was refused, for the log.
struct Refusal<'t> {
    error: FilterError,
    table: &'t Table<FILTER_SLOTS>,
    names: &'t dyn Fn(Owner) -> &'t str,
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error {
            FilterError::Inconsistent => write!(f, "inconsistent (matches nothing)"),
            FilterError::OutOfGrant => write!(f, "outside its grant"),
            FilterError::CopyNotPrivileged => write!(f, "copy filter without the copy privilege"),
            FilterError::Overlaps { with } => match self.table.filters().find(|i| i.id == with) {
                Some(other) => {
                    write!(f, "overlaps {}'s `{}` (id {:#x})", (self.names)(other.owner), other.filter, with.to_raw())
                }
                None => write!(f, "overlaps filter {:#x}", with.to_raw()),
            },
            FilterError::Full => write!(f, "filter table full"),
            FilterError::NoSuchFilter => write!(f, "no such filter"),
            FilterError::NotOwner => write!(f, "not its filter"),
            FilterError::QuotaExceeded => write!(f, "holds {MAX_FILTERS_PER_CLIENT} filters already (its quota)"),
        }?;
        write!(f, " (error {})", self.error.code())
    }
}

/// Lines a client's calls may log in a second: one full Stats report (a
/// line per filter, the node's, one per client) fits, with room to spare.
pub const LOG_LINES_PER_SECOND: u32 = (FILTER_SLOTS + 1 + net_config::MAX_CLIENTS + 7) as u32;

/// A client's log budget: windows of a second, each starting at the first
/// line logged in it, with at most [`LOG_LINES_PER_SECOND`] lines. The
/// clock (see [`Mux::set_clock`]) is read at a window's first line and
/// when its budget is spent; without a clock the budget never refills.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LogBudget {
    window_start: Option<u64>,
    used: u32,
    /// Lines suppressed in the current window, not yet summarized.
    suppressed: u64,
    suppressed_total: u64,
}

impl LogBudget {
    /// Whether a line may be logged now: `Some(n)` with `n` lines
    /// suppressed before it (to summarize first), or `None` (suppressed
    /// and counted).
    fn take(&mut self, clock: Option<fn() -> u64>) -> Option<u64> {
        let now = || clock.map(|c| c());
        if self.used == 0 && self.window_start.is_none() {
            self.window_start = now().or(Some(0));
        }
        if self.used >= LOG_LINES_PER_SECOND {
            let over = match (now(), self.window_start) {
                (Some(now), Some(start)) => now.saturating_sub(start) >= 1_000_000_000,
                _ => false,
            };
            if !over {
                self.suppressed += 1;
                self.suppressed_total += 1;
                return None;
            }
            self.window_start = now();
            self.used = 0;
        }
        self.used += 1;
        Some(core::mem::take(&mut self.suppressed))
    }
}

/// Non-zero counters as `name n, name n`, or `none`.
struct NonZero<'c> {
    counters: &'c [u64],
    name: fn(usize) -> &'static str,
}

impl fmt::Display for NonZero<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (i, &n) in self.counters.iter().enumerate().filter(|(_, &n)| n != 0) {
            write!(f, "{}{} {}", if any { ", " } else { "" }, (self.name)(i), n)?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

fn malformed_name(index: usize) -> &'static str {
    Malformed::ALL.get(index).map_or("?", |reason| reason.name())
}

impl<M: SharedMemory> Mux<'_, M> {
    /// Answers `request` from client `n` (see [`crate::client_of_channel`]).
    /// An unknown caller gets [`MuxError::BadRequest`]; Install and Remove
    /// the filter table's refusal, if any (a refused install is counted
    /// and logged); Stats also logs the table ([`Mux::report`]).
    ///
    /// What a call logs is limited per client ([`LogBudget`]): at most
    /// [`LOG_LINES_PER_SECOND`] lines in a second, the rest counted and
    /// summarized in one line when the client may log again, so no client
    /// can flood the console (which every PD shares) with calls.
    pub fn call(&mut self, n: usize, request: &Request, log: &mut LogSink<'_>) -> Result<Reply, MuxError> {
        let Some(Some(client)) = self.clients.get(n) else {
            return Err(MuxError::BadRequest);
        };
        let config = client.config;
        let clock = self.clock;
        let mut budget = self.log_budgets[n];
        let result = {
            let mut limited = |args: fmt::Arguments<'_>| {
                if let Some(suppressed) = budget.take(clock) {
                    if suppressed > 0 {
                        log(format_args!(
                            "{}: {suppressed} log lines of its calls suppressed (over {LOG_LINES_PER_SECOND} a second)",
                            config.name()
                        ));
                    }
                    log(args);
                }
            };
            self.call_unlimited(n, request, &mut limited)
        };
        self.log_budgets[n] = budget;
        result
    }

    fn call_unlimited(&mut self, n: usize, request: &Request, log: &mut LogSink<'_>) -> Result<Reply, MuxError> {
        match *request {
            Request::Stats => {
                self.report(log);
                Ok(Reply::Stats(self.stats_of(n)))
            }
            Request::Install { filter, kind } => Ok(Reply::Installed(self.install(n, filter, kind, log)?)),
            Request::Remove(id) => {
                let owner = Owner::new(n).ok_or(MuxError::BadRequest)?;
                self.table.remove(owner, id)?;
                Ok(Reply::Removed)
            }
            Request::Node => Ok(Reply::Node(NodeInfo { mac: self.mac.0, address: self.node, offloads: self.offloads })),
            Request::Attach => {
                self.attach(n, log);
                Ok(Reply::Node(NodeInfo { mac: self.mac.0, address: self.node, offloads: self.offloads }))
            }
        }
    }

    /// Client `n` starts (`net-mux-api`, Attach): on every Attach but its
    /// first, forget its previous life. Its filters go and its boot
    /// claims come back; its queues are emptied (it makes its handles
    /// after this call returns, so it reads the zeros); its frame being
    /// assembled is dropped; its frames at the driver no longer return
    /// their descriptors to it (the slots still come back).
    pub(crate) fn attach(&mut self, n: usize, log: &mut LogSink<'_>) {
        let Some(Some(client)) = self.clients.get_mut(n) else { return };
        if !client.attached {
            client.attached = true;
            return;
        }
        client.port.rx.reset();
        client.port.tx.reset();
        client.assembler = FrameAssembler::default();
        client.in_place_held = 0;
        client.produced = false;
        let config = client.config;
        let name = config.name();
        let mut forgotten = 0;
        for held in self.driver.held.iter_mut() {
            if held.is_some_and(|(owner, _)| usize::from(owner) == n) {
                *held = None;
                forgotten += 1;
            }
        }
        let removed = Owner::new(n).map_or(0, |owner| self.table.remove_all(owner));
        self.install_boot_claims(n, log);
        log(format_args!(
            "client {n} {name} attached again (restarted): its queues emptied, {removed} filters removed and its boot claims installed again, {forgotten} of its frames at the driver forgotten"
        ));
    }

    /// Log lines of client `n`'s calls suppressed so far (all windows).
    pub fn log_lines_suppressed(&self, n: usize) -> u64 {
        self.log_budgets.get(n).map_or(0, |b| b.suppressed_total)
    }

    /// Answers the protected call with `label` and registers `words` from
    /// client `n`: decodes it ([`Request::decode`]; a malformed one is
    /// answered [`MuxError::BadRequest`]), [`calls`](Self::call) and
    /// encodes the reply ([`encode_reply`]). What the PD does with each
    /// call.
    pub fn answer(&mut self, n: usize, label: u64, words: &[u64], log: &mut LogSink<'_>) -> ReplyMessage {
        let result = match Request::decode(label, words) {
            Ok(request) => self.call(n, &request, log),
            Err(bad) => Err(bad.into()),
        };
        encode_reply(&result)
    }

    /// Installs `filter` for client `n` inside its grant and its quota (at
    /// most [`MAX_FILTERS_PER_CLIENT`] filters held, checked first); a
    /// refusal is counted and logged with the client's name, the filter and
    /// why.
    fn install(
        &mut self,
        n: usize,
        filter: Filter,
        kind: FilterKind,
        log: &mut LogSink<'_>,
    ) -> Result<FilterId, FilterError> {
        let Some(Some(client)) = self.clients.get(n) else { return Err(FilterError::NotOwner) };
        let grant = Grant { filters: client.config.grant(), may_copy: client.config.may_copy };
        let owner = client.owner;
        let result = if self.table.count_of(owner) >= MAX_FILTERS_PER_CLIENT {
            Err(FilterError::QuotaExceeded)
        } else {
            self.table.install(owner, &grant, filter, kind)
        };
        if let Err(error) = result {
            if let Some(Some(client)) = self.clients.get_mut(n) {
                client.counters.claims_refused += 1;
            }
            let names = |owner: Owner| self.client_name(owner);
            let why = Refusal { error, table: &self.table, names: &names };
            log(format_args!(
                "refused {}'s claim `{}` ({}): {}",
                self.client_name(owner),
                filter,
                kind_name(kind),
                why
            ));
        }
        result
    }

    /// Installs client `n`'s claims from the description.
    pub(crate) fn install_boot_claims(&mut self, n: usize, log: &mut LogSink<'_>) {
        let Some(Some(client)) = self.clients.get(n) else { return };
        let claims = client.config.claims;
        let count = client.config.claims().len();
        for claim in &claims[..count] {
            let _ = self.install(n, claim.filter, claim.kind, log);
        }
    }

    /// The counters [`Request::Stats`] returns to client `n`.
    pub fn stats_of(&self, n: usize) -> MuxStats {
        let table = self.table.counters();
        let own = self.client_counters(n).unwrap_or_default();
        MuxStats {
            rx_delivered: own.rx_delivered,
            rx_no_buffer: own.rx_no_buffer,
            tx_allowed: own.tx_allowed,
            tx_refused: own.tx_refused_total(),
            claims_refused: own.claims_refused,
            malformed: table.malformed_total(),
            no_match: table.no_match,
            unclaimed_ipv4: table.unclaimed_ipv4,
            tx_in_place_bytes: own.tx_in_place_bytes,
        }
    }

    /// Logs the node and its clients with their filters, one line each: at
    /// start.
    pub(crate) fn log_node(&self, log: &mut LogSink<'_>) {
        let node = &self.node;
        let mac = self.mac.0;
        log(format_args!(
            "node {}/{} gateway {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, {} clients",
            net_filter::Dotted(node.ipv4),
            node.prefix_len,
            node.gateway.map_or(net_filter::Dotted(net_packet::Ipv4Address::UNSPECIFIED), net_filter::Dotted),
            mac[0],
            mac[1],
            mac[2],
            mac[3],
            mac[4],
            mac[5],
            self.client_count
        ));
        for (n, client) in self.clients.iter().enumerate() {
            let Some(client) = client else { continue };
            log(format_args!("client {n} {}: {}", client.config.name(), ClientFilters { client, table: &self.table }));
        }
    }

    /// Logs the filter table with hits, the drop counters, and each
    /// client's counters (for [`Request::Stats`]).
    pub fn report(&self, log: &mut LogSink<'_>) {
        for installed in self.table.filters() {
            log(format_args!(
                "filter {:#x} {}: {} ({}) hits {}",
                installed.id.to_raw(),
                self.client_name(installed.owner),
                installed.filter,
                kind_name(installed.kind),
                installed.hits
            ));
        }
        let table = self.table.counters();
        let driver = &self.driver.counters;
        log(format_args!(
            "rx {} tx {} driver errors {}; not for the node {}: {}; no match {}, unclaimed ipv4 {}; malformed {}: {}",
            driver.rx_frames,
            driver.tx_frames,
            driver.errors,
            driver.rx_refused.iter().sum::<u64>(),
            NonZero { counters: &driver.rx_refused, name: crate::RxRefused::name_of },
            table.no_match,
            table.unclaimed_ipv4,
            table.malformed_total(),
            NonZero { counters: &table.malformed, name: malformed_name }
        ));
        for client in self.clients.iter().flatten() {
            let c = &client.counters;
            log(format_args!(
                "{}: rx delivered {} no buffer {}; tx allowed {} refused {} ({}); in place {} bytes; claims refused {}; queue errors {}",
                client.config.name(),
                c.rx_delivered,
                c.rx_no_buffer,
                c.tx_allowed,
                c.tx_refused_total(),
                NonZero { counters: &c.tx_refused, name: TxDrop::name_of },
                c.tx_in_place_bytes,
                c.claims_refused,
                c.queue_errors
            ));
        }
    }
}

/// A client's installed filters, as `arp, tcp dst 80 (copy)`, with its
/// role for the unclaimed IPv4 traffic.
struct ClientFilters<'c, 'a, M> {
    client: &'c Client<'a, M>,
    table: &'c Table<FILTER_SLOTS>,
}

impl<M> fmt::Display for ClientFilters<'_, '_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for installed in self.table.filters().filter(|i| i.owner == self.client.owner) {
            f.write_str(if any { ", " } else { "" })?;
            write!(f, "{}", installed.filter)?;
            if installed.kind == FilterKind::Copy {
                f.write_str(" (copy)")?;
            }
            any = true;
        }
        if self.client.config.unclaimed_ipv4 {
            write!(f, "{}unclaimed ipv4", if any { ", " } else { "" })?;
            any = true;
        }
        if !any {
            f.write_str("no filters")?;
        }
        Ok(())
    }
}
