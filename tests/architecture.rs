//! The layout's invariants, read from the sources (ARCHITECTURE.md, "Invariants"):
//!
//! - **No import circle** between the top-level modules of any crate under `crates/`
//!   and `functions/`: every `crate::<module>` path (in `use`, groups included, and in
//!   expressions) and every `super::` path that climbs to the crate root is an edge
//!   from the top-level module of the file (and inline `mod` block) it is written in.
//!   A name the crate root re-exports (`crate::Finding`) counts as its module; other
//!   items of the crate root (`lib.rs`, `main.rs`) are not a module and make no edge.
//! - **No source file over [`MAX_LINES`] lines** outside `tests/` directories.
//!
//! Comments, string and character literals are blanked before the paths are read, so
//! a path in a doc comment or a message is no edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The longest a source file outside `tests/` may be.
const MAX_LINES: usize = 1000;

/// The repository's root (this package is its `tests/` folder).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Every `.rs` file under `dir`, recursively, as (path relative to `dir`, text).
fn rust_files(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if skip(&path) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text =
                    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let rel = path.strip_prefix(dir).expect("under dir").to_owned();
                out.push((rel, text));
            }
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------------ reading paths

/// `src` with comments and the contents of string and character literals replaced by
/// spaces (newlines kept, so lines still count).
fn blank(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let keep_lines = |s: &[char], out: &mut String| {
        for ch in s {
            out.push(if *ch == '\n' { '\n' } else { ' ' });
        }
    };
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            let end = c[i..]
                .iter()
                .position(|x| *x == '\n')
                .map_or(c.len(), |p| i + p);
            keep_lines(&c[i..end], &mut out);
            i = end;
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            let start = i;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_lines(&c[start..i.min(c.len())], &mut out);
        } else if c[i] == 'r'
            && (!prev_ident || (i > 0 && c[i - 1] == 'b' && !(i > 1 && ident(c[i - 2]))))
            && matches!(c.get(i + 1), Some('"' | '#'))
            && {
                let hashes = c[i + 1..].iter().take_while(|x| **x == '#').count();
                c.get(i + 1 + hashes) == Some(&'"')
            }
        {
            // r"..." / r#"..."# (and br#"..."#: the b was copied as an identifier).
            let hashes = c[i + 1..].iter().take_while(|x| **x == '#').count();
            let body = i + 2 + hashes;
            let mut j = body;
            while j < c.len() {
                if c[j] == '"'
                    && c[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|x| **x == '#')
                        .count()
                        == hashes
                {
                    break;
                }
                j += 1;
            }
            let end = (j + 1 + hashes).min(c.len());
            out.push('"');
            keep_lines(&c[i + 1..end.saturating_sub(1).max(i + 1)], &mut out);
            out.push('"');
            i = end;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            out.push('"');
            keep_lines(&c[i + 1..j.min(c.len())], &mut out);
            out.push('"');
            i = (j + 1).min(c.len());
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = (j + 1).min(c.len());
            } else if c.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// A token and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    line: usize,
}

/// Identifiers, `::` and single punctuation characters of blanked source.
fn tokens(blanked: &str) -> Vec<Token> {
    let c: Vec<char> = blanked.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Token {
                text: c[start..i].iter().collect(),
                line,
            });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token {
                text: "::".to_owned(),
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                text: ch.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The first segments a path names from token `j` on: `x` in `x::...`, or each item
/// of a group `{a, b::c, self}` (without `self`).
fn heads(t: &[Token], j: usize) -> Vec<&Token> {
    match t.get(j).map(|x| x.text.as_str()) {
        Some("{") => {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut expect = true;
            for tok in &t[j..] {
                match tok.text.as_str() {
                    "{" => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," if depth == 1 => expect = true,
                    s if expect && depth == 1 && is_ident(s) => {
                        if s != "self" {
                            out.push(tok);
                        }
                        expect = false;
                    }
                    _ => expect = false,
                }
            }
            out
        }
        Some(s) if is_ident(s) => vec![&t[j]],
        _ => Vec::new(),
    }
}

/// One source file of a crate: its module path (`steps/isolate.rs` is
/// `["steps", "isolate"]`, `lib.rs` is `[]`) and its text.
struct Source<'a> {
    module: Vec<String>,
    file: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    fn new(rel: &'a Path, text: &'a str) -> Source<'a> {
        let mut module: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if let Some(last) = module.pop() {
            let stem = last.trim_end_matches(".rs");
            if !(matches!(stem, "mod") || (module.is_empty() && matches!(stem, "lib" | "main"))) {
                module.push(stem.to_owned());
            }
        }
        Source {
            module,
            file: rel,
            text,
        }
    }
}

