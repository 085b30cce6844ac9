//! Debian packages as build inputs: which version apt would pick, fetching
//! its .deb with `apt-get download`, and unpacking it with `dpkg -x` into a
//! folder of our own. Nothing is installed on the host.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A package at the exact version apt would install now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
}

impl Package {
    /// The candidate version of `name` in the host's package lists.
    pub fn candidate(name: &str) -> Result<Package> {
        let out = apt_cache(&["policy", name])?;
        let version = parse_candidate(&out)
            .with_context(|| format!("no installable version of Debian package {name}{LISTS_HINT}"))?;
        Ok(Package { name: name.to_owned(), version })
    }

    /// The kernel package that the meta-package `meta` (`linux-image-amd64`)
    /// depends on, at its candidate version. Following the meta-package
    /// keeps the guest on Debian's current kernel without naming its ABI
    /// number here.
    pub fn kernel_of(meta: &str) -> Result<Package> {
        let out = apt_cache(&["depends", meta])?;
        let name = parse_kernel_dependency(&out)
            .with_context(|| format!("{meta} depends on no linux-image package{LISTS_HINT}"))?;
        Package::candidate(&name)
    }

    /// The .deb in `cache`, downloaded on first use.
    pub fn fetch(&self, cache: &Path) -> Result<PathBuf> {
        let deb = cache.join(format!("{}_{}.deb", self.name, self.version.replace(':', "%3a")));
        if deb.is_file() {
            return Ok(deb);
        }
        // Downloaded into a folder of its own and then renamed, so that an
        // interrupted download never looks like a cached .deb.
        let partial = cache.join(format!(".download-{}", self.name));
        recreate_dir(&partial)?;
        let spec = format!("{}={}", self.name, self.version);
        println!("linux guest: downloading {spec}");
        run(Command::new("apt-get").arg("download").arg(&spec).current_dir(&partial))?;
        let fetched = single_deb(&partial)?;
        fs::rename(&fetched, &deb).with_context(|| format!("moving {} to {}", fetched.display(), deb.display()))?;
        fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
        Ok(deb)
    }
}

/// Unpacks a .deb's files under `dest` (which must not exist yet).
pub fn unpack(deb: &Path, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    run(Command::new("dpkg").arg("-x").arg(deb).arg(dest))
}

const LISTS_HINT: &str = " (are the package lists current? run `apt-get update` as root)";

fn apt_cache(args: &[&str]) -> Result<String> {
    let out = run_capture(Command::new("apt-cache").args(args))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `Candidate:` line of `apt-cache policy`; `(none)` means not
/// installable.
fn parse_candidate(policy: &str) -> Option<String> {
    let version = policy.lines().find_map(|l| l.trim().strip_prefix("Candidate:"))?.trim();
    (version != "(none)" && !version.is_empty()).then(|| version.to_owned())
}

/// The first `Depends: linux-image-...` line of `apt-cache depends`.
fn parse_kernel_dependency(depends: &str) -> Option<String> {
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|name| name.starts_with("linux-image-"))
        .map(str::to_owned)
}

fn single_deb(dir: &Path) -> Result<PathBuf> {
    let debs: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    match debs.as_slice() {
        [deb] => Ok(deb.clone()),
        _ => bail!("expected one .deb in {}, found {}", dir.display(), debs.len()),
    }
}

fn recreate_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Runs a command quietly; its output is shown only if it fails.
fn run(cmd: &mut Command) -> Result<()> {
    run_capture(cmd).map(drop)
}

fn run_capture(cmd: &mut Command) -> Result<Output> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().with_context(|| format!("running {name}"))?;
    if !out.status.success() {
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        bail!(
            "`{name} {}` failed with {}:\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_is_read_from_apt_cache_policy() {
        let policy = "busybox-static:\n  Installed: (none)\n  Candidate: 1:1.35.0-4+deb12u1+b1\n  Version table:\n";
        assert_eq!(parse_candidate(policy).as_deref(), Some("1:1.35.0-4+deb12u1+b1"));
        assert_eq!(parse_candidate("foo:\n  Installed: (none)\n  Candidate: (none)\n"), None);
        assert_eq!(parse_candidate(""), None);
    }

    #[test]
    fn kernel_is_the_linux_image_dependency() {
        let depends = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(parse_kernel_dependency(depends).as_deref(), Some("linux-image-6.1.0-56-amd64"));
        assert_eq!(parse_kernel_dependency("linux-image-amd64\n  Recommends: foo\n"), None);
    }
}
