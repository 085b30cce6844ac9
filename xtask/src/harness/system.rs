//! `cargo xtask build`: kernel, programs and system image, in that order.

use crate::harness::deps;
use crate::harness::kernel::{self, Kernel, KernelConfig};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// QEMU's memory, and what the builder checks the system against.
pub const DEFAULT_RAM_MIB: u64 = 512;

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub system: PathBuf,
    pub config: KernelConfig,
    pub ram_mib: u64,
    /// For `run`: attach the NIC (virtio-net, PCI 00:03.0) to this existing
    /// TAP device, as the node would sit on a real network.
    pub tap: Option<String>,
    /// For `run` and `image`: the document root whose site image the node
    /// serves (`--site DIR`); `None` serves the demo site, `images/site`.
    pub site: Option<PathBuf>,
}

/// Everything a boot needs, and the builder's other outputs.
#[derive(Clone, Debug)]
pub struct Built {
    /// The description the image was built from.
    pub system: PathBuf,
    pub kernel: Kernel,
    pub image: PathBuf,
    pub report: PathBuf,
    pub dot: PathBuf,
    pub svg: Option<PathBuf>,
    /// The NIC's QEMU `-device` for this system ([`nic_device`]).
    pub nic: &'static str,
}

/// Packages that hold PD programs: every workspace member with a binary
/// target that uses the PD runtime (`pds-runtime`). The initialiser is apart.
pub fn program_packages(workspace: &Path) -> Result<Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut pds = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        let has_bin = pkg["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")));
        let uses_runtime = pkg["dependencies"].as_array().into_iter().flatten().any(|d| d["name"] == "pds-runtime");
        if has_bin && uses_runtime && pkg["name"] != MONITOR {
            pds.push(pkg["name"].as_str().unwrap_or_default().to_string());
        }
    }
    Ok(pds)
}

/// The groups the bare-metal programs are built (and linted) in: the
/// initialiser alone, then the PD programs together. The initialiser enables
/// the boot spec's allocating decoder, which PDs must not link (cargo unifies
/// features within one invocation).
pub fn program_groups(pds: Vec<String>) -> [Vec<String>; 2] {
    [vec![MONITOR.to_string()], pds]
}

/// The initialiser's package.
const MONITOR: &str = "pds-monitor";
/// The initialiser's binary.
const MONITOR_BIN: &str = "monitor";

/// Builds the bare-metal programs for a kernel config. Each config has its
/// own target folder, since the kernel ABI crate is generated per config.
fn build_programs(workspace: &Path, kernel: &Kernel) -> Result<PathBuf> {
    let target_dir = workspace.join("target").join(format!("pds-{}", kernel.config.name()));
    let pds = program_packages(workspace)?;
    for group in program_groups(pds) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg("build").arg("--release").arg("--target-dir").arg(&target_dir);
        for p in &group {
            cmd.arg("-p").arg(p);
        }
        cmd.env("SEL4_CONFIG_FILE", &kernel.autoconf).env("SEL4_KERNEL_SOURCE", &kernel.source).current_dir(workspace);
        let status = cmd.status().context("running cargo build for the PD programs")?;
        if !status.success() {
            bail!("building {} failed", group.join(", "));
        }
    }
    Ok(target_dir.join("release"))
}