/// Where an edge was seen first: file and line.
type Evidence = (PathBuf, usize);

/// Top-level module → the top-level modules it refers to, each with where.
type Graph = BTreeMap<String, BTreeMap<String, Evidence>>;

/// The crate's module graph, from its `src/` files.
fn graph(sources: &[Source<'_>]) -> Graph {
    let tops: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s.module.first().cloned())
        .collect();
    // Names the crate root re-exports (`pub use finding::Finding;`) → their module.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for root in sources.iter().filter(|s| s.module.is_empty()) {
        let t = tokens(&blank(root.text));
        for (i, w) in t.windows(2).enumerate() {
            if w[0].text == "pub" && w[1].text == "use" {
                let Some(module) = t.get(i + 2).filter(|m| tops.contains(&m.text)) else {
                    continue;
                };
                let end = t[i..]
                    .iter()
                    .position(|x| x.text == ";")
                    .map_or(t.len(), |p| i + p);
                for k in i + 3..end {
                    if is_ident(&t[k].text)
                        && matches!(t.get(k + 1).map(|x| x.text.as_str()), Some("," | "}" | ";"))
                    {
                        reexports.insert(t[k].text.clone(), module.text.clone());
                    }
                }
            }
        }
    }
    let resolve = |name: &str| -> Option<String> {
        if tops.contains(name) {
            Some(name.to_owned())
        } else {
            reexports.get(name).cloned()
        }
    };
    let mut g = Graph::new();
    for s in sources {
        let t = tokens(&blank(s.text));
        // Inline `mod name { ... }` blocks: the brace depth each was opened at.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut edge = |from: &[String], to: Option<String>, line: usize| {
            let (Some(from), Some(to)) = (from.first(), to) else {
                return;
            };
            if *from != to {
                g.entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| (s.file.to_owned(), line));
            }
        };
        let mut i = 0;
        while i < t.len() {
            let here: Vec<String> = s
                .module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(m, _)| m.clone()))
                .collect();
            let text = t[i].text.as_str();
            let prev = i.checked_sub(1).map(|p| t[p].text.as_str());
            let next = t.get(i + 1).map(|x| x.text.as_str());
            match text {
                "{" => depth += 1,
                "}" => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                "mod" if t.get(i + 2).is_some_and(|x| x.text == "{") => {
                    if let Some(name) = next {
                        inline.push((name.to_owned(), depth));
                    }
                }
                "crate" if next == Some("::") && prev != Some("$") && prev != Some("::") => {
                    for h in heads(&t, i + 2) {
                        edge(&here, resolve(&h.text), h.line);
                    }
                }
                "super" if prev != Some("::") => {
                    let mut n = 0;
                    let mut j = i;
                    while t.get(j).is_some_and(|x| x.text == "super")
                        && t.get(j + 1).is_some_and(|x| x.text == "::")
                    {
                        n += 1;
                        j += 2;
                    }
                    // Only a climb to the crate root can leave the module.
                    if n > 0 && n == here.len() {
                        for h in heads(&t, j) {
                            edge(&here, resolve(&h.text), h.line);
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    g
}

/// The strongly connected components of more than one module (Tarjan).
fn circles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(edges) = s.g.get(v) {
            for w in edges.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Each circle with the edges inside it and where each is written.
fn describe(g: &Graph, circle: &[String]) -> String {
    let mut out = format!("circle between {}:\n", circle.join(", "));
    for from in circle {
        for (to, (file, line)) in g.get(from).into_iter().flatten() {
            if circle.contains(to) {
                out.push_str(&format!(
                    "    {from} -> {to}  (first at {}:{line})\n",
                    file.display()
                ));
            }
        }
    }
    out
}

/// The crates whose module graphs are checked: every folder under `crates/` and
/// `functions/` with a `src/`.
fn crate_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for parent in ["crates", "functions"] {
        for entry in fs::read_dir(repo().join(parent))
            .expect("readable")
            .flatten()
        {
            if entry.path().join("src").is_dir() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn no_import_circle_between_the_top_level_modules_of_any_crate() {
    let dirs = crate_dirs();
    assert!(
        dirs.iter().any(|d| d.ends_with("responder-core")),
        "found the crates: {dirs:?}"
    );
    let mut found = Vec::new();
    let mut edges = 0;
    for dir in &dirs {
        let files = rust_files(&dir.join("src"), &|_| false);
        let sources: Vec<Source<'_>> = files.iter().map(|(p, t)| Source::new(p, t)).collect();
        let g = graph(&sources);
        edges += g.values().map(BTreeMap::len).sum::<usize>();
        for circle in circles(&g) {
            found.push(format!(
                "{}: {}",
                dir.strip_prefix(repo()).unwrap_or(dir).display(),
                describe(&g, &circle)
            ));
        }
    }
    assert!(
        edges > 50,
        "the reader finds the crates' imports ({edges} edges)"
    );
    assert!(
        found.is_empty(),
        "import circles between top-level modules (move the type to the module it belongs to):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_over_the_line_limit_outside_tests() {
    let root = repo();
    let skip = |p: &Path| {
        p.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n == "tests" || n == "target" || n.starts_with('.')
        })
    };
    let files = rust_files(&root, &skip);
    assert!(
        files.len() > 50,
        "the walk finds the sources ({} files)",
        files.len()
    );
    let long: Vec<String> = files
        .iter()
        .map(|(p, t)| (p, t.lines().count()))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(p, n)| format!("    {} ({n} lines)", p.display()))
        .collect();
    assert!(
        long.is_empty(),
        "source files over {MAX_LINES} lines outside tests/ (split them along their seams):\n{}",
        long.join("\n")
    );
}

// ------------------------------------------------------------------ the reader itself

fn graph_of(files: &[(&str, &str)]) -> Graph {
    let sources: Vec<Source<'_>> = files
        .iter()
        .map(|(p, t)| Source::new(Path::new(p), t))
        .collect();
    graph(&sources)
}

fn edges(g: &Graph) -> Vec<String> {
    g.iter()
        .flat_map(|(f, to)| to.keys().map(move |t| format!("{f}->{t}")))
        .collect()
}

#[test]
fn the_reader_finds_every_form_of_path_and_ignores_text() {
    let g = graph_of(&[
        (
            "lib.rs",
            "pub mod a; pub mod b; pub use c::Thing;\nfn f() { a::x(); }",
        ),
        (
            "a.rs",
            "use crate::{b::X, self as me};\nfn f() { crate::c::y(); }\n",
        ),
        (
            "b/mod.rs",
            "// crate::d in a comment\nconst S: &str = \"crate::d\";\nconst R: &str = r#\"super::d\"#;\nfn f<'a>(x: &'a str) -> char { 'x' }\n",
        ),
        (
            "b/inner.rs",
            "use super::super::d::Z;\nuse super::Sibling;\n",
        ),
        (
            "c.rs",
            "pub struct Thing;\nmod tests { use super::*; }\nmacro_rules! m { () => { $crate::e::f() } }\n",
        ),
        ("d.rs", "fn f() -> crate::Thing { todo!() }\n"),
        ("e.rs", "pub(crate) fn f() {}\n"),
    ]);
    assert_eq!(edges(&g), ["a->b", "a->c", "b->d", "d->c"], "{g:?}");
}

#[test]
fn circles_are_found_and_named_with_their_lines() {
    let g = graph_of(&[
        ("lib.rs", "mod a; mod b; mod c; mod d;"),
        ("a.rs", "use crate::b::X;"),
        ("b.rs", "\nuse crate::c::Y;"),
        ("c/mod.rs", "use super::a::Z;"),
        ("d.rs", "use crate::a::Z;"),
    ]);
    let found = circles(&g);
    assert_eq!(found, [vec!["a", "b", "c"]]);
    let text = describe(&g, &found[0]);
    assert!(text.contains("b -> c  (first at b.rs:2)"), "{text}");
    assert!(text.contains("c -> a  (first at c/mod.rs:1)"), "{text}");
    assert!(!text.contains("d ->"), "{text}");
    assert!(circles(&graph_of(&[("a.rs", "use crate::b::X;"), ("b.rs", "")])).is_empty());
}
