//! timer: monotonic time and timeouts for the other PDs.
//!
//! Time is the TSC, calibrated at boot against PIT channel 0; timeouts are
//! PIT one-shots (mode 0) for the nearest deadline, whose interrupt (ISA
//! IRQ 0) arrives on IOAPIC pin 2 on a PC: the ACPI MADT's interrupt source
//! override maps ISA IRQ 0 to GSI 2. The protocol is in `timer-api`, the
//! bookkeeping in `timer-core`; this is the glue.
//!
//! The wall clock: at boot it reads the CMOS real-time clock once
//! (`timer-core`'s `rtc`) and answers `BOOT_EPOCH` with the Unix time at
//! which `NOW` read 0. It is the only PD that holds the CMOS ports.
//!
//! Description: `<ioport id="0" addr="0x40" size="4"/>`, `<irq id="24"
//! pin="2" trigger="edge"/>`, and channel `i` (0..24) per client, on which
//! the client calls and is notified; optionally `<ioport id="1"
//! addr="0x70" size="2"/>`, the CMOS clock (without it the timer has no
//! wall clock, logs so, and answers `BOOT_EPOCH` with `NO_CLOCK`), and a
//! 4 KiB region of its own, `<map mr="timer_state" ... perms="rw"
//! setvar_vaddr="timer_state"/>`, which makes it restartable.
//!
//! Restarts (`on_fault="restart-backoff"`): the first life writes its
//! clock and boot epoch into `timer_state` (`timer-core`'s `saved`); a
//! later life takes them from there instead of measuring again, so `NOW`
//! and the clients' `LocalClock`s keep reading the same time. The pending
//! timeouts died with the last life: the new one notifies every client
//! once, and a client whose timeout had not yet passed sets it again
//! (`net-client`'s `Alarm`; virtio-net re-arms on every notification). A
//! call the last life died in is answered `LABEL_SERVER_RESTARTED` by the
//! runtime, and `timer-api`'s calls make it again.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use drivers_timer_api::{label, rdtsc, status, TIMEOUTS_PER_CLIENT};
use drivers_timer_core::rtc::{self, CmosPorts};
use drivers_timer_core::saved::{self, Saved};
use drivers_timer_core::{calibrate, ArmError, Clock, PitCounter, Shot, Timeouts, SHOT_LOST_NS};
use pds_boot_spec::cspace;
use pds_runtime::{log, msginfo, setvar, Channel, ChannelSet, Handler, MessageInfo};

/// `<ioport id="0">`: PIT ports 0x40 (channel 0 data) to 0x43 (mode/command).
const PIT_PORTS: sel4::X86IoPort = sel4::X86IoPort(cspace::IOPORT_BASE);
const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
/// Command: channel 0, low byte then high byte, mode 0, binary.
const PIT_CMD_CH0_ONE_SHOT: u8 = 0b0011_0000;
/// Command: latch channel 0's count for reading.
const PIT_CMD_CH0_LATCH: u8 = 0b0000_0000;
/// `<ioport id="1">`: CMOS index (0x70) and data (0x71) ports.
const CMOS_PORTS: sel4::X86IoPort = sel4::X86IoPort(cspace::IOPORT_BASE + 1);
const CMOS_INDEX: u16 = 0x70;
const CMOS_DATA: u16 = 0x71;

// PIT channel 0's interrupt (`<irq ... setvar_id="pit">`).
pds_runtime::channel!(PIT_IRQ = "pit", irq);
/// Client channels are 0..CLIENTS.
const CLIENTS: usize = 24;

// The region that outlives a restart (`setvar_vaddr="timer_state"`),
// optional: without it every life measures the clock afresh.
setvar!(timer_state);

/// The words of `timer_state` that hold [`Saved`].
fn saved_words() -> Option<&'static [AtomicU64; saved::WORDS]> {
    let vaddr = timer_state.get()?;
    // SAFETY: the builder patches the variable with the address of a
    // 4 KiB read-write mapping of a region only this PD maps, for the PD's
    // lifetime; the record's 40 bytes fit it, and atomics have no invalid
    // bit patterns.
    Some(unsafe { &*(vaddr as usize as *const [AtomicU64; saved::WORDS]) })
}

/// PIT channel 0 through the I/O port capability.
struct Pit;

