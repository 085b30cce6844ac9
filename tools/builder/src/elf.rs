//! Reading program images, and writing the bootable root-task image.

use crate::Error;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSymbol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const PAGE: u64 = 4096;

/// One loadable segment, with its file bytes (shorter than `mem_size` when
/// the segment ends in zero-initialised data).
#[derive(Clone, Debug)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub data: Vec<u8>,
    pub writable: bool,
    pub executable: bool,
}

impl Segment {
    pub fn end(&self) -> u64 {
        self.vaddr + self.mem_size
    }
}

/// A program image reduced to what the builder needs.
#[derive(Clone, Debug)]
pub struct Program {
    pub path: PathBuf,
    pub entry: u64,
    pub segments: Vec<Segment>,
    symbols: HashMap<String, (u64, u64)>,
}

impl Program {
    pub fn load(path: &Path) -> Result<Program, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::other(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Program, Error> {
        let bad = |what: String| Error::other(format!("{}: {what}", path.display()));
        let file = ElfFile64::<Endianness>::parse(bytes).map_err(|e| bad(format!("not a 64-bit ELF file: {e}")))?;
        let header = file.elf_header();
        let endian = file.endian();
        if header.e_machine(endian) != elf::EM_X86_64 {
            return Err(bad("not an x86_64 program".into()));
        }
        let mut segments = Vec::new();
        for ph in file.elf_program_headers() {
            if ph.p_type(endian) != elf::PT_LOAD || ph.p_memsz(endian) == 0 {
                continue;
            }
            let data = ph.data(endian, bytes).map_err(|_| bad("segment data out of the file".into()))?;
            let flags = ph.p_flags(endian);
            segments.push(Segment {
                vaddr: ph.p_vaddr(endian),
                mem_size: ph.p_memsz(endian),
                data: data.to_vec(),
                writable: flags & elf::PF_W != 0,
                executable: flags & elf::PF_X != 0,
            });
        }
        if segments.is_empty() {
            return Err(bad("no loadable segments".into()));
        }
        let symbols =
            file.symbols().filter_map(|s| Some((s.name().ok()?.to_string(), (s.address(), s.size())))).collect();
        Ok(Program { path: path.to_path_buf(), entry: file.entry(), segments, symbols })
    }

    /// Address and size of a symbol.
    pub fn symbol(&self, name: &str) -> Option<(u64, u64)> {
        self.symbols.get(name).copied()
    }

    /// Names of every symbol.
    pub fn symbol_names(&self) -> impl Iterator<Item = &str> {
        self.symbols.keys().map(String::as_str)
    }

    /// The initial value of a `u64` symbol in initialised data.
    pub fn read_u64(&self, name: &str) -> Option<u64> {
        let (addr, _) = self.symbol(name)?;
        let seg = self.segments.iter().find(|s| addr >= s.vaddr && addr + 8 <= s.vaddr + s.data.len() as u64)?;
        let at = (addr - seg.vaddr) as usize;
        Some(u64::from_le_bytes(seg.data[at..at + 8].try_into().ok()?))
    }

    /// Overwrites the initial bytes of a symbol. The symbol must lie in the
    /// file-backed part of a segment (initialised data), which is why the
    /// runtime gives every patchable variable a non-zero placeholder.
    pub fn patch(&mut self, name: &str, value: &[u8]) -> Result<(), String> {
        let (addr, size) = self.symbol(name).ok_or_else(|| format!("symbol `{name}` not found"))?;
        if size != 0 && value.len() as u64 > size {
            return Err(format!("symbol `{name}` has {size} bytes, {} needed", value.len()));
        }
        let seg = self
            .segments
            .iter_mut()
            .find(|s| addr >= s.vaddr && addr + value.len() as u64 <= s.vaddr + s.data.len() as u64)
            .ok_or_else(|| format!("symbol `{name}` is not in initialised data"))?;
        let at = (addr - seg.vaddr) as usize;
        seg.data[at..at + value.len()].copy_from_slice(value);
        Ok(())
    }

    /// Adds (or moves) a symbol: for tests, whose images are written
    /// without a symbol table.
    #[cfg(test)]
    pub(crate) fn add_symbol(&mut self, name: &str, addr: u64, size: u64) {
        self.symbols.insert(name.to_string(), (addr, size));
    }

    /// Adds a `u64` symbol at `addr` and writes `value` there: a test's
    /// stand-in for a variable a program declares.
    #[cfg(test)]
    pub(crate) fn patch_or_add(&mut self, name: &str, addr: u64, value: u64) {
        self.add_symbol(name, addr, 8);
        self.patch(name, &value.to_le_bytes()).expect("inside initialised data");
    }

    #[cfg(test)]
    pub(crate) fn remove_symbol(&mut self, name: &str) {
        self.symbols.remove(name);
    }

    /// Lowest and highest (exclusive) virtual address of the image.
    pub fn extent(&self) -> (u64, u64) {
        let lo = self.segments.iter().map(|s| s.vaddr).min().unwrap_or(0);
        let hi = self.segments.iter().map(|s| s.end()).max().unwrap_or(0);
        (lo, hi)
    }
}

pub fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

pub fn page_up(x: u64) -> u64 {
    (x + PAGE - 1) & !(PAGE - 1)
}

/// Writes a static ELF64 executable made of `segments` only (no sections):
/// all the seL4 root-task loader and multiboot loaders need.
pub fn write_executable(entry: u64, segments: &[Segment]) -> Vec<u8> {
    const EHDR: u64 = 64;
    const PHDR: u64 = 56;
    let mut out = Vec::new();
    let phoff = EHDR;
    let mut offset = page_up(EHDR + PHDR * segments.len() as u64);
    let mut placed = Vec::new();
    for s in segments {
        // File offset congruent to vaddr modulo the page size.
        offset = page_up(offset) + (s.vaddr % PAGE);
        placed.push(offset);
        offset += s.data.len() as u64;
    }
    // ELF header.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&elf::ET_EXEC.to_le_bytes());
    out.extend_from_slice(&elf::EM_X86_64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&phoff.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(EHDR as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR as u16).to_le_bytes());
    out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    for (s, &off) in segments.iter().zip(&placed) {
        let flags = elf::PF_R | if s.writable { elf::PF_W } else { 0 } | if s.executable { elf::PF_X } else { 0 };
        out.extend_from_slice(&elf::PT_LOAD.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&s.vaddr.to_le_bytes());
        out.extend_from_slice(&s.vaddr.to_le_bytes());
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.mem_size.to_le_bytes());
        out.extend_from_slice(&PAGE.to_le_bytes());
    }
    for (s, &off) in segments.iter().zip(&placed) {
        out.resize(off as usize, 0);
        out.extend_from_slice(&s.data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_executable_reads_back() {
        let segs = vec![
            Segment { vaddr: 0x400000, mem_size: 0x1800, data: vec![0xc3; 0x1000], writable: false, executable: true },
            Segment { vaddr: 0x402010, mem_size: 0x20, data: vec![7; 0x10], writable: true, executable: false },
        ];
        let bytes = write_executable(0x400000, &segs);
        let p = Program::parse(Path::new("t"), &bytes).unwrap();
        assert_eq!(p.entry, 0x400000);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].vaddr, 0x402010);
        assert_eq!(p.segments[1].data, vec![7; 0x10]);
        assert_eq!(p.segments[1].mem_size, 0x20);
        assert!(p.segments[1].writable && !p.segments[0].writable);
        assert_eq!(p.extent(), (0x400000, 0x402030));
    }
}
