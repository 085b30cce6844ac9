//! The system builder: from a system description (`microkit.system`) and the
//! PD program images to a bootable root-task image, a report and a diagram.
//!
//! seL4 on x86 boots exactly one module, the root task, so everything rides
//! inside it: the builder appends one loadable segment to the initialiser's
//! ELF holding the boot spec ([`pds_boot_spec::Spec`]) and the PD images, and
//! points the initialiser at it. The steps:
//!
//! 1. parse and validate the description ([`tools_sdf`]), with file:line:column
//!    errors;
//! 2. load every program image and lay out objects, address spaces and
//!    CSpaces ([`plan`]);
//! 3. check that it all fits the target's memory ([`memory`]);
//! 4. write the image ([`image`]), the report ([`report`]) and the diagram
//!    ([`diagram`]).

pub mod diagram;
pub mod elf;
pub mod image;
pub mod memory;
pub mod names;
pub mod network;
pub mod plan;
pub mod report;

use std::fmt;
use std::path::{Path, PathBuf};

pub use memory::Target;

/// Why a build failed.
#[derive(Debug)]
pub enum Error {
    /// Mistakes in the description, each with its position and a fix.
    Description(tools_sdf::Diagnostics),
    /// Anything else (unreadable files, a malformed program image).
    Other(String),
}

impl Error {
    pub fn other(msg: impl Into<String>) -> Self {
        Error::Other(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Description(d) => write!(f, "{d}"),
            Error::Other(m) => write!(f, "error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// What to build.
#[derive(Clone, Debug)]
pub struct Options {
    pub system: PathBuf,
    /// The initialiser's ELF (the `pds_monitor` program).
    pub monitor: PathBuf,
    /// Folders searched for program images not found next to the description.
    pub search_path: Vec<PathBuf>,
    pub out_dir: PathBuf,
    pub target: Target,
    /// Shown in the report (e.g. "seL4 5.0.0, debug").
    pub kernel: String,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Output {
    pub image: PathBuf,
    pub report: PathBuf,
    pub dot: PathBuf,
    /// `None` when Graphviz's `dot` is not installed.
    pub svg: Option<PathBuf>,
    pub memory: memory::MemoryPlan,
}

/// Finds a program image: as written (relative to the description), or by
/// file name in the search path.
fn find_program(path: &Path, search_path: &[PathBuf]) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    let name = path.file_name()?;
    search_path.iter().map(|dir| dir.join(name)).find(|p| p.is_file())
}

pub fn build(opts: &Options) -> Result<Output, Error> {
    let sys = tools_sdf::parse_file(&opts.system).map_err(Error::Description)?;
    let mut programs = Vec::new();
    let mut missing = Vec::new();
    for pd in sys.all_pds() {
        match find_program(&pd.program_image, &opts.search_path) {
            Some(path) => programs.push(elf::Program::load(&path)?),
            None => missing.push(tools_sdf::Diagnostic::new(
                &sys.file,
                pd.program_image_loc,
                format!("program image `{}` of PD `{}` not found", pd.program_image.display(), pd.name),
                format!(
                    "build it first, or fix the path; looked next to the description and in: {}",
                    opts.search_path.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Description(tools_sdf::Diagnostics(missing)));
    }
    names::bind(&sys, &mut programs).map_err(Error::Description)?;
    let plan = plan::plan(&sys, programs)?;
    for info in plan.spec.pds.iter().filter(|info| info.fault_injector) {
        eprintln!("{}", report::fault_injection_warning(&info.name));
    }
    let monitor = elf::Program::load(&opts.monitor)?;
    let image = image::compose(monitor, &plan)?;
    let memory = memory::check(&plan, &sys, opts.target, image.len() as u64)?;

    std::fs::create_dir_all(&opts.out_dir).map_err(|e| Error::other(format!("{}: {e}", opts.out_dir.display())))?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, Error> {
        let path = opts.out_dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::other(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    };
    let image_path = write("system.elf", &image)?;
    let report = write("report.txt", report::render(&sys, &plan, &memory, opts).as_bytes())?;
    let dot = write("system.dot", diagram::render(&sys).as_bytes())?;
    let svg = diagram::to_svg(&dot)?;
    Ok(Output { image: image_path, report, dot, svg, memory })
}
