//! The modern virtio PCI transport (virtio 1.1 §4.1.4): the common
//! configuration, notification, ISR and device configuration structures in a
//! memory BAR that the initialiser mapped uncached.

use crate::pci::{Layout, Structure, COMMON_CFG_LEN};

/// Device status bits (§2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    pub const FAILED: u8 = 128;
}

/// `VIRTIO_F_VERSION_1` (§6): the device is modern, not legacy.
pub const F_VERSION_1: u64 = 1 << 32;

/// ISR status bits (§4.1.4.5): reading the register returns them and
/// clears them, which also de-asserts the legacy interrupt.
pub mod isr {
    pub const QUEUE: u8 = 1;
    pub const CONFIG: u8 = 2;
}

/// Offsets in the common configuration structure (§4.1.4.3).
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

/// A window of device registers, accessed with volatile loads and stores of
/// the register's own width.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: usize,
    len: usize,
}

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

impl Mmio {
    /// # Safety
    ///
    /// `[base, base + len)` must be device registers (or memory) mapped for
    /// the life of the handle and its copies, where volatile accesses of 1, 2
    /// and 4 bytes have no effect beyond those of the device's registers.
    pub unsafe fn new(base: usize, len: usize) -> Mmio {
        Mmio { base, len }
    }

    /// The sub-window of `len` bytes at `offset`, if it is inside this one.
    pub fn window(&self, offset: usize, len: usize) -> Option<Mmio> {
        (offset.checked_add(len)? <= self.len).then_some(Mmio { base: self.base + offset, len })
    }

    fn addr<T: Register>(&self, offset: usize) -> usize {
        let size = core::mem::size_of::<T>();
        // Offsets are the transport's constants, checked against the
        // structure's length when the transport was made: a failure here is
        // a driver bug.
        assert!(offset + size <= self.len && offset.is_multiple_of(size), "register access out of bounds");
        self.base + offset
    }

    pub fn read<T: Register>(&self, offset: usize) -> T {
        // SAFETY: in bounds and aligned (checked) in mapped registers
        // (constructor contract).
        unsafe { (self.addr::<T>(offset) as *const T).read_volatile() }
    }

    pub fn write<T: Register>(&self, offset: usize, value: T) {
        // SAFETY: as for `read`.
        unsafe { (self.addr::<T>(offset) as *mut T).write_volatile(value) }
    }

    /// A 64-bit field as two 32-bit writes, low half first, as the driver
    /// may do (§4.1.3.1).
    fn write_u64(&self, offset: usize, value: u64) {
        self.write(offset, value as u32);
        self.write(offset + 4, (value >> 32) as u32);
    }
}

/// Why the device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A virtio structure is in another BAR than the one mapped, or runs past
    /// its end.
    StructureOutsideBar(Structure),
    /// The device did not finish a reset.
    ResetTimeout,
    /// The device does not offer a feature the driver requires.
    MissingFeatures(u64),
    /// The device cleared `FEATURES_OK`: it refused the driver's features.
    FeaturesRefused,
    /// The queue does not exist (`queue_size` 0) or is smaller than asked.
    QueueUnavailable(u16),
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
    device: Mmio,
}

