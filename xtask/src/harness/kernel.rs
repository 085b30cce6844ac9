//! Building the seL4 kernel from source, with caching.
//!
//! The kernel is seL4 5.0.0, whose source ships inside the crates.io crate
//! `sel4-sys` (pinned by Cargo.lock; never compiled). A build copies that
//! pristine tree, applies the project's patches (`kernel/patches/`), installs
//! the project's configuration (`kernel/configs/<config>/autoconf.h`) and runs
//! the kernel's own Makefile out of tree. kernel/README.md tells the whole
//! story; this module only automates it.

use crate::harness::deps;
use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The kernel configurations the project builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelConfig {
    /// Kernel printing, asserts and the debug syscalls (a PD may print
    /// through the kernel, halt the machine, name threads): for development
    /// (`cargo xtask build --config debug`).
    Debug,
    /// No printing or debug syscalls: the default of `cargo xtask build`
    /// and `run`, for deployment and benchmarks. PDs log through the serial
    /// PD's console rings, the monitor to COM1 directly.
    Release,
}

impl KernelConfig {
    /// The config's name: its folder under `kernel/configs/` and the prefix of
    /// its build folder.
    pub fn name(self) -> &'static str {
        match self {
            KernelConfig::Debug => "debug",
            KernelConfig::Release => "release",
        }
    }

    /// The variables passed on the make command line.
    ///
    /// `DEBUG=1` is required on top of CONFIG_DEBUG_BUILD in the config: only
    /// it adds `-DDEBUG` and the debug-only sources (capdl.c) to the build.
    fn make_vars(self) -> Vec<&'static str> {
        let mut vars = vec!["ARCH=x86", "SEL4_ARCH=x86_64", "PLAT=pc99", "PYTHON=/usr/bin/python3"];
        if self == KernelConfig::Debug {
            vars.push("DEBUG=1");
        }
        vars
    }
}

/// A built kernel.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub config: KernelConfig,
    /// The 64-bit kernel image.
    pub elf: PathBuf,
    /// The same image as ELF32, which multiboot loaders (QEMU `-kernel`, GRUB)
    /// require.
    pub elf32: PathBuf,
    /// The configuration the kernel was built with.
    pub autoconf: PathBuf,
    /// The patched seL4 source tree the kernel was built from.
    pub source: PathBuf,
}

/// Appended to the kernel's own compiler flags through the environment (CFLAGS
/// on the make command line would replace them). gcc 12 raises these two
/// warnings on the 2017 source, and the kernel builds with -Werror.
const EXTRA_CFLAGS: &str = "-Wno-address-of-packed-member -Wno-array-bounds";

/// Parallel make jobs: the build machines have two cores.
const MAKE_JOBS: &str = "-j2";

/// The file, relative to the seL4 source root, that the Makefile copies into
/// the build as autoconf.h. The kernel sources also find it first on their
/// include path, so the project's config replaces this file in the source copy.
const AUTOCONF_IN_SOURCE: &str = "include/plat/pc99/autoconf.h";

/// How many lines of make output to show when the build fails.
const FAILURE_TAIL_LINES: usize = 40;

/// Path of the pristine seL4 source inside the `sel4-sys` crate, found with
/// `cargo metadata` so that Cargo.lock decides which copy is used.
pub fn sel4_source(workspace: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    ensure!(output.status.success(), "cargo metadata failed with {}", output.status);
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata output")?;
    let manifest = metadata["packages"]
        .as_array()
        .and_then(|pkgs| pkgs.iter().find(|p| p["name"] == "sel4-sys"))
        .and_then(|p| p["manifest_path"].as_str())
        .context("package sel4-sys not found in cargo metadata (it should be a dependency of sel4/)")?;
    let source = Path::new(manifest).parent().context("manifest path has no parent")?.join("seL4");
    ensure!(source.join("Makefile").is_file(), "no seL4 source at {}", source.display());
    Ok(source)
}

/// Builds the kernel for `config`, or reuses the cached build.
///
/// Everything lives under `<workspace>/target/kernel/`: the patched source in
/// `src-<key>/` and the build in `<config>-<key>/`, where the key hashes every
/// input of the build (see [`BuildInputs`]). A build is reused only if it
/// completed with exactly the same inputs.
pub fn build(workspace: &Path, config: KernelConfig) -> Result<Kernel> {
    deps::ensure_packages(deps::KERNEL_BUILD)?;
    let pristine = sel4_source(workspace)?;
    let inputs = BuildInputs::collect(workspace, config, &pristine)?;
    let key = inputs.key();

    let root = workspace.join("target/kernel");
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let build_dir = root.join(format!("{}-{key}", config.name()));
    let kernel = Kernel {
        config,
        elf: build_dir.join("kernel.elf"),
        elf32: build_dir.join("kernel32.elf"),
        autoconf: inputs.autoconf.clone(),
        source: root.join(format!("src-{key}")),
    };

    // Two xtask processes (say, parallel tests) may want the same kernel:
    // the second waits here and then finds it cached.
    let lock_path = root.join(format!("{}-{key}.lock", config.name()));
    let lock = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;

    let stamp = build_dir.join("build-inputs.txt");
    if stamp.is_file() && kernel.elf.is_file() && kernel.elf32.is_file() {
        println!("kernel ({}): cached {}", config.name(), kernel.elf.display());
        return Ok(kernel);
    }

    let start = Instant::now();
    prepare_source(&pristine, &inputs, &kernel.source)?;
    recreate_dir(&build_dir)?;
    let python_shim = python_shim(&build_dir)?;
    run_make(config, &kernel.source, &build_dir, &python_shim)?;
    to_elf32(&kernel.elf, &kernel.elf32)?;
    // Written last: its presence marks the build as complete.
    fs::write(&stamp, inputs.describe()).with_context(|| format!("writing {}", stamp.display()))?;
    println!("kernel ({}): built {} in {:.1} s", config.name(), kernel.elf.display(), start.elapsed().as_secs_f64());
    Ok(kernel)
}

