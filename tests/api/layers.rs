//! The layer rule of docs/ARCHITECTURE.md, checked against the source: a module may use only
//! modules on lower floors, so the import graph between modules has no cycles and no upward edge.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Floors from the ground up; a module may import only modules on a lower floor.
const FLOORS: &[&[&str]] = &[
    &["model", "backoff"],
    &["media"],
    &["config"],
    &["storage", "db", "telemetry"],
    &["ingest", "pipeline", "delivery", "events"],
    &["api"],
    &["app", "client"],
    &["cli"],
    &["main"],
];

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names through `crate::…` paths (comments included: a doc link to
/// a higher layer is a dependency too).
fn named_modules(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .filter(|(at, _)| !text[..*at].ends_with('$'))
        .map(|(at, prefix)| {
            let rest = &text[at + prefix.len()..];
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn no_module_imports_a_higher_or_sideways_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative.components().next().expect("a component").as_os_str().to_string_lossy();
        let module = module.trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let own = floor(module).unwrap_or_else(|| panic!("src/{module} is on no floor: add it to FLOORS and the docs"));
        let text = std::fs::read_to_string(file).expect("readable source");
        for used in named_modules(&text) {
            if used == module {
                continue;
            }
            match floor(&used) {
                Some(theirs) if theirs < own => {}
                _ => violations.push(format!("{} uses crate::{used}", relative.display())),
            }
        }
    }
    assert!(violations.is_empty(), "imports against the layer rule:\n{}", violations.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    let names = named_modules("use crate::model::VideoId;\n/// See [`crate::api::error`].\nuse $crate::db::x;");
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["api", "model"]);
}
