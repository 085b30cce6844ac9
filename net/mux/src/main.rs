//! net-mux: the packet demultiplexer PD. Glue between the runtime and the
//! [`net_mux_core`] library: decodes the network configuration the builder
//! wrote, asks the driver for its MAC address, maps the driver's and the
//! clients' regions and queues, and calls [`Mux::handle`] on every
//! notification and [`Mux::answer`] on every protected call.
//!
//! Channels: [`MUX_DRIVER_CHANNEL`] (0) is the network driver, which
//! this PD notifies and calls ([`lib_net_protocol::Driver`]); client `n` is
//! on [`mux_client_channel`]`(n)` and may call this PD (the calls of
//! `net_mux_api`, answered by [`Mux::answer`]); the channel named `timer`
//! (`pp="true"` on this end) is the timer PD, whose `NOW` is the clock of
//! the answer and log rate limits ([`Mux::set_clock`]; called only when a
//! limit must decide).
//! The driver's regions are mapped as the description says (setvars
//! below); the clients' at [`ClientRegion::mux_vaddr`], where the builder's
//! `<network>` expansion maps them.
#![no_std]
#![no_main]

use core::fmt;

use drivers_timer_api::Timer;
use lib_net_protocol::{Driver, CLIENT_RX_DATA_SIZE, RX_DATA_SIZE, TX_PAYLOAD_SIZE, TX_SPACE_LEN};
use lib_queue::{ReceiverQueues, SenderQueues};
use net_config::{mux_client_channel, ClientRegion, NetConfig, CONFIG_BYTES, MUX_DRIVER_CHANNEL};
use net_mux_api::{MuxError, RequestMessage};
use net_mux_core::{client_of_channel, ClientPort, DriverPort, Mux, SharedMemory};
use pds_runtime::{log, Channel, ChannelSet, Handler, MemoryRegion, MessageInfo};

const DRIVER: Driver = Driver::new(Channel::new(MUX_DRIVER_CHANNEL));

// The timer, by the name of this PD's channel end in the description.
pds_runtime::channel!(TIMER_CHANNEL = "timer", call);
static TIMER: Timer = Timer::named(&TIMER_CHANNEL);

/// The clock of the rate limits: the timer PD's monotonic nanoseconds.
fn now() -> u64 {
    TIMER.now()
}

pds_runtime::setvar_bytes!(__net_config, CONFIG_BYTES);
// The driver's regions (net-protocol), as the driver's client.
pds_runtime::setvar!(rx_data, r);
pds_runtime::setvar!(tx_payload, rw);
pds_runtime::setvar!(rx_free, rw);
pds_runtime::setvar!(rx_active, rw);
pds_runtime::setvar!(tx_free, rw);
pds_runtime::setvar!(tx_active, rw);
// Mapped as net-protocol gives every driver client its `tx_headers`, but
// never used: each frame this PD sends is made of pieces of one slot of
// `tx_payload` and, for a client that sends in place, of its `send_from`
// region (window Files), which this PD does not map.
pds_runtime::setvar!(tx_headers, rw);

/// A shared region, through the runtime's bounds-checked volatile copies.
struct Shared(MemoryRegion);

impl SharedMemory for Shared {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        self.0.copy_out(offset, dst)
    }

    fn write(&self, offset: usize, src: &[u8]) -> bool {
        self.0.copy_in(offset, src)
    }

    fn view<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let end = offset.checked_add(len)?;
        if end > self.0.len() {
            return None;
        }
        // SAFETY: in bounds of a region mapped for the PD's life (checked
        // above). `view` is used only on a received frame the driver has
        // handed over: by net-protocol neither the driver nor the device
        // writes it before we return the buffer, after `f`, so the bytes do
        // not change while the slice lives.
        let bytes = unsafe { core::slice::from_raw_parts((self.0.base() + offset) as *const u8, len) };
        Some(f(bytes))
    }
}

fn log_line(args: fmt::Arguments<'_>) {
    log!("{args}");
}

/// The device's MAC address, from the driver.
fn driver_mac() -> Option<[u8; 6]> {
    DRIVER.mac().map_err(|e| log!("error: the driver does not know the MAC address ({e:?})")).ok()
}

/// The driver's offloads (`net-protocol` `OFFLOAD_*` bits); none if it
/// does not say.
fn driver_offloads() -> u64 {
    DRIVER.offloads().unwrap_or_else(|e| {
        log!("the driver names no offloads ({e:?}): none used");
        0
    })
}

/// The driver's side, from the description's setvars.
fn driver_port() -> Option<DriverPort<'static, Shared>> {
    let addr = |v: &pds_runtime::Var, name| pds_runtime::setvar_required(v, name);
    let (rxf, rxa, txf, txa) = (
        addr(&rx_free, "rx_free")?,
        addr(&rx_active, "rx_active")?,
        addr(&tx_free, "tx_free")?,
        addr(&tx_active, "tx_active")?,
    );
    let (data, payload) = (addr(&rx_data, "rx_data")?, addr(&tx_payload, "tx_payload")?);
    // SAFETY: the description maps the driver's four queue regions
    // (`region_size` bytes at least, page-aligned, read-write), its
    // `rx_data` (RX_DATA_SIZE bytes, read) and `tx_payload`
    // (TX_PAYLOAD_SIZE bytes, read-write) at these addresses for the PD's
    // life; this PD touches them only through these handles. Receive
    // descriptors point into `rx_data`, transmit descriptors into the
    // transmit address space.
    unsafe {
        Some(DriverPort {
            rx: ReceiverQueues::new(rxf as *mut u8, rxa as *mut u8, RX_DATA_SIZE),
            tx: SenderQueues::new(txf as *mut u8, txa as *mut u8, TX_SPACE_LEN),
            rx_data: Shared(MemoryRegion::new(data as usize, RX_DATA_SIZE)),
            tx_payload: Shared(MemoryRegion::new(payload as usize, TX_PAYLOAD_SIZE)),
        })
    }
}

