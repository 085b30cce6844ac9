//! The virtio PCI transport, modern interface (virtio 1.x spec, 4.1.4):
//! the common configuration registers, queue notification, the ISR status
//! byte and the device-specific configuration, all in a mapped BAR.

use crate::pci::{BarRange, VirtioCaps};

/// Volatile access to device registers mapped uncached.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: *mut u8,
    len: usize,
}

impl Mmio {
    /// # Safety
    ///
    /// `[base, base + len)` must be device registers (or memory), mapped
    /// readable and writable for as long as the handle is used.
    pub const unsafe fn new(base: *mut u8, len: usize) -> Self {
        Mmio { base, len }
    }

    /// The part of this mapping a capability describes.
    pub fn sub(&self, range: &BarRange) -> Option<Mmio> {
        let end = (range.offset as usize).checked_add(range.length as usize)?;
        // SAFETY: the sub-range lies within this mapping (checked).
        (end <= self.len).then(|| unsafe { Mmio::new(self.base.add(range.offset as usize), range.length as usize) })
    }

    fn at<T>(&self, offset: usize) -> *mut T {
        assert!(
            offset + core::mem::size_of::<T>() <= self.len && offset.is_multiple_of(core::mem::align_of::<T>()),
            "register access out of the structure"
        );
        // SAFETY: in bounds (checked above).
        unsafe { self.base.add(offset).cast() }
    }

    pub fn read<T: Copy>(&self, offset: usize) -> T {
        // SAFETY: in bounds and aligned, mapped (constructor contract);
        // volatile since the device changes registers and reads have effects.
        unsafe { self.at::<T>(offset).read_volatile() }
    }

    pub fn write<T: Copy>(&self, offset: usize, value: T) {
        // SAFETY: as for `read`; the device sees every write.
        unsafe { self.at::<T>(offset).write_volatile(value) }
    }
}

/// `struct virtio_pci_common_cfg` offsets (4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0c;
    pub const NUM_QUEUES: usize = 0x12;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_ENABLE: usize = 0x1c;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// Bytes of the structure the driver touches.
    pub const LEN: usize = 0x38;
}

/// Device status bits (2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const FAILED: u8 = 128;
}

/// ISR status bits (4.1.4.5).
pub mod isr {
    /// A used ring was updated.
    pub const QUEUE: u8 = 1;
    /// The device configuration changed.
    pub const CONFIG: u8 = 2;
}

/// What can go wrong bringing a device up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A structure lies outside the mapped BAR, or is too short.
    BadCapability(&'static str),
    /// The notify multiplier is not even (4.1.4.4 requires it).
    BadNotifyMultiplier(u32),
    /// The device did not keep `FEATURES_OK`: it refused our features.
    FeaturesRefused,
    /// The device has fewer queues than needed.
    NoSuchQueue(u16),
    /// The queue's maximum size is smaller than ours (or 0: unavailable).
    QueueTooSmall { queue: u16, max: u16 },
}

/// A modern virtio PCI device.
pub struct VirtioPci {
    common: Mmio,
    notify: Mmio,
    notify_off_multiplier: u32,
    isr: Mmio,
    device: Option<Mmio>,
}

impl VirtioPci {
    /// The device whose structures `caps` describes, in `bar` (BAR number
    /// `bar_index`, mapped).
    pub fn new(bar: Mmio, bar_index: u8, caps: &VirtioCaps) -> Result<Self, TransportError> {
        let sub = |range: &BarRange, what, min: usize| {
            if range.bar != bar_index || (range.length as usize) < min {
                return Err(TransportError::BadCapability(what));
            }
            bar.sub(range).ok_or(TransportError::BadCapability(what))
        };
        if !caps.notify_off_multiplier.is_multiple_of(2) {
            return Err(TransportError::BadNotifyMultiplier(caps.notify_off_multiplier));
        }
        Ok(VirtioPci {
            common: sub(&caps.common, "common configuration", common::LEN)?,
            notify: sub(&caps.notify, "notification", 2)?,
            notify_off_multiplier: caps.notify_off_multiplier,
            isr: sub(&caps.isr, "ISR status", 1)?,
            device: caps.device.as_ref().map(|d| sub(d, "device configuration", 0)).transpose()?,
        })
    }

