//! Host build dependencies, installed from Debian on demand.
//!
//! The kernel build and the QEMU runs need a handful of Debian packages. Rather
//! than documenting a setup step that people forget, each xtask command states
//! what it needs and [`ensure_packages`] installs whatever is missing (when
//! running as root, as on the project's build machines) or says exactly which
//! command to run (otherwise).

use anyhow::{bail, Context, Result};
use std::env;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// A Debian package and how to tell whether it is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Package {
    /// The Debian package name, as passed to `apt-get install`.
    pub name: &'static str,
    /// A command name looked up on PATH, or an absolute path of a file the
    /// package provides. Probing a file is much cheaper than asking dpkg, and
    /// it also accepts a tool installed by other means.
    pub probe: &'static str,
}

/// Packages needed to build the seL4 kernel (see kernel/README.md).
///
/// The kernel's code generators run under Debian's `/usr/bin/python3` and need
/// ply, tempita and six there; the machine's default `python3` may be another
/// interpreter, hence the absolute probes.
#[rustfmt::skip]
pub const KERNEL_BUILD: &[Package] = &[
    Package { name: "make", probe: "make" },
    Package { name: "gcc", probe: "gcc" },
    Package { name: "binutils", probe: "objcopy" },
    Package { name: "patch", probe: "patch" },
    Package { name: "python3", probe: "/usr/bin/python3" },
    Package { name: "python3-ply", probe: "/usr/lib/python3/dist-packages/ply/__init__.py" },
    Package { name: "python3-tempita", probe: "/usr/lib/python3/dist-packages/tempita/__init__.py" },
    Package { name: "python3-six", probe: "/usr/lib/python3/dist-packages/six.py" },
    Package { name: "libxml2-utils", probe: "xmllint" },
];

/// Packages needed to boot the kernel under emulation.
pub const QEMU: &[Package] = &[Package { name: "qemu-system-x86", probe: "qemu-system-x86_64" }];

/// Set once `apt-get update` has succeeded, so that a process that ensures
/// several package sets refreshes the package lists only once.
static APT_UPDATED: AtomicBool = AtomicBool::new(false);

/// Makes sure each Debian package is installed.
///
/// Missing packages are installed with apt-get when running as root (after one
/// `apt-get update` per process); otherwise the error names the exact command
/// to run.
pub fn ensure_packages(pkgs: &[Package]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().filter(|p| !is_present(p)).map(|p| p.name).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get install -y --no-install-recommends {}", missing.join(" "));
    if !is_root()? {
        bail!("missing Debian packages: {}; install them with: sudo {install}", missing.join(" "));
    }
    if !APT_UPDATED.load(Ordering::Relaxed) {
        apt_get(&["update"])?;
        APT_UPDATED.store(true, Ordering::Relaxed);
    }
    println!("installing Debian packages: {}", missing.join(" "));
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&missing);
    apt_get(&args)?;
    if let Some(p) = pkgs.iter().find(|p| !is_present(p)) {
        bail!("package {} was installed but {} is still not found", p.name, p.probe);
    }
    Ok(())
}

/// Whether the package's probe is found: an absolute path must exist, a bare
/// command name must be an executable file in one of the PATH directories.
fn is_present(pkg: &Package) -> bool {
    let probe = Path::new(pkg.probe);
    if probe.is_absolute() {
        return probe.exists();
    }
    env::var_os("PATH").map(|path| env::split_paths(&path).any(|dir| is_executable(&dir.join(probe)))).unwrap_or(false)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Whether this process runs as root. Asks `id -u` rather than calling
/// geteuid(2), which would need unsafe code or an extra crate.
fn is_root() -> Result<bool> {
    let out = Command::new("id").arg("-u").output().context("running `id -u`")?;
    Ok(out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Graphviz, to render the system diagram.
pub const GRAPHVIZ: &[Package] = &[Package { name: "graphviz", probe: "dot" }];

/// A cargo subcommand from crates.io, and the arguments that show it is
/// installed (a run that succeeds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CargoTool {
    /// The crate `cargo install` takes.
    pub krate: &'static str,
    /// Arguments to `cargo` that succeed once it is installed.
    pub probe: &'static [&'static str],
}

/// cargo-fuzz, which `cargo xtask fuzz` runs (with the nightly toolchain).
pub const CARGO_FUZZ: CargoTool = CargoTool { krate: "cargo-fuzz", probe: &["fuzz", "--version"] };

/// Makes sure a cargo subcommand is installed: if its probe fails, runs
/// `cargo install --locked` (into `~/.cargo/bin`, for any user), and
/// probes again.
pub fn ensure_cargo_tool(tool: &CargoTool) -> Result<()> {
    let present = || {
        Command::new(env!("CARGO"))
            .args(tool.probe)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return Ok(());
    }
    println!("installing {} from crates.io (cargo install --locked {})", tool.krate, tool.krate);
    let status = Command::new(env!("CARGO"))
        .args(["install", "--locked", tool.krate])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("`cargo install --locked {}` failed with {status}", tool.krate);
    }
    if !present() {
        bail!("{} was installed but `cargo {}` still fails", tool.krate, tool.probe.join(" "));
    }
    Ok(())
}

/// Runs apt-get non-interactively, its output going straight to the terminal.
fn apt_get(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("`apt-get {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_commands_on_path_and_absolute_files() {
        assert!(is_present(&Package { name: "coreutils", probe: "ls" }));
        assert!(is_present(&Package { name: "dash", probe: "/bin/sh" }));
        assert!(!is_present(&Package { name: "none", probe: "no-such-command-xtask" }));
        assert!(!is_present(&Package { name: "none", probe: "/no/such/file" }));
    }

    #[test]
    fn nothing_to_do_when_all_present() {
        ensure_packages(&[Package { name: "coreutils", probe: "ls" }]).unwrap();
    }
}
