//! Boot: reading the image's head (superblock and index) into the start of
//! the region, checking it, and making the [`Cache`].

use crate::cache::Cache;
use crate::{CacheError, Config, SECTORS_PER_BLOCK};
use fs_format::{Image, Superblock, BLOCK_SIZE};
use lib_blk_protocol::{Request, Response, Status, QUEUE_CAPACITY, SECTOR_SIZE};

/// Most boot requests outstanding at once (the request queue's capacity).
const WINDOW: usize = QUEUE_CAPACITY;

/// Where the boot stands after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootStatus {
    /// Requests are outstanding or still to be sent.
    Pending,
    /// The head is in the region: call [`Boot::finish`] with its first
    /// [`Boot::head_area`] bytes.
    Ready,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Reading block 0.
    Superblock,
    /// Reading the index blocks; the superblock was valid.
    Index(Superblock),
    /// Everything read.
    Ready(Superblock),
    /// Stopped: the head cannot be served.
    Failed(CacheError),
}

/// Reads the head of the image: block 0 into region bytes `0..4096`, then
/// (once the superblock is valid) the index blocks into the bytes behind
/// it, each block at its own image offset, so the region starts with a
/// copy of the image's head.
///
/// The caller loops: enqueue every [`Boot::next_request`], feed every
/// response to [`Boot::complete`] (with the region's bytes), until it says
/// [`BootStatus::Ready`], then [`Boot::finish`]. Request ids are the
/// requests' ordinals; a response with an id that is not outstanding is
/// counted ([`Boot::unexpected`]) and ignored.
#[derive(Debug)]
pub struct Boot {
    config: Config,
    /// The region's size rounded down to whole blocks.
    region_size: usize,
    phase: Phase,
    /// Next sector to request, and the end of the current phase's sectors.
    next_sector: u64,
    end_sector: u64,
    /// Requests issued so far (the next id).
    issued: u32,
    /// Outstanding ids, at `id % WINDOW`.
    window: [Option<u32>; WINDOW],
    outstanding: usize,
    unexpected: u64,
}

impl Boot {
    /// Starts a boot with the region and disk in `config`.
    pub fn new(config: Config) -> Result<Boot, CacheError> {
        let region_size = config.region_size / BLOCK_SIZE * BLOCK_SIZE;
        // One block of head, one of arena, at the least.
        let needed = 2 * BLOCK_SIZE;
        if region_size < needed {
            return Err(CacheError::RegionTooSmall { region_size: config.region_size, needed });
        }
        if config.disk.max_request_sectors == 0 {
            return Err(CacheError::NoRequestSize);
        }
        if config.disk.capacity < SECTORS_PER_BLOCK {
            return Err(CacheError::ImageLargerThanDisk { image_blocks: 1, disk_sectors: config.disk.capacity });
        }
        Ok(Boot {
            config,
            region_size,
            phase: Phase::Superblock,
            next_sector: 0,
            end_sector: SECTORS_PER_BLOCK,
            issued: 0,
            window: [None; WINDOW],
            outstanding: 0,
            unexpected: 0,
        })
    }

    /// The next request to enqueue, if one may be sent now.
    pub fn next_request(&mut self) -> Option<Request> {
        if !matches!(self.phase, Phase::Superblock | Phase::Index(_)) || self.next_sector >= self.end_sector {
            return None;
        }
        let id = self.issued;
        let at = id as usize % WINDOW;
        if self.window[at].is_some() {
            return None;
        }
        let count = (self.end_sector - self.next_sector).min(u64::from(self.config.disk.max_request_sectors));
        // Head sectors lie at their image offsets, below `end_sector`,
        // which is at most half the region (checked in `complete`).
        let request = Request::read(id, self.next_sector, count as u32, self.next_sector * SECTOR_SIZE as u64);
        self.window[at] = Some(id);
        self.issued = self.issued.wrapping_add(1);
        self.outstanding += 1;
        self.next_sector += count;
        Some(request)
    }