/// Client `n`'s side, at the addresses `net-config` fixes.
fn client_port(n: usize) -> ClientPort<'static, Shared> {
    let at = |r: ClientRegion| r.mux_vaddr(n) as *mut u8;
    let region = |r: ClientRegion| {
        Shared(
            // SAFETY: see below; `size` is the region's size.
            unsafe { MemoryRegion::new(r.mux_vaddr(n) as usize, r.size() as usize) },
        )
    };
    // SAFETY: the builder's `<network>` expansion maps client `n`'s six
    // regions into this PD at `ClientRegion::mux_vaddr(n)`, read-write, at
    // their `ClientRegion::size` (each queue region holds its queue, as
    // net-config checks), page-aligned, for the PD's life; this PD touches
    // them only through these handles. As for the driver, receive
    // descriptors point into `rx_data` and transmit descriptors into the
    // transmit address space.
    unsafe {
        ClientPort {
            rx: SenderQueues::new(at(ClientRegion::RxFree), at(ClientRegion::RxActive), CLIENT_RX_DATA_SIZE),
            tx: ReceiverQueues::new(at(ClientRegion::TxFree), at(ClientRegion::TxActive), TX_SPACE_LEN),
            rx_data: region(ClientRegion::RxData),
            tx_data: region(ClientRegion::TxData),
        }
    }
}

fn start() -> Option<Mux<'static, Shared>> {
    let config = match NetConfig::from_bytes(&__net_config.get()) {
        Ok(config) => config,
        Err(e) => {
            log!("error: {e}");
            return None;
        }
    };
    let mac = driver_mac()?;
    let driver = driver_port()?;
    let clients = (0..config.clients().len()).map(client_port);
    match Mux::new(&config, mac, driver, clients, &mut log_line) {
        Ok(mut mux) => {
            mux.set_offloads(driver_offloads(), &mut log_line);
            mux.set_clock(now);
            Some(mux)
        }
        Err(e) => {
            log!("error: {e}");
            None
        }
    }
}

struct NetMux {
    /// `None` if it could not start (said so in the log): then every frame
    /// stays with the driver and every call is refused.
    mux: Option<Mux<'static, Shared>>,
}

impl NetMux {
    fn run(&mut self) {
        let Some(mux) = self.mux.as_mut() else { return };
        let mut notify = mux.handle();
        if notify.driver_restarted {
            // net-protocol, "Starting over": the driver empties its side
            // in this call, then this PD its own.
            match DRIVER.attach() {
                Ok(()) => {
                    mux.driver_attached(&mut log_line);
                    notify = mux.handle();
                }
                Err(e) => log!("error: the restarted driver refused the attach call ({e:?}): no more frames"),
            }
        }
        if notify.driver {
            DRIVER.channel().notify();
        }
        for n in notify.clients() {
            Channel::new(mux_client_channel(n)).notify();
        }
    }
}

impl Handler for NetMux {
    fn init() -> Self {
        let mut this = NetMux { mux: start() };
        // Hands the driver its receive buffers and arms the signal requests.
        this.run();
        this
    }

    fn notified(&mut self, _channels: ChannelSet) {
        // Every queue is looked at, whoever notified: the queues, not the
        // notification bits, say what is pending.
        self.run();
    }

    fn protected(&mut self, channel: Channel, msg: MessageInfo) -> MessageInfo {
        // The driver's channel (and any other) names no client: refused.
        let Some(client) = client_of_channel(channel.id()) else {
            return net_mux_api::reply_message(&Err(MuxError::BadRequest));
        };
        // The request first: handling queues does not touch the message
        // registers, but nothing is left to chance.
        let request = RequestMessage::from_registers(msg);
        // A call sees the effect of every frame queued before it (a client
        // that sent frames and then asks for its counters finds them
        // counted, even if its notification has not been delivered yet).
        self.run();
        let Some(mux) = self.mux.as_mut() else {
            return net_mux_api::reply_message(&Err(MuxError::BadRequest));
        };
        if request.label() == net_mux_api::label::STATS {
            log!("wakes {}", pds_runtime::wakes());
            // The driver logs its counters (and wake-ups) in turn: one line
            // of each on the client's cadence. Before the answer: the call
            // to the driver uses the message registers the reply is
            // written into.
            if let Err(e) = DRIVER.stats() {
                log!("the driver's counters: {e:?}");
            }
        }
        mux.answer(client, request.label(), request.words(), &mut log_line).to_registers()
    }
}

pds_runtime::protection_domain!(NetMux);
