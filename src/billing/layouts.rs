//! Fixed-width export layouts: the bundled ones (`layouts/*.toml`, compiled in) and the
//! utility's own, one TOML file per layout in the configured directory. A utility layout with
//! the name of a bundled one replaces it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use meterd_protocols::fixed_width::Layout;

use super::render::LAYOUT_VALUES;

/// The layouts compiled into meterd.
pub const BUNDLED: [(&str, &str); 2] = [
    (
        "sensus-autoread-export.toml",
        include_str!("../../layouts/sensus-autoread-export.toml"),
    ),
    ("municipal-cis.toml", include_str!("../../layouts/municipal-cis.toml")),
];

/// Format names that are not layouts.
pub const BUILTIN_FORMATS: [&str; 3] = ["json", "csv", "cmep"];

/// Layouts by name.
#[derive(Debug, Clone, Default)]
pub struct Layouts {
    by_name: BTreeMap<String, Arc<Layout>>,
}

/// Parse and check one export layout: fields must name values billing has.
pub fn parse(text: &str, file: &str) -> anyhow::Result<Layout> {
    let layout = Layout::from_toml(text).with_context(|| format!("layout file {file}"))?;
    for f in &layout.fields {
        if !LAYOUT_VALUES.iter().any(|(n, _)| *n == f.name) {
            let known: Vec<&str> = LAYOUT_VALUES.iter().map(|(n, _)| *n).collect();
            bail!(
                "layout file {file}: field {:?} is not a billing value; known: {}",
                f.name,
                known.join(", ")
            );
        }
    }
    if BUILTIN_FORMATS.contains(&layout.name.as_str()) {
        bail!(
            "layout file {file}: the name {:?} is taken by a built-in format",
            layout.name
        );
    }
    Ok(layout)
}

impl Layouts {
    /// The bundled layouts plus every `*.toml` in `dir` (when given).
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut by_name = BTreeMap::new();
        for (file, text) in BUNDLED {
            let l = parse(text, file)?;
            by_name.insert(l.name.clone(), Arc::new(l));
        }
        if let Some(dir) = dir {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .with_context(|| format!("layouts directory {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let l = parse(&text, &path.display().to_string())?;
                by_name.insert(l.name.clone(), Arc::new(l));
            }
        }
        Ok(Layouts { by_name })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Layout>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_layouts_load_and_round_trip_through_toml() {
        let l = Layouts::load(None).unwrap();
        assert_eq!(
            l.names().collect::<Vec<_>>(),
            ["municipal-cis", "sensus-autoread-export"]
        );
        for name in ["municipal-cis", "sensus-autoread-export"] {
            let layout = l.get(name).unwrap();
            assert_eq!(Layout::from_toml(&layout.to_toml().unwrap()).unwrap(), *layout);
        }
    }

    #[test]
    fn utility_layouts_come_from_the_directory_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "name = \"mine\"\nrecord_length = 10\n[[fields]]\nname = \"meter_id\"\nstart = 1\nlength = 10\n",
        )
        .unwrap();
        let l = Layouts::load(Some(dir.path())).unwrap();
        assert_eq!(l.get("mine").unwrap().record_length, 10);
        std::fs::write(
            dir.path().join("bad.toml"),
            "name = \"bad\"\nrecord_length = 10\n[[fields]]\nname = \"meterid\"\nstart = 1\nlength = 10\n",
        )
        .unwrap();
        let e = format!("{:#}", Layouts::load(Some(dir.path())).unwrap_err());
        assert!(
            e.contains("bad.toml") && e.contains("\"meterid\" is not a billing value"),
            "{e}"
        );
    }
}
