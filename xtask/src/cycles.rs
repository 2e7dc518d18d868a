//! `cargo xtask test`'s import-cycle check: within each crate, no source file may reach itself
//! through `crate::`, `super::` and `self::` paths (in `use` declarations and inline). Files are
//! the unit, as a reader navigates them: a cycle between two files means neither can be read, or
//! changed, without the other.
//!
//! A path names the file of the longest module prefix that exists (`crate::gateway::sqlite::x`
//! is `gateway/sqlite.rs`); re-exports are not followed, so import from the defining file. A
//! folder module and its own files may use each other (`mod.rs` dispatching to a child that
//! uses `super::` types is ordinary Rust); a loop that passes through any other file is not.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// The crates whose `src` folders are checked.
const CRATES: &[&str] = &["server", "protocol", "app", "xtask"];

pub fn check(root: &Path) -> Result<()> {
    let mut found = Vec::new();
    for name in CRATES {
        let source = root.join(name).join("src");
        if !source.is_dir() {
            continue;
        }
        let graph = Graph::read(&source)?;
        for cycle in graph.cycles() {
            found.push(format!("{name}: {}", cycle.join(", ")));
            for (from, to) in graph.ties(&cycle) {
                found.push(format!("    {from} imports {to}"));
            }
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        bail!(
            "import cycles: the files named on a line reach each other through the imports listed under it:\n  {}",
            found.join("\n  ")
        )
    }
}

/// Files (by module path, `crate::a::b` as `["a", "b"]`) and which files each one imports.
pub struct Graph {
    files: BTreeMap<Vec<String>, PathBuf>,
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

impl Graph {
    fn read(source: &Path) -> Result<Graph> {
        let mut texts = BTreeMap::new();
        collect(source, source, &mut texts)?;
        Ok(Graph::from_sources(texts))
    }

    /// The graph of `sources`: module path → (file, its text).
    pub fn from_sources(sources: BTreeMap<Vec<String>, (PathBuf, String)>) -> Graph {
        let files: BTreeMap<Vec<String>, PathBuf> = sources
            .iter()
            .map(|(module, (file, _))| (module.clone(), file.clone()))
            .collect();
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (module, (_, text)) in &sources {
            let children: Vec<&String> = files
                .keys()
                .filter(|other| other.len() == module.len() + 1 && other.starts_with(module))
                .map(|child| child.last().expect("a child has a name"))
                .collect();
            let targets = edges.entry(module.clone()).or_default();
            // Unit tests sit in a `#[cfg(test)]` module at the end of a file; their `super`
            // is the file itself, and they are no part of its imports.
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for mut path in paths_in(&strip_comments(code), &children) {
                // `child::x` in a folder module is `self::child::x`.
                if children.contains(&&path[0]) {
                    path.insert(0, "self".to_owned());
                }
                let Some(absolute) = absolute(module, &path) else {
                    continue;
                };
                if let Some(target) = longest_file(&files, &absolute)
                    && target != *module
                {
                    targets.insert(target);
                }
            }
        }
        Graph { files, edges }
    }

    /// The imports between the files of one cycle, as (importer, imported) file paths.
    pub fn ties(&self, cycle: &[String]) -> Vec<(String, String)> {
        let in_cycle =
            |module: &Vec<String>| cycle.contains(&self.files[module].display().to_string());
        self.edges
            .iter()
            .filter(|(from, _)| in_cycle(from))
            .flat_map(|(from, targets)| {
                targets.iter().filter(|to| in_cycle(to)).map(move |to| {
                    (
                        self.files[from].display().to_string(),
                        self.files[to].display().to_string(),
                    )
                })
            })
            .collect()
    }

    /// Every set of files that reach each other, each as a list of file paths.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        strongly_connected(&self.edges)
            .into_iter()
            .filter(|component| component.len() > 1 && !is_one_family(component))
            .map(|component| {
                component
                    .iter()
                    .map(|module| self.files[module].display().to_string())
                    .collect()
            })
            .collect()
    }
}

/// Whether `modules` are one folder module and some of its own files.
fn is_one_family(modules: &[Vec<String>]) -> bool {
    let Some(parent) = modules.iter().min_by_key(|module| module.len()) else {
        return true;
    };
    modules.iter().all(|module| {
        module == parent || (module.len() == parent.len() + 1 && module.starts_with(parent))
    })
}

fn collect(
    source: &Path,
    folder: &Path,
    texts: &mut BTreeMap<Vec<String>, (PathBuf, String)>,
) -> Result<()> {
    for entry in fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(source, &path, texts)?;
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let relative = path.strip_prefix(source).expect("under the source folder");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = fs::read_to_string(&path)?;
            let shown = Path::new(
                source
                    .parent()
                    .and_then(Path::file_name)
                    .unwrap_or_default(),
            )
            .join("src")
            .join(relative);
            texts.insert(module, (shown, text));
        }
    }
    Ok(())
}

