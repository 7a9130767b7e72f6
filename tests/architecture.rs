//! The design's arrows, checked: reads every `crate::` path in `src/` and fails
//! on an edge between top-level modules that DESIGN.md's map forbids, on a
//! cycle between top-level modules, and on tokio (or anything async) in the
//! pure layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each top-level module may import. Anything not listed is forbidden.
const ALLOWED: &[(&str, &[&str])] = &[
    ("codec", &[]),
    ("kernels", &[]),
    ("series", &["codec"]),
    ("mapping", &["codec", "config", "kernels", "series"]),
    ("workload", &["codec"]),
    ("config", &["kernels"]),
    ("web", &["config", "telemetry"]),
    ("telemetry", &["codec", "config", "kernels"]),
    ("store", &["codec", "kernels", "series"]),
    ("gpu", &["config", "kernels", "telemetry"]),
    (
        "shard",
        &[
            "codec",
            "config",
            "gpu",
            "kernels",
            "mapping",
            "series",
            "store",
            "telemetry",
        ],
    ),
    (
        "ingest",
        &["codec", "config", "series", "shard", "telemetry", "web"],
    ),
    ("exposition", &["codec", "series", "store", "telemetry"]),
    (
        "http",
        &["codec", "exposition", "series", "store", "telemetry", "web"],
    ),
    (
        "sinks",
        &[
            "codec",
            "config",
            "exposition",
            "series",
            "store",
            "telemetry",
            "web",
        ],
    ),
    (
        "app",
        &[
            "codec",
            "config",
            "exposition",
            "gpu",
            "http",
            "ingest",
            "kernels",
            "mapping",
            "series",
            "shard",
            "sinks",
            "store",
            "telemetry",
            "web",
        ],
    ),
];

/// Layers that stay synchronous and pure: no async runtime, no network stack.
const PURE: &[&str] = &["codec", "kernels", "mapping", "series"];
const ASYNC_CRATES: &[&str] = &["tokio", "tokio_util", "tokio_stream", "tonic", "hyper"];

/// The top-level modules `source` (a file of module `module`) names through
/// `crate::`, and the async crates it names.
fn references(source: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut modules = BTreeSet::new();
    let mut crates = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let before = code[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                modules.insert(name);
            }
        }
        for krate in ASYNC_CRATES {
            let path = format!("{krate}::");
            for (i, _) in code.match_indices(&path) {
                let before = code[..i].chars().last();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    crates.insert((*krate).to_owned());
                }
            }
        }
    }
    (modules, crates)
}

/// Which top-level module a file under `src/` belongs to (none for the crate
/// root, `main.rs` and the binaries, which may use anything).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "bin")).then(|| name.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every edge `from -> to` between top-level modules, and the async crates each uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn crate_graph(src: &Path) -> (Graph, Graph) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges = Graph::new();
    let mut asyncs = Graph::new();
    for file in files {
        let Some(module) = module_of(file.strip_prefix(src).unwrap()) else {
            continue;
        };
        let (modules, crates) = references(&std::fs::read_to_string(&file).unwrap());
        let entry = edges.entry(module.clone()).or_default();
        entry.extend(modules.into_iter().filter(|m| *m != module));
        asyncs.entry(module).or_default().extend(crates);
    }
    (edges, asyncs)
}

/// The arrows the design forbids, in words.
fn violations(edges: &Graph, asyncs: &Graph) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut found = Vec::new();
    for (from, targets) in edges {
        let Some(may) = allowed.get(from.as_str()) else {
            found.push(format!(
                "{from} is not on the design's map (add it to ALLOWED)"
            ));
            continue;
        };
        for to in targets {
            if !may.contains(&to.as_str()) {
                found.push(format!("{from} -> {to} is not an arrow of the design"));
            }
        }
    }
    for module in PURE {
        for krate in asyncs.get(*module).into_iter().flatten() {
            found.push(format!("{module} uses {krate}, but must stay synchronous"));
        }
    }
    found.extend(cycles(edges));
    found
}

/// One message per cycle found by depth-first search.
fn cycles(edges: &Graph) -> Vec<String> {
    fn visit(
        node: &str,
        edges: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            found.push(format!("cycle: {}", cycle.join(" -> ")));
            return;
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn the_crate_follows_the_design_map() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (edges, asyncs) = crate_graph(&src);
    assert!(edges.contains_key("ingest") && edges.contains_key("shard"));
    let found = violations(&edges, &asyncs);
    assert!(
        found.is_empty(),
        "the design's arrows are broken:\n{}",
        found.join("\n")
    );
}

fn graph(edges: &[(&str, &str)]) -> Graph {
    let mut graph = Graph::new();
    for (from, to) in edges {
        graph
            .entry((*from).into())
            .or_default()
            .insert((*to).into());
        graph.entry((*to).into()).or_default();
    }
    graph
}

#[test]
fn forbidden_arrows_cycles_and_async_pure_layers_are_caught() {
    let none = Graph::new();
    let up = violations(&graph(&[("store", "http")]), &none);
    assert_eq!(up, ["store -> http is not an arrow of the design"]);
    let codec_up = violations(&graph(&[("codec", "shard")]), &none);
    assert_eq!(codec_up, ["codec -> shard is not an arrow of the design"]);
    let cycle = cycles(&graph(&[("shard", "store"), ("store", "shard")]));
    assert_eq!(cycle, ["cycle: shard -> store -> shard"]);
    let mut asyncs = Graph::new();
    asyncs.insert("kernels".into(), ["tokio".to_owned()].into());
    assert_eq!(
        violations(&graph(&[]), &asyncs),
        ["kernels uses tokio, but must stay synchronous"]
    );
}

#[test]
fn references_are_read_from_use_lines_and_inline_paths() {
    let (modules, crates) = references(
        "use crate::store::{Rollup};\nlet x = crate::http::probe(); // crate::app\nuse tokio::net::UdpSocket;\n",
    );
    assert_eq!(modules, ["http".to_owned(), "store".to_owned()].into());
    assert_eq!(crates, ["tokio".to_owned()].into());
    let (modules, _) =
        references("use super::x; // nothing from crate:: here\n$crate::kernels::f();\n");
    assert!(modules.is_empty());
}