/// Everything a kernel build depends on, and hence its cache key.
#[derive(Debug)]
struct BuildInputs {
    config: KernelConfig,
    /// The project's autoconf.h for this config (reported, not hashed), and
    /// its content.
    autoconf: PathBuf,
    autoconf_text: Vec<u8>,
    /// The project's patches in the order they apply, with their content.
    patches: Vec<(PathBuf, Vec<u8>)>,
    /// The seL4 source's VERSION file.
    source_version: String,
    /// `gcc --version`: a compiler upgrade can change or break the build.
    gcc_version: String,
}

impl BuildInputs {
    fn collect(workspace: &Path, config: KernelConfig, pristine: &Path) -> Result<Self> {
        let autoconf = workspace.join("kernel/configs").join(config.name()).join("autoconf.h");
        let autoconf_text = read(&autoconf)?;
        let patches = patch_files(&workspace.join("kernel/patches"))?
            .into_iter()
            .map(|path| {
                let text = read(&path)?;
                Ok((path, text))
            })
            .collect::<Result<_>>()?;
        let source_version = String::from_utf8_lossy(&read(&pristine.join("VERSION"))?).trim().to_owned();
        Ok(BuildInputs { config, autoconf, autoconf_text, patches, source_version, gcc_version: gcc_version()? })
    }

    /// A human-readable account of the inputs: hashed for the cache key, and
    /// kept in the build folder to show what a build was made from.
    fn describe(&self) -> String {
        let mut text = format!("config {}\n", self.config.name());
        text += &format!("autoconf.h {}\n", sha256_hex(&self.autoconf_text));
        for (path, content) in &self.patches {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            text += &format!("patch {name} {}\n", sha256_hex(content));
        }
        text += &format!("seL4 {}\n", self.source_version);
        text += &format!("make {} {MAKE_JOBS}\n", self.config.make_vars().join(" "));
        text += &format!("CFLAGS {EXTRA_CFLAGS}\n");
        text += &format!("gcc {}\n", self.gcc_version);
        text
    }

    /// The cache key: 16 hex digits of the SHA-256 of [`Self::describe`].
    /// It hashes file contents, never paths, so moving the workspace keeps it.
    fn key(&self) -> String {
        sha256_hex(self.describe().as_bytes())[..16].to_owned()
    }
}

/// The `*.patch` files in `dir`, sorted by file name: the order they apply in.
fn patch_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut patches = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "patch") && path.is_file() {
            patches.push(path);
        }
    }
    patches.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(patches)
}

/// Makes `dest` a patched, configured copy of the pristine source. The
/// registry copy is never touched: the Makefile even deletes generated headers
/// inside SOURCE_ROOT.
fn prepare_source(pristine: &Path, inputs: &BuildInputs, dest: &Path) -> Result<()> {
    recreate_dir(dest)?;
    copy_tree(pristine, dest).with_context(|| format!("copying {} to {}", pristine.display(), dest.display()))?;
    for (patch, _) in &inputs.patches {
        apply_patch(dest, patch)?;
    }
    let autoconf = dest.join(AUTOCONF_IN_SOURCE);
    fs::write(&autoconf, &inputs.autoconf_text).with_context(|| format!("writing {}", autoconf.display()))
}