/// The text without comments and without the contents of string and character literals, so a
/// path in a doc comment or a message is not an import.
fn strip_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let next = chars.get(at + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while at < chars.len() && chars[at] != '\n' {
                    at += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                at += 2;
                while at + 1 < chars.len() && !(chars[at] == '*' && chars[at + 1] == '/') {
                    at += 1;
                }
                at += 2;
                continue;
            }
            'r' if matches!(next, Some('"' | '#'))
                && !chars[..at]
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_') =>
            {
                let hashes = chars[at + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(at + 1 + hashes) == Some(&'"') {
                    at += hashes + 2;
                    while at < chars.len() {
                        if chars[at] == '"'
                            && chars[at + 1..].iter().take_while(|c| **c == '#').count() >= hashes
                        {
                            at += 1 + hashes;
                            break;
                        }
                        at += 1;
                    }
                    out.push_str("\"\"");
                    continue;
                }
                out.push(c);
            }
            '"' => {
                at += 1;
                while at < chars.len() && chars[at] != '"' {
                    at += if chars[at] == '\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
            }
            '\'' => {
                // A character literal ('x', '\n', '\u{1b}') is skipped; a lifetime is kept.
                if next == Some('\\') {
                    at += 2;
                    while at < chars.len() && chars[at] != '\'' {
                        at += 1;
                    }
                } else if chars.get(at + 2) == Some(&'\'') {
                    at += 2;
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
        at += 1;
    }
    out
}

/// Every path starting with `crate`, `super`, `self` or one of `children` (the file's own child
/// modules) in the code: `use` trees expanded, and inline paths such as
/// `crate::store::now_us()`.
fn paths_in(code: &str, children: &[&String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        expand(&after[..end], &mut Vec::new(), &mut paths);
        rest = &after[end..];
    }
    for (index, _) in code.match_indices("::") {
        let before = &code[..index];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |at| at + 1);
        let path_text = &code[start..];
        let end = path_text
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(path_text.len());
        let path: Vec<String> = path_text[..end]
            .split("::")
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect();
        if path.len() > 1
            && (matches!(path[0].as_str(), "crate" | "super" | "self")
                || children.contains(&&path[0]))
        {
            paths.push(path);
        }
    }
    paths
}

/// The next `use ` that starts a declaration (not part of a word).
fn find_use(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = text[from..].find("use ") {
        let at = from + offset;
        let before = text[..at].chars().next_back();
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// Expands a `use` tree (`crate::{a::b, c::{d, e as f}}`) into its full paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let (head, group) = match tree.find('{') {
        Some(open) if tree.ends_with('}') => (&tree[..open], Some(&tree[open + 1..tree.len() - 1])),
        _ => (tree, None),
    };
    // `other as o` names `other`.
    let head: String = head.split_whitespace().next().unwrap_or("").to_owned();
    let depth = prefix.len();
    for part in head
        .split("::")
        .filter(|part| !part.is_empty() && *part != "*")
    {
        prefix.push(part.to_owned());
    }
    match group {
        Some(group) => {
            for item in split_top_level(group) {
                expand(item, prefix, out);
            }
        }
        None => out.push(prefix.clone()),
    }
    prefix.truncate(depth);
}

fn split_top_level(group: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts.into_iter().filter(|part| !part.is_empty()).collect()
}

/// `path` as a module path from the crate root, or none when it leaves the crate.
/// In `a/b.rs` and `a/b/mod.rs` alike (module a::b), `self` is a::b and `super` is a.
fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut current: Vec<String> = module.to_vec();
    let mut parts = path.iter().peekable();
    match parts.peek().map(|part| part.as_str()) {
        Some("crate") => {
            current.clear();
            parts.next();
        }
        Some("self") => {
            parts.next();
        }
        Some("super") => {
            while parts.peek().map(|part| part.as_str()) == Some("super") {
                parts.next();
                current.pop()?;
            }
        }
        _ => return None,
    }
    current.extend(parts.filter(|part| *part != "self").cloned());
    Some(current)
}

fn longest_file(files: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|length| path[..length].to_vec())
        .find(|prefix| files.contains_key(prefix))
}

