//! Generates the kernel-ABI bindings of this crate from the seL4 source
//! (interface XML, `.bf` bitfields, C headers) evaluated against the kernel
//! configuration (an autoconf.h), so that labels, numbers and layouts always
//! match the kernel that is actually built.
//!
//! Inputs:
//! - `SEL4_KERNEL_SOURCE`: the kernel's `seL4/` folder; by default the one
//!   shipped in the `sel4-sys` crate, found with `cargo metadata`.
//! - `SEL4_CONFIG_FILE`: the kernel's autoconf.h; by default
//!   `<workspace>/kernel/configs/debug/autoconf.h`.

#[path = "build/bf.rs"]
mod bf;
#[path = "build/cheaders.rs"]
mod cheaders;
#[path = "build/cpp.rs"]
mod cpp;
#[path = "build/emit.rs"]
mod emit;
#[path = "build/expr.rs"]
mod expr;
#[path = "build/model.rs"]
mod model;
#[path = "build/names.rs"]
mod names;
#[path = "build/xml.rs"]
mod xml;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().expect("sel4 lives inside the workspace").to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");

    let src = kernel_source(&workspace);
    let config_path = config_file(&workspace, &src);
    let config = cpp::Config::parse(&std::fs::read_to_string(&config_path).unwrap());
    let lib = src.join("libsel4");

    // C headers, in dependency order (later enums refer to earlier ones).
    let headers = [
        "include/sel4/constants.h",
        "include/sel4/errors.h",
        "include/sel4/objecttype.h",
        "sel4_arch_include/x86_64/sel4/sel4_arch/objecttype.h",
        "arch_include/x86/sel4/arch/objecttype.h",
        "sel4_arch_include/x86_64/sel4/sel4_arch/constants.h",
        "arch_include/x86/sel4/arch/constants.h",
        "include/sel4/bootinfo_types.h",
        "include/sel4/shared_types.h",
        "arch_include/x86/sel4/arch/types.h",
    ]
    .map(|f| lib.join(f));
    let bf_files = [
        "include/sel4/shared_types_64.bf",
        "include/sel4/types_64.bf",
        "sel4_arch_include/x86_64/sel4/sel4_arch/types.bf",
        "arch_include/x86/sel4/arch/shared_types.bf",
    ]
    .map(|f| lib.join(f));
    // Label order of the kernel: generic, then sel4_arch, then arch.
    let xml_files = [
        "include/interfaces/sel4.xml",
        "sel4_arch_include/x86_64/interfaces/sel4arch.xml",
        "arch_include/x86/interfaces/sel4arch.xml",
    ]
    .map(|f| lib.join(f));
    let syscall_xml = lib.join("include/api/syscall.xml");
    for f in headers.iter().chain(&bf_files).chain(&xml_files).chain([&syscall_xml, &config_path]) {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let h = cheaders::Headers::read(&headers, &config);
    let spec = bf::BitfieldSpec::read(&bf_files, &config);
    let syscalls = xml::read_syscalls(&syscall_xml);
    let interfaces: Vec<_> = xml_files.iter().map(|f| xml::read_interfaces(f)).collect();
    let interface_refs: Vec<_> = interfaces.iter().collect();

    write(&out_dir.join("constants.rs"), &emit::constants(&h, &spec, &config, &syscalls));
    write(&out_dir.join("invocations.rs"), &emit::invocations(&interface_refs, &config));

    // Paths the tests use to check our output against the kernel's own tools.
    println!("cargo:rustc-env=SEL4_BUILD_KERNEL_SOURCE={}", src.display());
    println!("cargo:rustc-env=SEL4_BUILD_CONFIG_FILE={}", config_path.display());

    println!("cargo:rustc-check-cfg=cfg(sel4_debug_build)");
    println!("cargo:rustc-check-cfg=cfg(sel4_printing)");
    if config.is_set("CONFIG_DEBUG_BUILD") {
        println!("cargo:rustc-cfg=sel4_debug_build");
    }
    if config.is_set("CONFIG_PRINTING") {
        println!("cargo:rustc-cfg=sel4_printing");
    }
}

/// Write generated code, formatted with rustfmt when it is available.
fn write(path: &Path, code: &str) {
    std::fs::write(path, code).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let _ = Command::new("rustfmt").args(["--edition", "2021"]).arg(path).status();
}

fn kernel_source(workspace: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=SEL4_KERNEL_SOURCE");
    if let Some(p) = env::var_os("SEL4_KERNEL_SOURCE") {
        return PathBuf::from(p);
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed (it finds, and downloads if need be, the seL4 source crate sel4-sys; \
         without network set SEL4_KERNEL_SOURCE to a seL4 5.0.0 source tree): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8(out.stdout).unwrap();
    // The package entry for sel4-sys carries its manifest_path; avoid a JSON
    // dependency by finding the path that ends in sel4-sys-<version>/Cargo.toml.
    let path = json
        .split("\"manifest_path\":\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .find(|p| p.contains("/sel4-sys-") && p.ends_with("/Cargo.toml"))
        .expect("package sel4-sys not found by cargo metadata; set SEL4_KERNEL_SOURCE");
    Path::new(path).parent().unwrap().join("seL4")
}

fn config_file(workspace: &Path, src: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=SEL4_CONFIG_FILE");
    if let Some(p) = env::var_os("SEL4_CONFIG_FILE") {
        return PathBuf::from(p);
    }
    let project = workspace.join("kernel/configs/debug/autoconf.h");
    // Rebuild when the project's config appears or changes.
    println!("cargo:rerun-if-changed={}", project.display());
    if project.exists() {
        return project;
    }
    let fallback = src.join("include/plat/pc99/autoconf.h");
    println!(
        "cargo:warning=sel4: {} does not exist; using the kernel's sample config {}",
        project.display(),
        fallback.display()
    );
    fallback
}
