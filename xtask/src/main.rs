//! `cargo xtask`: the one entry point for building, running, testing and
//! benchmarking. Its parts, one module each: [`harness`] (kernel, system and
//! site images, QEMU, Debian packages), [`itest`] (integration tests),
//! [`bench`] (benchmarks), [`linux_guest`] (the benchmarks' Linux reference
//! guest), [`lint`] (the lint gate) and [`fuzz`] (the fuzz targets).
//! `cargo xtask help` lists the commands;
//! [`COMMANDS`] is that list, and the dispatcher accepts exactly its names.

mod bench;
mod fuzz;
mod harness;
mod itest;
mod lint;
mod linux_guest;

use anyhow::{bail, Context, Result};
use harness::kernel::KernelConfig;
use harness::system::{self, BuildOptions};
use harness::{deps, image, qemu, site};
use std::path::{Path, PathBuf};

/// A command of `cargo xtask`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Build,
    Run,
    Test,
    Bench,
    Site,
    Image,
    Lint,
    Fuzz,
    Help,
}

/// Every command: the names that select it, its arguments and what it does,
/// in one line. The usage text is made from this table and [`Cmd::parse`]
/// reads it, so the help lists exactly what is accepted.
const COMMANDS: &[(Cmd, &[&str], &str, &str)] = &[
    (Cmd::Build, &["build"], "[OPTIONS]", "build the kernel, the PD programs and the system image; print their paths"),
    (Cmd::Run, &["run"], "[OPTIONS]", "build, then boot the image in QEMU, console on this terminal (quit: Ctrl-A X)"),
    (
        Cmd::Test,
        &["test"],
        "[FILTER]",
        "host unit tests, then the integration tests; FILTER: only those whose name contains it",
    ),
    (
        Cmd::Bench,
        &["bench"],
        "[web|ftp|mux] [--quick] [--only TEXT]",
        "figures beside a Linux guest in the same QEMU; web: web node vs nginx, ftp: ftpd vs vsftpd, mux: demux cost; --only: web measures named with TEXT (A|B: either)",
    ),
    (Cmd::Site, &["site"], "DIR [--out FILE]", "build the site image of the document root DIR; print what it stored"),
    (
        Cmd::Image,
        &["image"],
        "[--site DIR] [--out FILE] [OPTIONS]",
        "write a disk image that boots the node on a PC (BIOS or UEFI GRUB) and carries the site; print its layout",
    ),
    (Cmd::Lint, &["lint"], "", "the gate .ci/run passes first: cargo fmt --check, clippy -D warnings"),
    (
        Cmd::Fuzz,
        &["fuzz"],
        "[--seconds N] [TARGET]",
        "run the cargo-fuzz targets (nightly) over their corpus, N s each (default 20); fails on a crash",
    ),
    (Cmd::Help, &["help", "-h", "--help"], "", "this text (also with no command)"),
];

impl Cmd {
    fn parse(name: &str) -> Option<Cmd> {
        COMMANDS.iter().find(|(_, names, _, _)| names.contains(&name)).map(|&(cmd, ..)| cmd)
    }
}