impl Pit {
    fn out(port: u16, value: u8) {
        let _ = PIT_PORTS.out8(u64::from(port), u64::from(value));
    }

    /// Starts a one-shot: the output (and IRQ 0) rises after `count` ticks.
    /// Writing the command drops the output, so each shot is a new edge.
    fn one_shot(count: u16) {
        Self::out(PIT_COMMAND, PIT_CMD_CH0_ONE_SHOT);
        Self::reload(count);
    }

    /// A new count for the one-shot mode the command set (mode 0, low byte
    /// then high byte): in mode 0 writing the first byte stops the count and
    /// drops the output, writing the second loads the new count (Intel
    /// 82C54, "Mode 0"), so each reload is a new edge too, in two port
    /// writes instead of three.
    fn reload(count: u16) {
        Self::out(PIT_CHANNEL0, count as u8);
        Self::out(PIT_CHANNEL0, (count >> 8) as u8);
    }
}

impl PitCounter for Pit {
    fn start(&mut self, count: u16) {
        Pit::one_shot(count);
    }

    fn count(&mut self) -> u16 {
        Self::out(PIT_COMMAND, PIT_CMD_CH0_LATCH);
        let lo = PIT_PORTS.in8(PIT_CHANNEL0).unwrap_or(0);
        let hi = PIT_PORTS.in8(PIT_CHANNEL0).unwrap_or(0);
        u16::from_le_bytes([lo, hi])
    }
}

/// The CMOS clock through its I/O port capability.
struct Cmos;

impl CmosPorts for Cmos {
    fn register(&mut self, index: u8) -> u8 {
        let _ = CMOS_PORTS.out8(u64::from(CMOS_INDEX), u64::from(index));
        CMOS_PORTS.in8(CMOS_DATA).unwrap_or(0xff)
    }
}

/// Whether the description gave this PD the CMOS ports: reading status
/// register A (a side-effect-free register) succeeds.
fn have_cmos() -> bool {
    CMOS_PORTS.out8(u64::from(CMOS_INDEX), u64::from(rtc::STATUS_A)).is_ok()
}

struct Timer {
    clock: Clock,
    timeouts: Timeouts<CLIENTS, TIMEOUTS_PER_CLIENT>,
    /// Largest time handed out so far: `NOW` never goes backwards.
    last_now: u64,
    /// The Unix time at which `NOW` read 0, if there is a wall clock.
    boot_epoch: Option<u64>,
    /// The shot in flight (`timer-core`'s [`Shot`]).
    shot: Shot,
    /// Shots whose interrupt never came ([`Shot::lost`]).
    lost_shots: u64,
}

impl Timer {
    /// A timer with no timeouts pending.
    fn new(clock: Clock, boot_epoch: Option<u64>) -> Timer {
        Timer { clock, timeouts: Timeouts::new(), last_now: 0, boot_epoch, shot: Shot::default(), lost_shots: 0 }
    }

    /// A later life: the clock and wall clock of the first, no timeouts;
    /// every client is told to look at its deadlines again.
    fn restarted(saved: Saved) -> Timer {
        // The last life may have died between the PIT's interrupt and its
        // acknowledgement, which would leave the line masked.
        PIT_IRQ.get().irq_ack();
        let mut timer = Timer::new(saved.clock, saved.boot_epoch);
        let clients = (0..CLIENTS as u8).map(Channel::new).filter(|c| c.can_notify());
        let count = clients.clone().count();
        clients.for_each(Channel::deferred_notify);
        let hz = timer.clock.tsc_hz();
        log!(
            "restart {}: TSC {}.{:03} MHz and the wall clock kept from the first life; now {} ms; {count} clients told to set their timeouts again",
            pds_runtime::restarts(),
            hz / 1_000_000,
            hz / 1_000 % 1_000,
            timer.now() / 1_000_000
        );
        timer
    }

    fn now(&mut self) -> u64 {
        self.last_now = self.last_now.max(self.clock.ns(rdtsc()));
        self.last_now
    }