pub fn build(workspace: &Path, opts: &BuildOptions) -> Result<Built> {
    let kernel = kernel::build(workspace, opts.config)?;
    let bin = build_programs(workspace, &kernel)?;
    let stem = opts.system.file_stem().and_then(|s| s.to_str()).unwrap_or("system");
    let out_dir = workspace.join("target").join("system").join(format!("{stem}-{}", opts.config.name()));
    deps::ensure_packages(deps::GRAPHVIZ)?;
    let options = tools_builder::Options {
        system: opts.system.clone(),
        monitor: bin.join(MONITOR_BIN),
        search_path: vec![bin.clone()],
        out_dir,
        target: tools_builder::Target { ram_bytes: opts.ram_mib << 20 },
        kernel: format!("seL4 5.0.0, {} config", opts.config.name()),
    };
    let out = tools_builder::build(&options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let nic = nic_device(&opts.system)?;
    Ok(Built {
        system: opts.system.clone(),
        kernel,
        image: out.image,
        report: out.report,
        dot: out.dot,
        svg: out.svg,
        nic,
    })
}

/// What `cargo xtask build` prints: where everything went.
pub fn print_paths(b: &Built) {
    println!(
        "kernel:       {} ({} config{})",
        b.kernel.elf32.display(),
        b.kernel.config.name(),
        match b.kernel.config {
            KernelConfig::Release => ": no kernel printing or debug calls",
            KernelConfig::Debug => ": kernel printing and debug calls, for development",
        }
    );
    println!("system image: {}", b.image.display());
    println!("report:       {}", b.report.display());
    match &b.svg {
        Some(svg) => println!("diagram:      {} ({})", svg.display(), b.dot.display()),
        None => println!("diagram:      {}", b.dot.display()),
    }
    println!("boot by hand: multiboot kernel {} with module {}", b.kernel.elf32.display(), b.image.display());
}

/// The Intel 82574L's PCI ids (`drivers/e1000e`).
const E1000E_IDS: (u16, u16) = (0x8086, 0x10d3);

/// The NIC QEMU must give the system at `system`: the 82574L
/// ([`qemu::E1000E_DEVICE`](crate::harness::qemu::E1000E_DEVICE)) when a PD
/// of the description drives one, virtio-net
/// ([`qemu::NIC_DEVICE`](crate::harness::qemu::NIC_DEVICE)) otherwise.
pub fn nic_device(system: &Path) -> Result<&'static str> {
    use crate::harness::qemu;
    let sys = tools_sdf::parse_file(system).map_err(|e| anyhow::anyhow!("{e}"))?;
    let e1000e = sys.all_pds().iter().flat_map(|pd| &pd.pci_devices).any(|d| (d.vendor, d.device) == E1000E_IDS);
    Ok(if e1000e { qemu::E1000E_DEVICE } else { qemu::NIC_DEVICE })
}

/// What a description's servers listen on, from their claims in
/// `<network>`: the TCP port of the PD running `httpd` (or
/// `httpd-smoltcp`), and the control port and passive range of the PD
/// running `ftpd` (its claim of one port and its claim of a range, as
/// ftpd itself reads them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub http: Option<u16>,
    /// Control port, first and last passive port.
    pub ftp: Option<(u16, u16, u16)>,
}

/// [`Served`] for the description at `system`.
pub fn served(system: &Path) -> Result<Served> {
    let sys = tools_sdf::parse_file(system).map_err(|e| anyhow::anyhow!("{e}"))?;
    let program = |name: &str| {
        sys.all_pds()
            .into_iter()
            .find(|pd| pd.name == name)
            .and_then(|pd| pd.program_image.file_name())
            .map(|f| f.to_string_lossy().into_owned())
    };
    let mut served = Served::default();
    for client in sys.network.iter().flat_map(|n| &n.clients) {
        let tcp_ports = client
            .claims
            .iter()
            .filter(|c| c.filter.protocol == Some(net_packet::IpProtocol::TCP))
            .filter_map(|c| c.filter.dst_port)
            .map(|p| (p.first(), p.last()));
        match program(&client.pd).as_deref() {
            Some("httpd" | "httpd-smoltcp") => {
                served.http = tcp_ports.clone().find(|(a, b)| a == b).map(|(a, _)| a);
            }
            Some("ftpd") => {
                let control = tcp_ports.clone().find(|(a, b)| a == b).map(|(a, _)| a);
                let passive = tcp_ports.clone().find(|(a, b)| a < b);
                if let (Some(control), Some((first, last))) = (control, passive) {
                    served.ftp = Some((control, first, last));
                }
            }
            _ => {}
        }
    }
    Ok(served)
}

#[cfg(test)]
mod served_tests {
    use super::*;

    #[test]
    fn the_deployed_node_serves_http_on_80_and_ftp_on_21_with_a_passive_range() {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let s = served(&ws.join("microkit.system")).unwrap();
        assert_eq!(s.http, Some(80));
        let (control, first, last) = s.ftp.expect("ftpd in microkit.system");
        assert_eq!(control, 21);
        assert!(first < last, "{first}-{last}");
        assert_eq!(served(&ws.join("tests/systems/web.system")).unwrap().ftp, None);
    }

    #[test]
    fn each_system_gets_the_nic_its_driver_drives() {
        use crate::harness::qemu;
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(nic_device(&ws.join("microkit.system")).unwrap(), qemu::NIC_DEVICE);
        assert_eq!(nic_device(&ws.join("tests/systems/web.system")).unwrap(), qemu::NIC_DEVICE);
        assert_eq!(nic_device(&ws.join("tests/systems/web-e1000e.system")).unwrap(), qemu::E1000E_DEVICE);
    }
}