impl Transport {
    /// The transport of a device whose structures, per `layout`, are all in
    /// BAR `bar_index`, mapped as `bar`.
    pub fn new(layout: &Layout, bar_index: u8, bar: Mmio) -> Result<Transport, TransportError> {
        let window = |s: Structure| {
            (s.bar == bar_index)
                .then(|| bar.window(s.offset as usize, s.length as usize))
                .flatten()
                .ok_or(TransportError::StructureOutsideBar(s))
        };
        debug_assert!(layout.common.length >= COMMON_CFG_LEN);
        Ok(Transport {
            common: window(layout.common)?,
            notify: window(layout.notify)?,
            notify_off_multiplier: layout.notify_off_multiplier,
            isr: window(layout.isr)?,
            device: window(layout.device)?,
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
    /// `DRIVER`, feature negotiation, `FEATURES_OK` and its check. Accepts
    /// the `wanted` features the device offers; fails unless it offers all of
    /// `required`. Returns the negotiated features. On failure the device is
    /// left with `FAILED` set.
    pub fn negotiate(&self, required: u64, wanted: u64) -> Result<u64, TransportError> {
        self.reset()?;
        self.add_status(status::ACKNOWLEDGE);
        self.add_status(status::DRIVER);
        let offered = self.device_features();
        let result = if offered & required != required {
            Err(TransportError::MissingFeatures(required & !offered))
        } else {
            let features = offered & (wanted | required);
            self.set_driver_features(features);
            self.add_status(status::FEATURES_OK);
            if self.status() & status::FEATURES_OK == 0 {
                Err(TransportError::FeaturesRefused)
            } else {
                Ok(features)
            }
        };
        if result.is_err() {
            self.add_status(status::FAILED);
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

    /// Gives queue `queue` its size and the physical addresses of its
    /// descriptor table, driver (available) and device (used) areas, checks
    /// its notification address, and enables it (§4.1.5.1.3).
    pub fn setup_queue(&self, queue: u16, size: u16, desc: u64, driver: u64, device: u64) -> Result<(), TransportError> {
        let max = self.queue_max_size(queue);
        if max == 0 || size > max {
            return Err(TransportError::QueueUnavailable(queue));
        }
        self.common.write(common::QUEUE_SELECT, queue);
        self.notify_offset(queue)?;
        self.common.write(common::QUEUE_SIZE, size);
        self.common.write_u64(common::QUEUE_DESC, desc);
        self.common.write_u64(common::QUEUE_DRIVER, driver);
        self.common.write_u64(common::QUEUE_DEVICE, device);
        self.common.write(common::QUEUE_ENABLE, 1u16);
        Ok(())
    }

    /// Where in the notify structure queue `queue` is notified (§4.1.4.4).
    fn notify_offset(&self, queue: u16) -> Result<usize, TransportError> {
        self.common.write(common::QUEUE_SELECT, queue);
        let off = u64::from(self.common.read::<u16>(common::QUEUE_NOTIFY_OFF));
        let at = off * u64::from(self.notify_off_multiplier);
        match self.notify.window(at as usize, 2) {
            Some(_) if at <= usize::MAX as u64 => Ok(at as usize),
            _ => Err(TransportError::BadNotifyOffset(queue)),
        }
    }

    /// Step 8 of initialisation: the driver is ready, the device goes live.
    pub fn driver_ok(&self) {
        self.add_status(status::DRIVER_OK);
    }

    /// Marks the device failed (§2.1): the driver gave up on it.
    pub fn fail(&self) {
        self.add_status(status::FAILED);
    }

    /// A notifier for queue `queue`, once it is set up.
    pub fn notifier(&self, queue: u16) -> Result<Notifier, TransportError> {
        let at = self.notify_offset(queue)?;
        Ok(Notifier { register: self.notify.window(at, 2).ok_or(TransportError::BadNotifyOffset(queue))?, queue })
    }

    /// Reads and clears the ISR status (see [`isr`]). Reading it is what
    /// de-asserts the device's legacy interrupt line.
    pub fn read_isr(&self) -> u8 {
        self.isr.read(0)
    }

    /// Reads the device-specific configuration with `read`, again until
    /// `config_generation` is the same before and after, so that fields
    /// wider than 32 bits are consistent (§4.1.3.1).
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

/// The device-specific configuration structure, read-only here.
pub struct DeviceConfig(Mmio);

impl DeviceConfig {
    /// A 32-bit field, or `None` if the structure is too short for it.
    pub fn u32(&self, offset: usize) -> Option<u32> {
        self.0.window(offset, 4).map(|w| w.read(0))
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
    /// Writes the queue's index to its notification address (§4.1.5.2).
    pub fn notify(&self) {
        self.register.write(0, self.queue);
    }
}