    /// Notifies the clients whose deadlines have passed, then points the
    /// PIT at the nearest remaining one (or as far towards it as one shot
    /// reaches; the shot's interrupt then just re-arms), unless the shot in
    /// flight ends in time for it. Calibration left the PIT in the one-shot
    /// mode, so a shot is a reload. A shot whose interrupt never came
    /// ([`Shot::lost`]) is given up here: any client's call heals a timer
    /// that lost an interrupt (`net-client`'s `Alarm` calls again when its
    /// notification is that late).
    fn service(&mut self) {
        let now = self.now();
        if self.shot.lost(now) {
            // The line may still be masked (the kernel masks it when it
            // delivers, this PD unmasks it when it handles the interrupt):
            // unmask it, and program a new shot below.
            PIT_IRQ.get().irq_ack();
            self.shot.fired();
            self.lost_shots += 1;
            if self.lost_shots.is_power_of_two() {
                log!(
                    "warning: a shot's interrupt did not come {} ms after its end ({} so far); the line is acknowledged and a new shot programmed",
                    SHOT_LOST_NS / 1_000_000,
                    self.lost_shots
                );
            }
        }
        for client in self.timeouts.expire(now).iter() {
            Channel::new(client as u8).deferred_notify();
        }
        if let Some(count) = self.timeouts.next().and_then(|next| self.shot.plan(now, next)) {
            Pit::reload(count);
        }
    }
}

impl Handler for Timer {
    fn init() -> Self {
        let words = saved_words();
        if let Some(saved) = words.and_then(|w| Saved::decode(&w.each_ref().map(|a| a.load(Ordering::Relaxed)))) {
            return Timer::restarted(saved);
        }
        let clock = match calibrate(&mut Pit, rdtsc) {
            Ok(clock) => clock,
            Err(e) => panic!("TSC calibration against the PIT failed: {e:?}"),
        };
        let hz = clock.tsc_hz();
        log!("TSC {}.{:03} MHz (calibrated against the PIT)", hz / 1_000_000, hz / 1_000 % 1_000);
        // Calibration's shot may still run: its interrupt comes while no
        // deadline is armed, and the first service programs one anyway.
        let mut timer = Timer::new(clock, None);
        if have_cmos() {
            let registers = rtc::read(&mut Cmos);
            let now = timer.now();
            match registers.unix_seconds() {
                Some(wall) => {
                    let epoch = rtc::boot_epoch(wall, now);
                    log!("wall clock: the CMOS clock reads Unix time {wall}; boot epoch {epoch}");
                    timer.boot_epoch = Some(epoch);
                }
                None => log!("warning: the CMOS clock reads {registers:?}, not a date: no wall clock"),
            }
        } else {
            log!("no CMOS clock ports (<ioport id=\"1\" addr=\"0x70\" size=\"2\">): no wall clock");
        }
        if let Some(words) = words {
            let record = Saved { clock: timer.clock, boot_epoch: timer.boot_epoch }.encode();
            for (word, value) in words.iter().zip(record) {
                word.store(value, Ordering::Relaxed);
            }
        }
        timer
    }

    fn protected(&mut self, channel: Channel, msg: MessageInfo) -> MessageInfo {
        let client = usize::from(channel.id());
        match msg.label() {
            label::NOW => {
                pds_runtime::set_mr(0, self.now());
                msginfo(status::OK, 1)
            }
            label::SET_TIMEOUT if msg.length() >= 1 => {
                let deadline = pds_runtime::get_mr(0);
                let reply = match self.timeouts.arm(client, deadline) {
                    Ok(()) => status::OK,
                    Err(ArmError::Full) => status::FULL,
                    Err(ArmError::NoSuchClient) => status::REFUSED,
                };
                self.service();
                msginfo(reply, 0)
            }
            label::BOOT_EPOCH => match self.boot_epoch {
                Some(epoch) => {
                    pds_runtime::set_mr(0, epoch);
                    msginfo(status::OK, 1)
                }
                None => msginfo(status::NO_CLOCK, 0),
            },
            label::TSC_SCALE => {
                pds_runtime::set_mr(0, self.clock.scale().0);
                msginfo(status::OK, 1)
            }
            label::CANCEL_ALL => {
                self.timeouts.cancel_all(client);
                msginfo(status::OK, 0)
            }
            _ => msginfo(status::REFUSED, 0),
        }
    }

    fn notified(&mut self, channels: ChannelSet) {
        if channels.contains(PIT_IRQ.get()) {
            // Acknowledge before re-arming: a short shot could otherwise end
            // while the line is still masked, and an edge then is lost.
            PIT_IRQ.get().irq_ack();
            self.shot.fired();
            self.service();
        }
    }
}

pds_runtime::protection_domain!(Timer);
