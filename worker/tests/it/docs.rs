//! The docs cannot drift from the repository: every relative link in the README,
//! CONTRIBUTING.md and `docs/` points at a file (and heading) that exists; the configuration
//! reference names every flag of `saga worker --help` and every environment variable the code
//! reads; and no crate depends on one in a higher layer (CONTRIBUTING.md, "The crates and their
//! layers").

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The markdown files people read: README.md, CONTRIBUTING.md, docs/, and the saga library's.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs = vec![
        root.join("README.md"),
        root.join("CONTRIBUTING.md"),
        root.join("temporal-saga/README.md"),
    ];
    for dir in ["docs", "temporal-saga/docs"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                docs.push(path);
            }
        }
    }
    docs.sort();
    docs
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(markdown).unwrap();
    prose(&text)
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// Every `[text](target)` of a document.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find(')') {
            let target = &rest[..end];
            if !target.contains(char::is_whitespace) {
                found.push(target.to_owned());
            }
            rest = &rest[end..];
        }
    }
    found
}

#[test]
fn every_relative_link_in_the_docs_points_somewhere() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = prose(&std::fs::read_to_string(&doc).unwrap());
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(path)
            };
            let shown = doc.strip_prefix(repo()).unwrap().display().to_string();
            if !file.exists() {
                broken.push(format!("{shown}: {target} (no such file)"));
            } else if !fragment.is_empty()
                && file.extension().is_some_and(|e| e == "md")
                && !anchors(&file).contains(fragment)
            {
                broken.push(format!("{shown}: {target} (no such heading)"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that point nowhere:\n{}",
        broken.join("\n")
    );
}

/// The configuration reference: the table under "Configuration" in docs/operations.md.
fn configuration_reference() -> String {
    let text = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let start = text
        .find("## Configuration")
        .expect("a Configuration section");
    let end = text[start + 3..]
        .find("\n## ")
        .map_or(text.len(), |e| start + 3 + e);
    text[start..end].to_owned()
}

#[test]
fn every_flag_of_saga_worker_is_in_the_configuration_reference() {
    let help = Command::new(env!("CARGO_BIN_EXE_saga"))
        .args(["worker", "--help"])
        .output()
        .expect("saga worker --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let reference = configuration_reference();
    let mut flags = BTreeSet::new();
    for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
        if let Some(flag) = word.strip_prefix("--")
            && !flag.is_empty()
            && !["help", "version"].contains(&flag)
        {
            flags.insert(format!("--{}", flag.split('=').next().unwrap()));
        }
    }
    assert!(flags.len() > 15, "flags read from the help: {flags:?}");
    let missing: Vec<_> = flags
        .iter()
        .filter(|f| !reference.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "flags of `saga worker --help` the configuration reference (docs/operations.md) does not \
         name: {missing:?}"
    );
}

/// Names in string literals of the crates' sources that are settings: `SAGA_*`, `TEMPORAL_*`,
/// `*_DATABASE_URL`, `*_DB_POOL_SIZE`, and any name read with `var(…)` or `var_os(…)`.
fn settings_in_the_code() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut sources = Vec::new();
    for krate in [
        "worker",
        "activities",
        "codec",
        "protos",
        "workflows",
        "temporal-saga",
    ] {
        walk(&repo().join(krate).join("src"), &mut sources);
    }
    let is_setting = |name: &str| {
        name.len() > 3
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && (name.starts_with("SAGA_")
                || name.starts_with("TEMPORAL_")
                || name.ends_with("_DATABASE_URL")
                || name.ends_with("_DB_POOL_SIZE"))
    };
    let mut names = BTreeSet::new();
    for source in sources {
        let text = std::fs::read_to_string(&source).unwrap();
        for (i, literal) in text.split('"').enumerate() {
            if i % 2 == 1 && is_setting(literal) {
                names.insert(literal.to_owned());
            }
        }
        for call in ["var(\"", "var_os(\""] {
            for (_, rest) in text
                .match_indices(call)
                .map(|(i, _)| ((), &text[i + call.len()..]))
            {
                let name: String = rest.chars().take_while(|c| *c != '"').collect();
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn every_environment_variable_the_code_reads_is_in_the_configuration_reference() {
    // Set by CI runners, not by users.
    const NOT_SETTINGS: [&str; 1] = ["CI"];
    let reference = configuration_reference();
    let names = settings_in_the_code();
    assert!(
        names.contains("SAGA_DATA_DIR") && names.contains("SAGA_FAULTS"),
        "{names:?}"
    );
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !NOT_SETTINGS.contains(&n.as_str()) && !reference.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "environment variables the code reads that the configuration reference \
         (docs/operations.md) does not name: {missing:?}"
    );
}

/// The layers of CONTRIBUTING.md, bottom first.
const LAYERS: [&[&str]; 5] = [
    &["saga-protos", "saga-codec", "temporal-saga"],
    &["saga-activities"],
    &["saga-delivery", "saga-workflows"],
    &["saga-worker"],
    &["saga-bench"],
];

#[test]
fn no_crate_depends_on_one_in_a_higher_layer() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata");
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("its JSON");
    let layer = |name: &str| LAYERS.iter().position(|l| l.contains(&name));
    let mut wrong = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let own = layer(name).unwrap_or_else(|| panic!("{name} is in no layer of CONTRIBUTING.md"));
        for dependency in package["dependencies"].as_array().unwrap() {
            let on = dependency["name"].as_str().unwrap();
            if let Some(theirs) = layer(on)
                && theirs > own
            {
                wrong.push(format!(
                    "{name} (layer {own}) depends on {on} (layer {theirs})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}