    /// Takes the driver's answer to a boot request. `region` is the cache
    /// region (at least its head): the superblock is read from it once
    /// block 0 has arrived.
    pub fn complete(&mut self, response: Response, region: &[u8]) -> Result<BootStatus, CacheError> {
        if let Phase::Failed(e) = self.phase {
            return Err(e);
        }
        let at = response.id as usize % WINDOW;
        if self.window[at] != Some(response.id) {
            self.unexpected += 1;
            return Ok(self.status());
        }
        self.window[at] = None;
        self.outstanding -= 1;
        if response.status() != Some(Status::Ok) {
            return Err(self.fail(CacheError::Io { status: response.status }));
        }
        if self.outstanding > 0 || self.next_sector < self.end_sector {
            return Ok(BootStatus::Pending);
        }
        match self.phase {
            Phase::Superblock => match self.check_superblock(region) {
                Ok(sb) => {
                    self.next_sector = SECTORS_PER_BLOCK;
                    self.end_sector = u64::from(sb.data_first_block) * SECTORS_PER_BLOCK;
                    self.phase = if self.next_sector >= self.end_sector { Phase::Ready(sb) } else { Phase::Index(sb) };
                }
                Err(e) => return Err(self.fail(e)),
            },
            Phase::Index(sb) => self.phase = Phase::Ready(sb),
            Phase::Ready(_) | Phase::Failed(_) => {}
        }
        Ok(self.status())
    }

    fn fail(&mut self, e: CacheError) -> CacheError {
        self.phase = Phase::Failed(e);
        e
    }

    fn status(&self) -> BootStatus {
        match self.phase {
            Phase::Ready(_) => BootStatus::Ready,
            _ => BootStatus::Pending,
        }
    }

    /// Checks block 0 and that the image fits the disk and its head half
    /// the region.
    fn check_superblock(&self, region: &[u8]) -> Result<Superblock, CacheError> {
        let block = region
            .get(..BLOCK_SIZE)
            .ok_or(CacheError::RegionTooSmall { region_size: region.len(), needed: BLOCK_SIZE })?;
        let sb = Superblock::parse(block).map_err(CacheError::CorruptImage)?;
        if u64::from(sb.block_count) * SECTORS_PER_BLOCK > self.config.disk.capacity {
            return Err(CacheError::ImageLargerThanDisk {
                image_blocks: sb.block_count,
                disk_sectors: self.config.disk.capacity,
            });
        }
        let head_bytes = u64::from(sb.data_first_block) * BLOCK_SIZE as u64;
        if head_bytes > (self.region_size / 2) as u64 {
            return Err(CacheError::IndexTooLarge { head_bytes, region_size: self.region_size });
        }
        Ok(sb)
    }

    /// Bytes at the start of the region that the head takes (whole
    /// blocks), once the superblock is known: pass exactly these to
    /// [`Boot::finish`]; the arena starts behind them.
    pub fn head_area(&self) -> Option<usize> {
        match self.phase {
            Phase::Index(sb) | Phase::Ready(sb) => Some(sb.data_first_block as usize * BLOCK_SIZE),
            _ => None,
        }
    }

    /// Responses whose id was not outstanding.
    pub fn unexpected(&self) -> u64 {
        self.unexpected
    }

    /// Parses the head (the region's first [`Boot::head_area`] bytes,
    /// which the cache borrows for its life and which must not change
    /// again) and makes the cache over the rest of the region.
    ///
    /// [`CacheError::CorruptImage`] if the index fails its checks; the
    /// boot's own error if it failed; [`CacheError::BootIncomplete`] if
    /// called before [`BootStatus::Ready`].
    pub fn finish<'h, const GROUPS: usize, const INFLIGHT: usize, const FILES: usize>(
        self,
        head: &'h [u8],
    ) -> Result<Cache<'h, GROUPS, INFLIGHT, FILES>, CacheError> {
        let sb = match self.phase {
            Phase::Ready(sb) => sb,
            Phase::Failed(e) => return Err(e),
            _ => return Err(CacheError::BootIncomplete),
        };
        let head_area = sb.data_first_block as usize * BLOCK_SIZE;
        let head =
            head.get(..head_area).ok_or(CacheError::RegionTooSmall { region_size: head.len(), needed: head_area })?;
        let image = Image::parse(head).map_err(CacheError::CorruptImage)?;
        if *image.superblock() != sb {
            // Block 0 changed under us: nothing about this image can be trusted.
            return Err(CacheError::CorruptImage(fs_format::FormatError::SuperblockChecksum));
        }
        if image.len() as usize > FILES {
            return Err(CacheError::TooManyFiles { files: image.len(), capacity: FILES });
        }
        Ok(Cache::new(image, head_area, self.region_size, self.config.disk.max_request_sectors))
    }
}
