//! The modern virtio PCI transport (virtio 1.x §4.1.4): the common
//! configuration, notification, ISR and device configuration structures in
//! a memory BAR that the initialiser mapped uncached.
//!
//! Registers are accessed with volatile loads and stores of their own width
//! ([`Mmio`]); 64-bit fields as two 32-bit halves, low first (§4.1.3.1).
//! Device bring-up is the sequence of §3.1.1: [`Transport::negotiate`]
//! (steps 1–6), [`Transport::setup_queue`] per queue (step 7),
//! [`Transport::driver_ok`] (step 8), or [`Transport::fail`] on the way.

use crate::features;
use crate::pci::{BarRange, CfgType, VirtioCaps, COMMON_CFG_LEN};
use crate::queue::Areas;

/// Device status bits (§2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    pub const FAILED: u8 = 128;
}

/// ISR status bits (§4.1.4.5): reading the register returns them and
/// clears them, which also de-asserts the legacy interrupt.
pub mod isr {
    /// A used ring was updated.
    pub const QUEUE: u8 = 1;
    /// The device configuration changed.
    pub const CONFIG: u8 = 2;
}

/// Offsets in `struct virtio_pci_common_cfg` (§4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0c;
    pub const NUM_QUEUES: usize = 0x12;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const CONFIG_GENERATION: usize = 0x15;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_ENABLE: usize = 0x1c;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
}

/// How many times a reset is polled for completion before giving up.
const RESET_POLLS: usize = 1_000_000;

/// A register width.
pub trait Register: Copy + sealed::Sealed {}
mod sealed {
    pub trait Sealed {}
}
impl sealed::Sealed for u8 {}
impl sealed::Sealed for u16 {}
impl sealed::Sealed for u32 {}
impl Register for u8 {}
impl Register for u16 {}
impl Register for u32 {}

/// A window of device registers, accessed with volatile loads and stores of
/// the register's own width.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: *mut u8,
    len: usize,
}

impl Mmio {
    /// # Safety
    ///
    /// `[base, base + len)` must be device registers (or memory) mapped
    /// readable and writable for the life of the handle and its copies,
    /// where volatile accesses of 1, 2 and 4 bytes have no effect beyond
    /// those of the device's registers.
    pub const unsafe fn new(base: *mut u8, len: usize) -> Mmio {
        Mmio { base, len }
    }

    /// Bytes in the window.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sub-window of `len` bytes at `offset`, if it is inside this one.
    pub fn window(&self, offset: usize, len: usize) -> Option<Mmio> {
        // SAFETY: the sub-window lies within this one (checked), so the
        // constructor's contract holds for it.
        (offset.checked_add(len)? <= self.len).then(|| unsafe { Mmio::new(self.base.add(offset), len) })
    }

    fn at<T: Register>(&self, offset: usize) -> *mut T {
        let size = core::mem::size_of::<T>();
        // Offsets are the transport's constants, checked against the
        // structure's length when the transport was made: a failure here is
        // a driver bug.
        assert!(offset + size <= self.len && offset.is_multiple_of(size), "register access out of bounds");
        // SAFETY: in bounds (checked above).
        unsafe { self.base.add(offset).cast() }
    }

    /// Reads the register at `offset`.
    pub fn read<T: Register>(&self, offset: usize) -> T {
        // SAFETY: in bounds and aligned (checked) in mapped registers
        // (constructor contract); volatile since the device changes
        // registers and reads have effects.
        unsafe { self.at::<T>(offset).read_volatile() }
    }

    /// Writes the register at `offset`.
    pub fn write<T: Register>(&self, offset: usize, value: T) {
        // SAFETY: as for `read`; the device sees every write.
        unsafe { self.at::<T>(offset).write_volatile(value) }
    }

    /// A 64-bit field as two 32-bit writes, low half first, as the driver
    /// may do (§4.1.3.1).
    fn write_u64(&self, offset: usize, value: u64) {
        self.write(offset, value as u32);
        self.write(offset + 4, (value >> 32) as u32);
    }
}

/// What can go wrong bringing a device up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A virtio structure is in another BAR than the one mapped, runs past
    /// its end, or is too short for the registers the driver uses.
    BadStructure(CfgType, BarRange),
    /// The notify multiplier is odd (§4.1.4.4: an even power of 2, or 0).
    BadNotifyMultiplier(u32),
    /// The device did not finish a reset.
    ResetTimeout,
    /// The device does not offer features the driver requires (these).
    MissingFeatures(u64),
    /// The device cleared `FEATURES_OK`: it refused the driver's features.
    FeaturesRefused,
    /// The device has no queue of this index (`queue_size` 0 or beyond
    /// `num_queues`).
    NoSuchQueue(u16),
    /// The queue's maximum size is smaller than asked.
    QueueTooSmall { queue: u16, max: u16 },
    /// The queue's notification address is outside the notify structure.
    BadNotifyOffset(u16),
}

