//! `tools-sdf`: the `.system` parser and validator, on arbitrary text (a
//! description is written by people and handed to the builder, which
//! trusts what the parser accepts).
//!
//! Checks: the parser never panics; a refusal lists at least one
//! diagnostic, each inside the text (line within its lines, or no
//! position at all) and printable; an accepted description is consistent
//! as the builder relies on it: names of PDs unique, every channel end
//! and mapping naming a PD or region that exists, and for a `<network>`
//! the configuration the builder writes into each of its PDs
//! (`tools_builder::network::config`) decodes back to itself, as the PD
//! reads it (`NetConfig::from_bytes`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use net_config::NetConfig;
use std::collections::HashSet;
use std::path::Path;
use tools_builder::network::{config, role};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("fuzz.system");
    match tools_sdf::parse_str(file, text) {
        Err(diagnostics) => {
            assert!(diagnostics.len() > 0, "a refusal says why");
            let lines = text.split('\n').count() as u32;
            for d in diagnostics.iter() {
                assert!(d.loc.line <= lines, "diagnostic at line {} of {lines}: {}", d.loc.line, d.message);
                assert!(d.loc.line > 0 || d.loc.column == 0);
                assert!(!d.message.is_empty());
                let shown = d.to_string();
                assert!(shown.starts_with("fuzz.system:"), "{shown}");
            }
        }
        Ok(system) => {
            let pds = system.all_pds();
            let names: HashSet<&str> = pds.iter().map(|pd| pd.name.as_str()).collect();
            assert_eq!(names.len(), pds.len(), "PD names are unique");
            let regions: HashSet<&str> = system.memory_regions.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(regions.len(), system.memory_regions.len(), "region names are unique");
            for channel in &system.channels {
                for end in &channel.ends {
                    assert!(names.contains(end.pd.as_str()), "a channel end names a PD");
                }
            }
            for pd in &pds {
                for map in &pd.maps {
                    assert!(regions.contains(map.mr.as_str()), "a mapping names a region");
                }
            }
            if let Some(network) = &system.network {
                for pd in &pds {
                    let Some(role) = role(network, &pd.name) else { continue };
                    let config = config(&system, network, role);
                    let bytes = config.to_bytes();
                    assert_eq!(NetConfig::from_bytes(&bytes), Ok(config), "a PD decodes what the builder writes");
                }
            }
        }
    }
});