/// Applies one unified diff with `patch -p1`, failing on any rejected hunk.
fn apply_patch(source: &Path, patch: &Path) -> Result<()> {
    let output = Command::new("patch")
        .args(["-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-d"])
        .arg(source)
        .arg("-i")
        .arg(patch)
        .output()
        .context("running patch")?;
    if !output.status.success() {
        bail!(
            "patch {} does not apply to the seL4 source:\n{}{}",
            patch.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Creates `<dir>/python-shim/python` -> /usr/bin/python3 and returns the
/// folder. The kernel's generators run as `python`, which must be Debian's
/// python3 (it has ply and tempita), not whatever `python` PATH would find.
/// The folder lives in the build folder, so concurrent builds never share it.
fn python_shim(dir: &Path) -> Result<PathBuf> {
    let shim = dir.join("python-shim");
    let link = shim.join("python");
    fs::create_dir(&shim).with_context(|| format!("creating {}", shim.display()))?;
    std::os::unix::fs::symlink("/usr/bin/python3", &link).with_context(|| format!("creating {}", link.display()))?;
    Ok(shim)
}

/// Runs the kernel's Makefile in `build_dir`, logging to `make.log` there.
fn run_make(config: KernelConfig, source: &Path, build_dir: &Path, python_shim: &Path) -> Result<()> {
    let log_path = build_dir.join("make.log");
    let log = File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let path = std::env::join_paths(
        std::iter::once(python_shim.to_path_buf())
            .chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths)),
    )
    .context("building PATH")?;
    let status = Command::new("make")
        .current_dir(build_dir)
        .arg("-f")
        .arg(source.join("Makefile"))
        .arg(format!("SOURCE_ROOT={}", source.display()))
        .args(config.make_vars())
        .arg(MAKE_JOBS)
        .env("CFLAGS", EXTRA_CFLAGS)
        .env("PATH", path)
        // A make or cargo jobserver inherited from a parent must not leak in.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running make")?;
    if !status.success() {
        let output = fs::read_to_string(&log_path).unwrap_or_default();
        bail!(
            "kernel ({}) build failed ({status}); last lines of {}:\n{}",
            config.name(),
            log_path.display(),
            last_lines(&output, FAILURE_TAIL_LINES)
        );
    }
    Ok(())
}

/// Converts the kernel to ELF32: multiboot loaders refuse ELF64 images.
fn to_elf32(elf: &Path, elf32: &Path) -> Result<()> {
    let output =
        Command::new("objcopy").args(["-O", "elf32-i386"]).args([elf, elf32]).output().context("running objcopy")?;
    ensure!(
        output.status.success(),
        "objcopy -O elf32-i386 {} failed: {}",
        elf.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The first line of `gcc --version`, which names the compiler and version.
fn gcc_version() -> Result<String> {
    let output = Command::new("gcc").arg("--version").output().context("running gcc --version")?;
    ensure!(output.status.success(), "gcc --version failed with {}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout.lines().next().unwrap_or_default().to_owned())
}

/// Copies the directory tree `from` into the existing directory `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Makes `dir` an empty directory, deleting whatever was there.
fn recreate_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(config: KernelConfig, autoconf: &str, patches: &[(&str, &str)]) -> BuildInputs {
        BuildInputs {
            config,
            autoconf: PathBuf::from("/ws/kernel/configs/x/autoconf.h"),
            autoconf_text: autoconf.as_bytes().to_vec(),
            patches: patches.iter().map(|(n, t)| (PathBuf::from(n), t.as_bytes().to_vec())).collect(),
            source_version: "5.0.0".into(),
            gcc_version: "gcc 12.2.0".into(),
        }
    }

    #[test]
    fn key_changes_with_every_input() {
        let base = inputs(KernelConfig::Debug, "A", &[("0001.patch", "p")]);
        let key = base.key();
        assert_eq!(key.len(), 16);
        assert_eq!(key, inputs(KernelConfig::Debug, "A", &[("0001.patch", "p")]).key());
        assert_ne!(key, inputs(KernelConfig::Release, "A", &[("0001.patch", "p")]).key());
        assert_ne!(key, inputs(KernelConfig::Debug, "B", &[("0001.patch", "p")]).key());
        assert_ne!(key, inputs(KernelConfig::Debug, "A", &[("0001.patch", "q")]).key());
        assert_ne!(key, inputs(KernelConfig::Debug, "A", &[]).key());
        assert_ne!(
            key,
            BuildInputs { source_version: "5.0.1".into(), ..inputs(KernelConfig::Debug, "A", &[("0001.patch", "p")]) }
                .key()
        );
        assert_ne!(
            key,
            BuildInputs { gcc_version: "gcc 13".into(), ..inputs(KernelConfig::Debug, "A", &[("0001.patch", "p")]) }
                .key()
        );
    }

    #[test]
    fn key_ignores_workspace_location() {
        let a = inputs(KernelConfig::Debug, "A", &[]);
        let b =
            BuildInputs { autoconf: PathBuf::from("/elsewhere/autoconf.h"), ..inputs(KernelConfig::Debug, "A", &[]) };
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn patches_apply_in_name_order() {
        let dir = std::env::temp_dir().join(format!("xtask-patch-order-{}", std::process::id()));
        recreate_dir(&dir).unwrap();
        for name in ["0002-b.patch", "0010-c.patch", "0001-a.patch", "README.md"] {
            fs::write(dir.join(name), "").unwrap();
        }
        let names: Vec<String> =
            patch_files(&dir).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["0001-a.patch", "0002-b.patch", "0010-c.patch"]);
    }

    #[test]
    fn debug_alone_passes_debug_to_make() {
        assert!(KernelConfig::Debug.make_vars().contains(&"DEBUG=1"));
        assert!(!KernelConfig::Release.make_vars().contains(&"DEBUG=1"));
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a");
    }
}