/// A modern virtio PCI device's registers.
#[derive(Debug)]
pub struct Transport {
    common: Mmio,
    notify: Mmio,
    notify_off_multiplier: u32,
    isr: Mmio,
    device: Option<Mmio>,
}

impl Transport {
    /// The transport of a device whose structures, per `caps`, are all in
    /// BAR `bar_index`, mapped as `bar`.
    pub fn new(bar: Mmio, bar_index: u8, caps: &VirtioCaps) -> Result<Transport, TransportError> {
        let window = |cfg: CfgType, range: BarRange, min: u32| {
            (range.bar == bar_index && range.length >= min)
                .then(|| bar.window(range.offset as usize, range.length as usize))
                .flatten()
                .ok_or(TransportError::BadStructure(cfg, range))
        };
        if !caps.notify_off_multiplier.is_multiple_of(2) {
            return Err(TransportError::BadNotifyMultiplier(caps.notify_off_multiplier));
        }
        Ok(Transport {
            common: window(CfgType::Common, caps.common, COMMON_CFG_LEN)?,
            notify: window(CfgType::Notify, caps.notify, 2)?,
            notify_off_multiplier: caps.notify_off_multiplier,
            isr: window(CfgType::Isr, caps.isr, 1)?,
            device: caps.device.map(|d| window(CfgType::Device, d, 0)).transpose()?,
        })
    }

    /// The device status byte.
    pub fn status(&self) -> u8 {
        self.common.read(common::DEVICE_STATUS)
    }

    /// Sets status bits, keeping those already set.
    pub fn add_status(&self, bits: u8) {
        self.common.write(common::DEVICE_STATUS, self.status() | bits);
    }