    /// Resets the device (writing 0 to `device_status`) and waits until it
    /// reads back 0 (4.1.4.3.2), then sets ACKNOWLEDGE and DRIVER (3.1.1
    /// steps 1–3).
    pub fn reset_and_acknowledge(&mut self) {
        self.common.write::<u8>(common::DEVICE_STATUS, 0);
        while self.common.read::<u8>(common::DEVICE_STATUS) != 0 {
            core::hint::spin_loop();
        }
        self.add_status(status::ACKNOWLEDGE);
        self.add_status(status::DRIVER);
    }

    fn add_status(&mut self, bits: u8) {
        let s = self.common.read::<u8>(common::DEVICE_STATUS);
        self.common.write::<u8>(common::DEVICE_STATUS, s | bits);
    }

    pub fn status(&self) -> u8 {
        self.common.read(common::DEVICE_STATUS)
    }

    /// The 64 feature bits the device offers.
    pub fn device_features(&mut self) -> u64 {
        self.common.write::<u32>(common::DEVICE_FEATURE_SELECT, 0);
        let low = self.common.read::<u32>(common::DEVICE_FEATURE);
        self.common.write::<u32>(common::DEVICE_FEATURE_SELECT, 1);
        let high = self.common.read::<u32>(common::DEVICE_FEATURE);
        u64::from(high) << 32 | u64::from(low)
    }

    /// Writes the accepted features and sets FEATURES_OK, then checks that
    /// the device kept it (3.1.1 steps 5–6).
    pub fn set_features(&mut self, features: u64) -> Result<(), TransportError> {
        self.common.write::<u32>(common::DRIVER_FEATURE_SELECT, 0);
        self.common.write::<u32>(common::DRIVER_FEATURE, features as u32);
        self.common.write::<u32>(common::DRIVER_FEATURE_SELECT, 1);
        self.common.write::<u32>(common::DRIVER_FEATURE, (features >> 32) as u32);
        self.add_status(status::FEATURES_OK);
        if self.status() & status::FEATURES_OK == 0 {
            self.add_status(status::FAILED);
            return Err(TransportError::FeaturesRefused);
        }
        Ok(())
    }

    /// Sets up queue `queue` with `size` entries at the given physical
    /// addresses and enables it (4.1.5.1.3). Returns the queue's notify
    /// offset within the notification structure.
    pub fn setup_queue(&mut self, queue: u16, size: u16, (desc, driver, device): (u64, u64, u64)) -> Result<usize, TransportError> {
        if queue >= self.common.read::<u16>(common::NUM_QUEUES) {
            return Err(TransportError::NoSuchQueue(queue));
        }
        self.common.write::<u16>(common::QUEUE_SELECT, queue);
        let max = self.common.read::<u16>(common::QUEUE_SIZE);
        if max < size {
            return Err(TransportError::QueueTooSmall { queue, max });
        }
        self.common.write::<u16>(common::QUEUE_SIZE, size);
        self.common.write::<u64>(common::QUEUE_DESC, desc);
        self.common.write::<u64>(common::QUEUE_DRIVER, driver);
        self.common.write::<u64>(common::QUEUE_DEVICE, device);
        let off = usize::from(self.common.read::<u16>(common::QUEUE_NOTIFY_OFF)) * self.notify_off_multiplier as usize;
        if off + 2 > self.notify.len {
            return Err(TransportError::BadCapability("notification (queue offset beyond it)"));
        }
        self.common.write::<u16>(common::QUEUE_ENABLE, 1);
        Ok(off)
    }

    /// Sets DRIVER_OK: the device is live (3.1.1 step 8).
    pub fn driver_ok(&mut self) {
        self.add_status(status::DRIVER_OK);
    }

    /// Notifies the device that queue `queue` has new buffers: writes its
    /// index at its notify offset (4.1.5.2).
    pub fn notify(&self, queue: u16, notify_offset: usize) {
        self.notify.write::<u16>(notify_offset, queue);
    }

    /// Reads the ISR status, which also clears it and de-asserts the legacy
    /// interrupt (4.1.4.5.1).
    pub fn read_isr(&self) -> u8 {
        self.isr.read(0)
    }

    /// A byte of the device-specific configuration.
    pub fn device_config_u8(&self, offset: usize) -> Option<u8> {
        let d = self.device.as_ref()?;
        (offset < d.len).then(|| d.read(offset))
    }
}