/// The usage text: every command in one line, then the options.
fn usage() -> String {
    let mut text = String::from("usage: cargo xtask COMMAND [ARGUMENTS]\n\ncommands:\n");
    for (_, names, args, what) in COMMANDS {
        let call = format!("{} {args}", names.join(", "));
        text += &format!("  {:<22}  {what}\n", call.trim_end());
    }
    text += &format!(
        "\noptions of build, run and image:
  --system FILE           the system description (default microkit.system)
  --config release|debug  the kernel configuration (default release: no kernel debug calls,
                          PDs log through the serial PD; debug: kernel printing and debug
                          calls, for development)
  --ram MIB               QEMU's memory, which the builder checks the system against (default {})
  --tap IFNAME            run: attach the NIC to this existing TAP device
                          (default: QEMU user networking, web server on http://{}/)
  --site DIR              run, image: serve the document root DIR (its site image is built
                          first; default images/site)
site: --out FILE          where the image goes (default target/site/site.img)
image: --out FILE         where the disk image goes (default target/image/node.img)

Each command installs the Debian packages it needs when they are missing (as root)
or says which command to run.",
        system::DEFAULT_RAM_MIB,
        qemu::HOST_HTTP
    );
    text
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn parse_options(args: &[String], ws: &Path) -> Result<BuildOptions> {
    let mut opts = BuildOptions {
        system: ws.join("microkit.system"),
        // A deployment image by default: no kernel debug calls (a PD can
        // neither halt the machine nor print through the kernel).
        config: KernelConfig::Release,
        ram_mib: system::DEFAULT_RAM_MIB,
        tap: None,
        site: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value\n\n{}", usage()));
        match arg.as_str() {
            "--system" => {
                let v = PathBuf::from(value("--system")?);
                opts.system = if v.is_absolute() { v } else { std::env::current_dir()?.join(v) };
            }
            "--config" => {
                opts.config = match value("--config")?.as_str() {
                    "debug" => KernelConfig::Debug,
                    "release" => KernelConfig::Release,
                    other => bail!("unknown config {other:?}: use debug or release"),
                }
            }
            "--ram" => opts.ram_mib = value("--ram")?.parse().context("--ram takes MiB, e.g. 512")?,
            "--tap" => opts.tap = Some(value("--tap")?),
            "--site" => {
                let v = PathBuf::from(value("--site")?);
                opts.site = Some(if v.is_absolute() { v } else { std::env::current_dir()?.join(v) });
            }
            other => bail!("unknown option {other:?}\n\n{}", usage()),
        }
    }
    Ok(opts)
}

/// `image`'s own option, `--out FILE` (relative to the current
/// directory; default `target/image/node.img`), and the others, which
/// are [`parse_options`]'s.
fn image_options(args: &[String], ws: &Path) -> Result<(PathBuf, Vec<String>)> {
    let mut out = ws.join("target").join("image").join("node.img");
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--out" {
            let v = PathBuf::from(it.next().with_context(|| format!("--out needs a value\n\n{}", usage()))?);
            out = if v.is_absolute() { v } else { std::env::current_dir()?.join(v) };
        } else if arg == "--tap" {
            bail!("--tap is an option of run: a disk image has no TAP device (the PC it boots uses its own NIC)");
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((out, rest))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ws = workspace();
    let Some(name) = args.first() else {
        println!("{}", usage());
        return Ok(());
    };
    let Some(cmd) = Cmd::parse(name) else { bail!("unknown command {name:?}\n\n{}", usage()) };
    match cmd {
        Cmd::Build => {
            let opts = parse_options(&args[1..], &ws)?;
            let built = system::build(&ws, &opts)?;
            system::print_paths(&built);
        }
        Cmd::Run => {
            let opts = parse_options(&args[1..], &ws)?;
            let built = system::build(&ws, &opts)?;
            deps::ensure_packages(deps::QEMU)?;
            let served = system::served(&opts.system)?;
            let mut devices = match opts.tap.as_deref() {
                Some(tap) => qemu::tap_nic_device(tap, built.nic),
                None => qemu::user_nic_serving(&served, built.nic),
            };
            // The user's site (`--site DIR`) or the demo site, as the disk
            // a web server's file cache reads.
            let root = opts.site.clone().unwrap_or_else(|| ws.join("images/site"));
            let site = site::default_image(&ws);
            site::build(&root, &site)?;
            site::check_fits_window(&opts.system, &site)?;
            println!("site image: {} (from {})", site.display(), root.display());
            devices.extend(site::drive(&built, &site)?);
            let devices: Vec<&str> = devices.iter().map(String::as_str).collect();
            let mut cmd = qemu::command(&built, opts.ram_mib, true, &devices);
            println!("{}", qemu::command_line(&cmd));
            match (&opts.tap, served.http) {
                (Some(tap), Some(_)) => println!("the node is on {tap}: web server on http://10.0.2.15/"),
                (None, Some(_)) => println!("web server: http://{}/", qemu::HOST_HTTP),
                (_, None) => println!("no web server in {}", opts.system.display()),
            }
            if let Some((control, first, last)) = served.ftp {
                match &opts.tap {
                    Some(_) => println!("FTP server: ftp://10.0.2.15:{control}/ (anonymous, passive ports {first}-{last})"),
                    None => println!(
                        "FTP server: ftp://{}/ (anonymous; passive ports {first}-{last} forwarded to 127.0.0.1; use EPSV, which curl does, or ignore the PASV address: curl --ftp-skip-pasv-ip, lftp -e 'set ftp:ignore-pasv-address yes')",
                        qemu::HOST_FTP
                    ),
                }
            }
            let status = cmd.status().context("starting QEMU")?;
            if !status.success() {
                bail!("QEMU exited with {status}");
            }
        }
        Cmd::Test => itest::run(&ws, args.get(1).map(String::as_str))?,
        Cmd::Bench => bench::run(&ws, &args[1..])?,
        Cmd::Site => site::run(&ws, &args[1..], &usage())?,
        Cmd::Image => {
            let (out, rest) = image_options(&args[1..], &ws)?;
            let opts = parse_options(&rest, &ws)?;
            let built = system::build(&ws, &opts)?;
            let root = opts.site.clone().unwrap_or_else(|| ws.join("images/site"));
            let site_image = ws.join("target").join("image").join("site.img");
            site::build(&root, &site_image)?;
            println!("site image: {} (from {})", site_image.display(), root.display());
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let written = image::build(&built, &site_image, &out)?;
            image::print_report(&written, &built);
        }
        Cmd::Lint => lint::run(&ws)?,
        Cmd::Fuzz => fuzz::run(&ws, &args[1..])?,
        Cmd::Help => println!("{}", usage()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_every_command_the_dispatcher_accepts() {
        let text = usage();
        for (cmd, names, _, _) in COMMANDS {
            for name in *names {
                assert_eq!(Cmd::parse(name), Some(*cmd), "{name}");
                assert!(text.lines().any(|l| l.split([' ', ',']).any(|w| w == *name)), "{name} is not in the usage");
            }
        }
        for unknown in ["", "tests", "Build", "--system"] {
            assert_eq!(Cmd::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn usage_names_every_bench_group() {
        let text = usage();
        for group in ["web", "ftp", "mux"] {
            assert!(bench::Only::parse(Some(group)).is_ok(), "{group}");
            assert!(text.contains(group), "bench {group} is not in the usage");
        }
        assert!(bench::Only::parse(Some("other")).is_err());
    }

    #[test]
    fn usage_names_every_build_option() {
        let text = usage();
        let ws = workspace();
        for (option, value) in
            [("--system", "x.system"), ("--config", "release"), ("--ram", "256"), ("--tap", "tap0"), ("--site", "www")]
        {
            assert!(parse_options(&[option.into(), value.into()], &ws).is_ok(), "{option}");
            assert!(text.contains(option), "{option} is not in the usage");
        }
        assert!(parse_options(&["--other".into()], &ws).is_err());
    }

    #[test]
    fn run_serves_the_site_given_or_the_demo_site() {
        let ws = workspace();
        assert_eq!(parse_options(&[], &ws).unwrap().site, None, "no --site: images/site");
        let cwd = std::env::current_dir().unwrap();
        let relative = parse_options(&["--site".into(), "www".into()], &ws).unwrap();
        assert_eq!(relative.site, Some(cwd.join("www")), "relative to the current directory");
        let absolute = parse_options(&["--site".into(), "/srv/www".into()], &ws).unwrap();
        assert_eq!(absolute.site, Some(PathBuf::from("/srv/www")));
        let with_others = ["--config", "debug", "--site", "/srv/www", "--tap", "tap0"].map(String::from);
        let opts = parse_options(&with_others, &ws).unwrap();
        assert_eq!((opts.site, opts.config), (Some(PathBuf::from("/srv/www")), KernelConfig::Debug));
        let e = parse_options(&["--site".into()], &ws).unwrap_err().to_string();
        assert!(e.contains("--site needs a value"), "{e}");
    }

    #[test]
    fn image_takes_out_and_the_build_options() {
        let ws = workspace();
        let (out, rest) = image_options(&[], &ws).unwrap();
        assert_eq!((out, rest.len()), (ws.join("target/image/node.img"), 0));
        let args = ["--site", "/srv/www", "--out", "/tmp/node.img", "--config", "debug"].map(String::from);
        let (out, rest) = image_options(&args, &ws).unwrap();
        assert_eq!(out, PathBuf::from("/tmp/node.img"));
        let opts = parse_options(&rest, &ws).unwrap();
        assert_eq!((opts.site, opts.config), (Some(PathBuf::from("/srv/www")), KernelConfig::Debug));
        assert!(image_options(&["--out".into()], &ws).is_err());
        let e = image_options(&["--tap".into(), "tap0".into()], &ws).unwrap_err().to_string();
        assert!(e.contains("--tap is an option of run"), "{e}");
        assert!(usage().contains("image: --out FILE"));
    }

    #[test]
    fn build_and_run_default_to_the_release_kernel() {
        let ws = workspace();
        assert_eq!(parse_options(&[], &ws).unwrap().config, KernelConfig::Release);
        let debug = parse_options(&["--config".into(), "debug".into()], &ws).unwrap();
        assert_eq!(debug.config, KernelConfig::Debug);
        assert!(parse_options(&["--config".into(), "other".into()], &ws).is_err());
        assert!(usage().contains("default release"));
    }
}
