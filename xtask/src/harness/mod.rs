//! The image harness: everything between the source tree and a booted image.
//! Builds the seL4 kernel and the system image, makes the site image, boots
//! images in QEMU sessions, and installs the Debian packages all that needs.

pub mod deps;
pub mod image;
pub mod kernel;
pub mod netns;
pub mod qemu;
pub mod site;
pub mod system;
