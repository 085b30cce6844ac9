//! `cargo xtask fuzz [--seconds N] [TARGET]`: runs the cargo-fuzz targets
//! of `fuzz/` (one per parser that takes bytes from outside or from
//! another PD; `tests/README.md`, "Fuzzing") for a short time each, and
//! fails on the first crash, panic, leak or timeout.
//!
//! Each target starts from its committed corpus (`fuzz/corpus/TARGET`),
//! real inputs kept elsewhere ([`SEED_DIRS`]) and the inputs of the bugs
//! fuzzing found (`fuzz/regressions/TARGET`): every
//! one of those is run first, so a bug that comes back fails at once. New
//! inputs go to a scratch corpus under `target/fuzz/`, never into the
//! committed one. A crashing input is written under `fuzz/artifacts/`.
//!
//! The targets need the nightly toolchain (libFuzzer's instrumentation,
//! AddressSanitizer); cargo-fuzz is installed from crates.io when missing
//! ([`deps::ensure_cargo_tool`]).

use crate::harness::deps;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use std::process::Command;

/// Seconds each target runs when `--seconds` is not given.
pub const DEFAULT_SECONDS: u32 = 20;

/// Real inputs kept elsewhere in the repository that seed a target too
/// (read, never written): the system descriptions, valid and invalid.
const SEED_DIRS: &[(&str, &[&str])] = &[("system_description", &["tests/systems", "tests/invalid"])];

/// The toolchain the targets build with.
const TOOLCHAIN: &str = "nightly";

/// What to run: the seconds per target and, if given, one target.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub seconds: u32,
    pub target: Option<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options { seconds: DEFAULT_SECONDS, target: None };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--seconds" => {
                    let value = it.next().context("--seconds needs a value")?;
                    options.seconds =
                        value.parse().ok().filter(|&s| s > 0).context("--seconds takes a number above 0")?;
                }
                option if option.starts_with('-') => bail!("unknown option {option:?} of fuzz"),
                target if options.target.is_none() => options.target = Some(target.to_string()),
                other => bail!("fuzz takes one target, not also {other:?}"),
            }
        }
        Ok(options)
    }
}

/// The targets: the files of `fuzz/fuzz_targets/`, in name order.
pub fn targets(ws: &Path) -> Result<Vec<String>> {
    let dir = ws.join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".rs").map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

pub fn run(ws: &Path, args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let all = targets(ws)?;
    let chosen: Vec<&String> = match &options.target {
        Some(t) => {
            ensure!(all.contains(t), "no fuzz target {t:?}; the targets: {}", all.join(", "));
            all.iter().filter(|n| *n == t).collect()
        }
        None => all.iter().collect(),
    };
    ensure_nightly()?;
    deps::ensure_cargo_tool(&deps::CARGO_FUZZ)?;
    let fuzz_dir = ws.join("fuzz");
    println!("== cargo fuzz build (toolchain {TOOLCHAIN})");
    cargo_fuzz(&fuzz_dir, &["build"]).context("building the fuzz targets")?;
    for target in &chosen {
        let scratch = ws.join("target/fuzz/corpus").join(target);
        std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let mut args: Vec<String> = vec!["run".into(), target.to_string(), scratch.display().to_string()];
        for committed in ["corpus", "regressions"] {
            let dir = fuzz_dir.join(committed).join(target);
            if dir.is_dir() {
                args.push(dir.display().to_string());
            }
        }
        for (_, dirs) in SEED_DIRS.iter().filter(|(t, _)| t == target) {
            args.extend(dirs.iter().map(|d| ws.join(d).display().to_string()));
        }
        args.extend(["--".into(), format!("-max_total_time={}", options.seconds), "-print_final_stats=1".into()]);
        println!("== fuzz {target}: {} s", options.seconds);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cargo_fuzz(&fuzz_dir, &args).with_context(|| {
            format!("fuzz target {target} failed: its input is under fuzz/artifacts/{target}/ (replay: cd fuzz && cargo +{TOOLCHAIN} fuzz run {target} FILE)")
        })?;
    }
    println!("fuzz: {} target(s), no crash", chosen.len());
    Ok(())
}

/// Fails with the command to run if the nightly toolchain is missing.
fn ensure_nightly() -> Result<()> {
    let present = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    ensure!(
        present,
        "the fuzz targets need the {TOOLCHAIN} toolchain (libFuzzer instrumentation), which rustup does not have: \
         install it with `rustup toolchain install {TOOLCHAIN} --profile minimal`"
    );
    Ok(())
}

/// `cargo fuzz ARGS` with the nightly toolchain, in `fuzz/`.
fn cargo_fuzz(fuzz_dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("rustup")
        .args(["run", TOOLCHAIN, "cargo", "fuzz"])
        .args(args)
        .current_dir(fuzz_dir)
        .status()
        .context("running cargo fuzz")?;
    ensure!(status.success(), "cargo fuzz {} exited with {status}", args.join(" "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Options::parse(&[]).unwrap(), Options { seconds: DEFAULT_SECONDS, target: None });
        assert_eq!(
            Options::parse(&args(&["--seconds", "5", "packet"])).unwrap(),
            Options { seconds: 5, target: Some("packet".into()) }
        );
        for bad in [&["--seconds"][..], &["--seconds", "0"], &["--seconds", "x"], &["a", "b"], &["--other"]] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_target_has_a_corpus() {
        let ws = crate::workspace();
        let targets = targets(&ws).unwrap();
        assert!(targets.len() >= 6, "{targets:?}");
        for t in &targets {
            assert!(ws.join("fuzz/corpus").join(t).is_dir(), "fuzz/corpus/{t} is missing");
        }
    }
}
