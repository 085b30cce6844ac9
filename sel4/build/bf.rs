//! Parser for the kernel's bitfield specifications (`.bf`), the source of
//! truth for the layout of message info, cap rights, cap data and the fault
//! tags. Fields are listed most-significant first; a block is a whole number
//! of `base`-bit words.

use crate::cpp::{self, Config};

pub struct Field {
    pub name: String,
    /// Bit offset from bit 0 of the block.
    pub offset: u32,
    pub width: u32,
}

pub struct Block {
    pub name: String,
    pub size_bits: u32,
    pub fields: Vec<Field>,
}

pub struct TaggedUnion {
    pub name: String,
    #[allow(dead_code)] // kept for completeness of the model
    pub tag_field: String,
    pub tags: Vec<(String, u64)>,
}

#[derive(Default)]
pub struct BitfieldSpec {
    pub blocks: Vec<Block>,
    pub unions: Vec<TaggedUnion>,
}

impl BitfieldSpec {
    /// Parse several `.bf` files under `config` into one specification.
    pub fn read(files: &[std::path::PathBuf], config: &Config) -> BitfieldSpec {
        let mut spec = BitfieldSpec::default();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let lines = cpp::preprocess(&text, config, &mut Default::default());
            let tokens: Vec<String> = lines
                .iter()
                .map(|l| l.split("--").next().unwrap_or(""))
                .flat_map(|l| {
                    l.replace('{', " { ").replace('}', " } ").split_whitespace().map(str::to_string).collect::<Vec<_>>()
                })
                .collect();
            spec.parse(&tokens);
        }
        spec
    }

    fn parse(&mut self, t: &[String]) {
        let mut i = 0;
        let num = |s: &str| -> u32 { s.parse().unwrap_or_else(|_| panic!("bad number {s:?} in .bf")) };
        while i < t.len() {
            match t[i].as_str() {
                "base" => i += 2,
                "block" => {
                    let name = t[i + 1].clone();
                    assert_eq!(t[i + 2], "{");
                    i += 3;
                    let mut raw = Vec::new(); // (name or None for padding, width)
                    while t[i] != "}" {
                        match t[i].as_str() {
                            "padding" => {
                                raw.push((None, num(&t[i + 1])));
                                i += 2;
                            }
                            "field" | "field_high" => {
                                raw.push((Some(t[i + 1].clone()), num(&t[i + 2])));
                                i += 3;
                            }
                            other => panic!("unexpected {other:?} in .bf block {name}"),
                        }
                    }
                    i += 1;
                    let size_bits: u32 = raw.iter().map(|(_, w)| w).sum();
                    let mut top = size_bits;
                    let mut fields = Vec::new();
                    for (n, w) in raw {
                        top -= w;
                        if let Some(n) = n {
                            fields.push(Field { name: n, offset: top, width: w });
                        }
                    }
                    self.blocks.push(Block { name, size_bits, fields });
                }
                "tagged_union" => {
                    let name = t[i + 1].clone();
                    let tag_field = t[i + 2].clone();
                    assert_eq!(t[i + 3], "{");
                    i += 4;
                    let mut tags = Vec::new();
                    while t[i] != "}" {
                        assert_eq!(t[i], "tag", "in tagged_union {name}");
                        tags.push((t[i + 1].clone(), num(&t[i + 2]) as u64));
                        i += 3;
                    }
                    i += 1;
                    self.unions.push(TaggedUnion { name, tag_field, tags });
                }
                other => panic!("unexpected token {other:?} in .bf"),
            }
        }
    }

    pub fn union(&self, name: &str) -> &TaggedUnion {
        self.unions.iter().find(|u| u.name == name).unwrap_or_else(|| panic!("no tagged_union {name} in .bf"))
    }
}