    /// Resets the device: writing 0 to the status, then waiting until it
    /// reads back 0 (§4.1.4.3.2).
    pub fn reset(&self) -> Result<(), TransportError> {
        self.common.write(common::DEVICE_STATUS, 0u8);
        for _ in 0..RESET_POLLS {
            if self.status() == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(TransportError::ResetTimeout)
    }

    /// The 64 feature bits the device offers.
    pub fn device_features(&self) -> u64 {
        let mut features = 0;
        for half in 0..2u32 {
            self.common.write(common::DEVICE_FEATURE_SELECT, half);
            features |= u64::from(self.common.read::<u32>(common::DEVICE_FEATURE)) << (32 * half);
        }
        features
    }

    fn set_driver_features(&self, features: u64) {
        for half in 0..2u32 {
            self.common.write(common::DRIVER_FEATURE_SELECT, half);
            self.common.write(common::DRIVER_FEATURE, (features >> (32 * half)) as u32);
        }
    }

    /// Steps 1–6 of device initialisation (§3.1.1): reset, `ACKNOWLEDGE`,
    /// `DRIVER`, feature negotiation ([`features::select`]), `FEATURES_OK`
    /// and its check. Returns the accepted features. On failure the device
    /// is left with `FAILED` set. [`features::ACCESS_PLATFORM`] is always
    /// accepted when offered: a device behind an IOMMU needs it.
    pub fn negotiate(&self, required: u64, wanted: u64) -> Result<u64, TransportError> {
        self.negotiate_with(required, |_| wanted)
    }

    /// [`negotiate`](Self::negotiate), the optional features chosen by
    /// `wanted` from those the device offers (for features that depend on
    /// others, e.g. virtio-net's `HOST_TSO4` on `CSUM`, 5.1.3.1).
    pub fn negotiate_with(&self, required: u64, wanted: impl FnOnce(u64) -> u64) -> Result<u64, TransportError> {
        self.reset()?;
        self.add_status(status::ACKNOWLEDGE);
        self.add_status(status::DRIVER);
        let offered = self.device_features();
        let wanted = wanted(offered) | features::ACCESS_PLATFORM;
        let result = match features::select(offered, required, wanted) {
            Err(features::Missing(bits)) => Err(TransportError::MissingFeatures(bits)),
            Ok(accepted) => {
                self.set_driver_features(accepted);
                self.add_status(status::FEATURES_OK);
                if self.status() & status::FEATURES_OK == 0 {
                    Err(TransportError::FeaturesRefused)
                } else {
                    Ok(accepted)
                }
            }
        };
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// The largest size queue `queue` may have; 0 if it does not exist.
    pub fn queue_max_size(&self, queue: u16) -> u16 {
        if queue >= self.common.read::<u16>(common::NUM_QUEUES) {
            return 0;
        }
        self.common.write(common::QUEUE_SELECT, queue);
        self.common.read(common::QUEUE_SIZE)
    }

    /// Gives queue `queue` its size and the physical addresses of its areas,
    /// checks its notification address, and enables it (§4.1.5.1.3).
    /// Returns what notifies the device of new buffers in it.
    pub fn setup_queue(&self, queue: u16, size: u16, areas: Areas) -> Result<Notifier, TransportError> {
        let max = self.queue_max_size(queue);
        if max == 0 {
            return Err(TransportError::NoSuchQueue(queue));
        }
        if max < size {
            return Err(TransportError::QueueTooSmall { queue, max });
        }
        self.common.write(common::QUEUE_SELECT, queue);
        let notifier = self.notifier(queue)?;
        self.common.write(common::QUEUE_SIZE, size);
        self.common.write_u64(common::QUEUE_DESC, areas.desc);
        self.common.write_u64(common::QUEUE_DRIVER, areas.driver);
        self.common.write_u64(common::QUEUE_DEVICE, areas.device);
        self.common.write(common::QUEUE_ENABLE, 1u16);
        Ok(notifier)
    }

    /// The notification register of the selected queue `queue` (§4.1.4.4).
    fn notifier(&self, queue: u16) -> Result<Notifier, TransportError> {
        let off = u64::from(self.common.read::<u16>(common::QUEUE_NOTIFY_OFF));
        let at = usize::try_from(off * u64::from(self.notify_off_multiplier)).ok();
        let register = at.and_then(|at| self.notify.window(at, 2)).ok_or(TransportError::BadNotifyOffset(queue))?;
        Ok(Notifier { register, queue })
    }

    /// Step 8 of initialisation: the driver is ready, the device goes live.
    pub fn driver_ok(&self) {
        self.add_status(status::DRIVER_OK);
    }

    /// Marks the device failed (§2.1): the driver gave up on it.
    pub fn fail(&self) {
        self.add_status(status::FAILED);
    }

    /// Reads and clears the ISR status (see [`isr`]). Reading it is what
    /// de-asserts the device's legacy interrupt line (§4.1.4.5.1).
    pub fn read_isr(&self) -> u8 {
        self.isr.read(0)
    }

    /// Reads the device-specific configuration with `read`, again until
    /// `config_generation` is the same before and after, so that fields
    /// wider than 32 bits, or read in several accesses, are consistent
    /// (§4.1.3.1, §2.5.1).
    pub fn read_device_config<T>(&self, mut read: impl FnMut(&DeviceConfig) -> T) -> T {
        loop {
            let before: u8 = self.common.read(common::CONFIG_GENERATION);
            let value = read(&DeviceConfig(self.device));
            let after: u8 = self.common.read(common::CONFIG_GENERATION);
            if before == after {
                return value;
            }
        }
    }
}

/// The device-specific configuration structure, read-only here. Every field
/// is `None` if the structure is absent or too short for it.
pub struct DeviceConfig(Option<Mmio>);

impl DeviceConfig {
    fn field<T: Register>(&self, offset: usize) -> Option<T> {
        self.0?.window(offset, core::mem::size_of::<T>()).map(|w| w.read(0))
    }

    /// An 8-bit field.
    pub fn u8(&self, offset: usize) -> Option<u8> {
        self.field(offset)
    }

    /// A 16-bit field.
    pub fn u16(&self, offset: usize) -> Option<u16> {
        self.field(offset)
    }

    /// A 32-bit field.
    pub fn u32(&self, offset: usize) -> Option<u32> {
        self.field(offset)
    }

    /// A 64-bit field read as two 32-bit halves (low first).
    pub fn u64(&self, offset: usize) -> Option<u64> {
        Some(u64::from(self.u32(offset)?) | u64::from(self.u32(offset + 4)?) << 32)
    }
}

/// Tells the device that a queue has new available buffers.
#[derive(Clone, Copy, Debug)]
pub struct Notifier {
    register: Mmio,
    queue: u16,
}

impl Notifier {
    /// The queue this notifies.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Writes the queue's index to its notification address (§4.1.5.2).
    pub fn notify(&self) {
        self.register.write(0, self.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A BAR of plain memory: registers read back what was last written,
    /// which is enough for a device that accepts everything.
    struct Bar(Vec<u64>);

    impl Bar {
        fn new() -> Bar {
            Bar(vec![0; 0x4000 / 8])
        }
        fn mmio(&mut self) -> Mmio {
            // SAFETY: the vector outlives every transport in the tests.
            unsafe { Mmio::new(self.0.as_mut_ptr().cast(), 0x4000) }
        }
    }

    fn caps() -> VirtioCaps {
        let s = |offset, length| BarRange { bar: 4, offset, length };
        VirtioCaps {
            common: s(0, 0x1000),
            notify: s(0x3000, 0x1000),
            notify_off_multiplier: 4,
            isr: s(0x1000, 0x1000),
            device: Some(s(0x2000, 8)),
        }
    }

    #[test]
    fn structures_must_lie_in_the_mapped_bar() {
        let mut bar = Bar::new();
        assert!(Transport::new(bar.mmio(), 4, &caps()).is_ok());
        let err = Transport::new(bar.mmio(), 2, &caps()).unwrap_err();
        assert_eq!(err, TransportError::BadStructure(CfgType::Common, caps().common));
        let notify = BarRange { bar: 4, offset: 0x3800, length: 0x1000 };
        let c = VirtioCaps { notify, ..caps() };
        assert_eq!(
            Transport::new(bar.mmio(), 4, &c).unwrap_err(),
            TransportError::BadStructure(CfgType::Notify, notify)
        );
        let c = VirtioCaps { notify_off_multiplier: 3, ..caps() };
        assert_eq!(Transport::new(bar.mmio(), 4, &c).unwrap_err(), TransportError::BadNotifyMultiplier(3));
    }

    #[test]
    fn bring_up_writes_the_registers() {
        let mut bar = Bar::new();
        let regs = bar.mmio();
        let t = Transport::new(regs, 4, &caps()).unwrap();
        // Offers VERSION_1 (bit 32) in the high half; plain memory shows the
        // same word for both selections.
        regs.write::<u32>(common::DEVICE_FEATURE, 1);
        regs.write::<u32>(0x2000, 0x1234_5678);
        regs.write::<u32>(0x2004, 0x9abc_def0);
        assert_eq!(t.negotiate(features::VERSION_1, 0), Ok(features::VERSION_1));
        assert_eq!(t.status(), status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        assert_eq!(t.negotiate(1 << 40, 0), Err(TransportError::MissingFeatures(1 << 40)));
        assert_ne!(t.status() & status::FAILED, 0);

        regs.write::<u16>(common::NUM_QUEUES, 2);
        regs.write::<u16>(common::QUEUE_SIZE, 256);
        regs.write::<u16>(common::QUEUE_NOTIFY_OFF, 3);
        let areas = Areas { desc: 0x1_0000_1000, driver: 0x2000, device: 0x3000 };
        assert_eq!(t.setup_queue(2, 256, areas).unwrap_err(), TransportError::NoSuchQueue(2));
        assert_eq!(t.setup_queue(1, 512, areas).unwrap_err(), TransportError::QueueTooSmall { queue: 1, max: 256 });
        let n = t.setup_queue(1, 128, areas).unwrap();
        assert_eq!(regs.read::<u16>(common::QUEUE_SELECT), 1);
        assert_eq!(regs.read::<u16>(common::QUEUE_SIZE), 128);
        assert_eq!((regs.read::<u32>(common::QUEUE_DESC), regs.read::<u32>(common::QUEUE_DESC + 4)), (0x1000, 1));
        assert_eq!(regs.read::<u32>(common::QUEUE_DEVICE), 0x3000);
        assert_eq!(regs.read::<u16>(common::QUEUE_ENABLE), 1);
        n.notify();
        assert_eq!(regs.read::<u16>(0x3000 + 12), 1, "queue index at notify_off * multiplier");
        regs.write::<u16>(common::QUEUE_NOTIFY_OFF, 0x400);
        assert_eq!(t.setup_queue(1, 128, areas).unwrap_err(), TransportError::BadNotifyOffset(1));

        let (low, all, beyond) = t.read_device_config(|c| (c.u32(0), c.u64(0), c.u32(6)));
        assert_eq!((low, all, beyond), (Some(0x1234_5678), Some(0x9abc_def0_1234_5678), None));
        assert_eq!(t.read_device_config(|c| c.u8(7)), Some(0x9a));
    }

    #[test]
    fn access_platform_is_accepted_when_offered_and_only_then() {
        let mut bar = Bar::new();
        let regs = bar.mmio();
        let t = Transport::new(regs, 4, &caps()).unwrap();
        // Plain memory: the word offered is the same for both halves, so
        // bit 1 offers bit 33 (ACCESS_PLATFORM) and bit 0 VERSION_1.
        regs.write::<u32>(common::DEVICE_FEATURE, 0b11);
        let accepted = t.negotiate(features::VERSION_1, 0).unwrap();
        assert_eq!(accepted, features::VERSION_1 | features::ACCESS_PLATFORM);
        regs.write::<u32>(common::DRIVER_FEATURE_SELECT, 1);
        assert_eq!(regs.read::<u32>(common::DRIVER_FEATURE), 0b11, "the high half written last: bits 32 and 33");
        regs.write::<u32>(common::DEVICE_FEATURE, 0b01);
        assert_eq!(t.negotiate(features::VERSION_1, 0), Ok(features::VERSION_1), "not offered: not accepted");
    }
}
