//! Link settings for bare-metal programs (PDs and the root task).
//!
//! Every program is built for the host triple `x86_64-unknown-linux-gnu` as
//! `no_std`/`no_main`, so that no extra rustup target or rust-src is needed.
//! What makes it bare-metal is only how it is linked: no C runtime, no libc,
//! static, not position-independent, and a linker script that emits nothing
//! but page-aligned `PT_LOAD` segments (the seL4 root-task loader walks every
//! program header and accepts only loadable ones). These flags must apply to
//! the program alone, never to host tools sharing the triple, hence a build
//! script helper: call [`link_bare_metal`] from the program's `build.rs`.

use std::{env, fs, path::PathBuf};

/// Where a program's first segment starts.
#[derive(Clone, Copy, Debug)]
pub enum Base {
    /// Protection domains: each has its own address space.
    ProtectionDomain,
    /// The root task; the kernel places boot info right after its image.
    RootTask,
}

impl Base {
    fn address(self) -> u64 {
        match self {
            Base::ProtectionDomain => 0x20_0000,
            Base::RootTask => 0x40_0000,
        }
    }
}

/// The linker script: three loadable segments (code, read-only data,
/// read-write data), nothing else. Unwind tables are dropped (panic=abort).
fn linker_script(base: Base) -> String {
    format!(
        r#"ENTRY(_start)
PHDRS
{{
    text PT_LOAD FLAGS(5);
    rodata PT_LOAD FLAGS(4);
    data PT_LOAD FLAGS(6);
}}
SECTIONS
{{
    . = {base:#x};
    .text : ALIGN(4096) {{ *(.text.start) *(.text .text.*) }} :text
    . = ALIGN(4096);
    .rodata : ALIGN(4096) {{ *(.rodata .rodata.*) }} :rodata
    . = ALIGN(4096);
    .data : ALIGN(4096) {{ *(.data .data.*) *(.got .got.*) *(.got.plt) }} :data
    .bss : ALIGN(16) {{ *(.bss .bss.*) *(COMMON) }} :data
    /DISCARD/ : {{ *(.eh_frame*) *(.note*) *(.comment) *(.gcc_except_table*) *(.interp) *(.dynamic) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash) }}
}}
"#,
        base = base.address()
    )
}

/// Emits the link arguments for the binaries of the calling package.
pub fn link_bare_metal(base: Base) {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    let script = out.join("link.ld");
    fs::write(&script, linker_script(base)).expect("write linker script");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=4096",
        "-Wl,-z,noexecstack",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
}
