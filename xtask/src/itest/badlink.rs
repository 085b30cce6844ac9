//! A bad network between the node and the namespace, made in user space
//! (the test machines' kernels have no `netem`): QEMU's NIC is a `dgram`
//! netdev on the namespace's loopback, and a relay carries each frame
//! between it and the namespace's TAP device, losing, duplicating, delaying
//! and reordering them at random, the same in both directions.
//!
//! Reordering comes from the delay's jitter (a frame delayed less overtakes
//! one delayed more) and from frames let through at once with
//! [`Impairment::reorder_percent`] (netem's `reorder`).

use super::node::{Netns, TAP};
use anyhow::{ensure, Context, Result};
use lib_test_rng::Rng;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happens to each frame, in each direction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Impairment {
    pub loss_percent: u64,
    pub duplicate_percent: u64,
    pub delay: Duration,
    pub jitter: Duration,
    /// Frames sent at once, without the delay (they overtake the others).
    pub reorder_percent: u64,
}

impl std::fmt::Display for Impairment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} % loss, {} % duplicated, {} ms ± {} ms delay, {} % reordered",
            self.loss_percent,
            self.duplicate_percent,
            self.delay.as_millis(),
            self.jitter.as_millis(),
            self.reorder_percent
        )
    }
}

/// The bad network of issue 11's acceptance (netem's `loss 5% duplicate 2%
/// delay 50ms 10ms reorder 10%`), in each direction.
pub(super) const BAD_LINK: Impairment = Impairment {
    loss_percent: 5,
    duplicate_percent: 2,
    delay: Duration::from_millis(50),
    jitter: Duration::from_millis(10),
    reorder_percent: 10,
};

/// A frame waiting for its time, and where it goes.
struct Due {
    at: Instant,
    order: u64,
    to_tap: bool,
    frame: Vec<u8>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// The earliest first (a max-heap of reversed times).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// The relay; it stops when dropped.
pub(super) struct BadLink {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    qemu_args: Vec<String>,
    /// Frames relayed, lost and duplicated (both directions).
    pub(super) counts: Arc<[AtomicU64; 3]>,
}

/// Opens the namespace's TAP device (`ip tuntap` made it persistent) as a
/// TAP queue without packet information (`TUNSETIFF`, IFF_TAP|IFF_NO_PI).
fn open_tap() -> Result<File> {
    const TUNSETIFF: u64 = 0x4004_54ca;
    const IFF_TAP: u16 = 0x0002;
    const IFF_NO_PI: u16 = 0x1000;
    const O_NONBLOCK: i32 = 0o4000;
    const F_SETFL: i32 = 4;
    extern "C" {
        fn ioctl(fd: i32, request: u64, ...) -> i32;
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    }
    let file =
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").context("opening /dev/net/tun")?;
    let mut ifreq = [0u8; 40];
    ifreq[..TAP.len()].copy_from_slice(TAP.as_bytes());
    ifreq[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq` (40 bytes on
    // x86_64), which `ifreq` is, for the open tun descriptor.
    let rc = unsafe { ioctl(file.as_raw_fd(), TUNSETIFF, ifreq.as_mut_ptr()) };
    ensure!(rc == 0, "TUNSETIFF {TAP}: {}", std::io::Error::last_os_error());
    // SAFETY: F_SETFL with an int flag on a descriptor this process owns.
    let rc = unsafe { fcntl(file.as_raw_fd(), F_SETFL, O_NONBLOCK) };
    ensure!(rc == 0, "O_NONBLOCK: {}", std::io::Error::last_os_error());
    Ok(file)
}

impl BadLink {
    /// Starts the relay inside `ns` (whose TAP device must exist and carry
    /// no QEMU) with `impairment`; [`BadLink::qemu_args`] are the NIC's
    /// QEMU arguments.
    pub(super) fn start(ns: &Netns, impairment: Impairment, seed: u64) -> Result<BadLink> {
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<[AtomicU64; 3]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        // Sockets and the TAP queue are made in the namespace, by a thread
        // that enters it (namespaces are per thread).
        let (socket, tap, qemu_port) = std::thread::scope(|s| {
            s.spawn(|| -> Result<(UdpSocket, File, u16)> {
                ns.enter()?;
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                let qemu_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
                Ok((socket, open_tap()?, qemu_port))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the namespace thread panicked"))?
        })?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let qemu: SocketAddr = format!("127.0.0.1:{qemu_port}").parse()?;
        let qemu_args = crate::harness::qemu::dgram_nic(qemu_port, socket.local_addr()?.port());

        let queue = Arc::new(Mutex::new((BinaryHeap::<Due>::new(), Rng(seed | 1), 0u64)));
        let schedule = {
            let (queue, counts) = (queue.clone(), counts.clone());
            move |to_tap: bool, frame: Vec<u8>| {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                let (heap, rng, order) = &mut *q;
                if (rng.next() % 100) < impairment.loss_percent {
                    counts[1].fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let copies = if (rng.next() % 100) < impairment.duplicate_percent {
                    counts[2].fetch_add(1, Ordering::Relaxed);
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let at = if (rng.next() % 100) < impairment.reorder_percent {
                        Instant::now()
                    } else {
                        let jitter = impairment.jitter.as_micros() as u64;
                        let spread = if jitter == 0 { 0 } else { rng.next() % (2 * jitter + 1) };
                        Instant::now() + impairment.delay + Duration::from_micros(spread) - impairment.jitter
                    };
                    *order += 1;
                    heap.push(Due { at, order: *order, to_tap, frame: frame.clone() });
                }
            }
        };
        let mut threads = Vec::new();
        // Namespace → node.
        {
            let (stop, schedule, mut tap) = (stop.clone(), schedule.clone(), tap.try_clone()?);
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    match tap.read(&mut buf) {
                        Ok(n) if n > 0 => schedule(false, buf[..n].to_vec()),
                        _ => std::thread::sleep(Duration::from_micros(500)),
                    }
                }
            }));
        }
        // Node → namespace.
        {
            let (stop, schedule, socket) = (stop.clone(), schedule.clone(), socket.try_clone()?);
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = socket.recv(&mut buf) {
                        schedule(true, buf[..n].to_vec());
                    }
                }
            }));
        }
        // The clock: frames leave when their time comes.
        {
            let (stop, counts, mut tap) = (stop.clone(), counts.clone(), tap);
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let due = {
                        let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                        match q.0.peek() {
                            Some(d) if d.at <= Instant::now() => q.0.pop(),
                            _ => None,
                        }
                    };
                    match due {
                        Some(d) => {
                            counts[0].fetch_add(1, Ordering::Relaxed);
                            if d.to_tap {
                                let _ = tap.write(&d.frame);
                            } else {
                                let _ = socket.send_to(&d.frame, qemu);
                            }
                        }
                        None => std::thread::sleep(Duration::from_micros(300)),
                    }
                }
            }));
        }
        Ok(BadLink { stop, threads, qemu_args, counts })
    }

    /// The QEMU arguments of the NIC behind the relay.
    pub(super) fn qemu_args(&self) -> &[String] {
        &self.qemu_args
    }

    /// "N frames relayed, L lost, D duplicated".
    pub(super) fn summary(&self) -> String {
        let [relayed, lost, duplicated] = [0, 1, 2].map(|i| self.counts[i].load(Ordering::Relaxed));
        format!("{relayed} frames relayed, {lost} lost, {duplicated} duplicated")
    }
}

impl Drop for BadLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
