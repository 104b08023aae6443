//! The server crate's layout stays as docs/ARCHITECTURE.md draws it: its top-level modules use
//! each other without a cycle (so `conn`, `room_name` and the rest stay leaves or layers), and no
//! source file of the server or the SFU grows past 700 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `rooms/task.rs` and `rooms/mod.rs` are `rooms`.
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// The modules named after `crate::` in `text` (`crate::x::y`, `crate::{x, y::z}`), comments
/// left out.
fn crate_uses(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut uses = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // e.g. `lectern_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            uses.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            uses.insert(ident(rest));
        }
    }
    uses.retain(|m| !m.is_empty() && m != "self");
    uses
}

#[test]
fn server_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let top = top_module(&src, file);
        let text = std::fs::read_to_string(file).expect("read");
        let uses = edges.entry(top.clone()).or_default();
        uses.extend(crate_uses(&text).into_iter().filter(|m| *m != top));
    }
    assert!(
        edges.contains_key("rooms") && edges.contains_key("ws"),
        "{edges:?}"
    );
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if edges.contains_key(next)
                && let Some(cycle) = visit(next, edges, path, done)
            {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("module cycle in lectern-server: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn no_source_file_of_the_server_or_the_sfu_is_over_700_lines() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&manifest.join("src"), &mut files);
    rust_files(&manifest.join("../lectern-sfu/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).expect("read").lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these along their concerns: {long:?}"
    );
}

#[test]
fn crate_uses_reads_paths_and_groups() {
    let text = "use crate::conn::{ConnTx, Outbound};\nuse crate::{clock, rooms::X};\n\
                // crate::commented\nlet x = crate::metrics::Metrics::inc;";
    let uses: Vec<String> = crate_uses(text).into_iter().collect();
    assert_eq!(uses, ["clock", "conn", "metrics", "rooms"]);
}