/// Tarjan's strongly connected components.
fn strongly_connected(
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        next: usize,
        components: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Vec<String>) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(targets) = state.edges.get(node) {
            for target in targets {
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            component.sort();
            state.components.push(component);
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        components: Vec::new(),
    };
    for node in edges.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.components
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        Graph::from_sources(
            files
                .iter()
                .map(|(file, text)| {
                    let mut module: Vec<String> = file
                        .trim_end_matches(".rs")
                        .split('/')
                        .map(str::to_owned)
                        .collect();
                    if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                        module.pop();
                    }
                    (module, (PathBuf::from(file), (*text).to_owned()))
                })
                .collect(),
        )
    }

    #[test]
    fn finds_a_cycle_through_grouped_and_inline_paths() {
        let cycles = graph(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::{b::{Thing, other as o}, x};"),
            ("b.rs", "fn f() { crate::c::g() }"),
            ("c/mod.rs", "use super::a::Start;"),
        ])
        .cycles();
        assert_eq!(cycles, [["a.rs", "b.rs", "c/mod.rs"]]);
    }

    #[test]
    fn paths_in_comments_and_strings_and_child_modules_do_not_count() {
        let cycles = graph(&[
            ("lib.rs", "mod a; mod b;"),
            ("a/mod.rs", "mod inner; use self::inner::X; use crate::b::Y;"),
            ("a/inner.rs", "// uses crate::b::Y\nconst S: &str = \"crate::a::Z\";"),
            (
                "b.rs",
                "/// see [`crate::a::X`]\n/* crate::a::X */ fn f<'a>(q: char) -> bool { q == '\"' && r#\"crate::a::X\"# != \"\" }",
            ),
        ])
        .cycles();
        assert!(cycles.is_empty(), "{cycles:?}");
    }

    #[test]
    fn a_folder_and_its_own_files_may_use_each_other_but_not_through_another_file() {
        let family = graph(&[
            ("lib.rs", "mod g; mod other;"),
            (
                "g/mod.rs",
                "mod run; pub struct Outcome; fn f() { run::execute() }",
            ),
            ("g/run.rs", "use super::Outcome; pub fn execute() {}"),
            ("other.rs", "use crate::g::Outcome;"),
        ]);
        assert!(family.cycles().is_empty(), "{:?}", family.cycles());
        let through_another = graph(&[
            ("lib.rs", "mod store; mod live;"),
            ("store/mod.rs", "mod sqlite; use sqlite::SqliteStore;"),
            ("store/sqlite.rs", "use crate::live::Hub;"),
            ("live.rs", "use crate::store::Store;"),
        ]);
        assert_eq!(
            through_another.cycles(),
            [["live.rs", "store/mod.rs", "store/sqlite.rs"]]
        );
    }

    #[test]
    fn super_climbs_from_a_file_and_from_a_folder_module() {
        let cycles = graph(&[
            ("lib.rs", "mod g;"),
            ("g/mod.rs", "use self::x::Run;"),
            ("g/x.rs", "use super::y::Other;"),
            ("g/y.rs", "use super::x::Run;"),
        ])
        .cycles();
        assert_eq!(cycles, [["g/x.rs", "g/y.rs"]]);
    }
}
