//! The layering, checked against the source: imports point one way, from the entry points down
//! to the base, and the framework crates stay in their layers (ARCHITECTURE.md, "Invariants").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The parts of the tree, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Entry,
    App,
    Pages,
    Api,
    Edge,
    Services,
    Queue,
    Db,
    Media,
    Domain,
    Base,
}

use Part::*;

/// Which part a top-level module of the crate belongs to.
fn part_of_module(module: &str) -> Option<Part> {
    Some(match module {
        "main" | "cli" | "lifecycle" | "doctor" => Entry,
        "app" => App,
        "web" => Pages,
        "http" => Api,
        "edge" => Edge,
        "service" | "summaries" | "email" | "backup" | "jobs" => Services,
        "queue" => Queue,
        "db" => Db,
        "media" => Media,
        "domain" | "markdown" | "security" => Domain,
        "config" | "metrics" | "telemetry" | "error" | "tls" | "GIT_REVISION" | "LONG_VERSION" => Base,
        _ => return None,
    })
}

/// What each part may import besides itself.
fn may_use(from: Part, to: Part) -> bool {
    from == to
        || match from {
            Entry => true,
            App => !matches!(to, Entry),
            Pages | Api => matches!(to, Edge | Services | Domain | Base),
            Edge => matches!(to, Services | Domain | Base),
            Services => matches!(to, Db | Domain | Queue | Media | Base),
            Queue | Db | Media => matches!(to, Domain | Base),
            Domain => matches!(to, Base),
            Base => false,
        }
}

/// External crates a part may not name.
fn forbidden_crates(part: Part) -> &'static [&'static str] {
    match part {
        Entry | App => &[],
        Pages | Api | Edge => &["diesel", "diesel_async"],
        Services | Queue | Media | Domain | Base => &["actix_web", "askama", "askama_web", "diesel", "diesel_async"],
        Db => &["actix_web", "askama", "askama_web"],
    }
}

/// The part of a source file, from its path under `src/`.
fn part_of_file(relative: &Path) -> Option<Part> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    part_of_module(first.trim_end_matches(".rs"))
}

/// The top-level crate modules a source text names (`crate::x`, `crate::{x, y::z}`), outside
/// comments.
fn crate_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut name = String::new();
                for ch in group.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.extend(first_ident(&name));
                            name.clear();
                        }
                        _ if depth == 0 => name.push(ch),
                        _ => {}
                    }
                }
                found.extend(first_ident(&name));
            } else {
                found.extend(first_ident(rest));
            }
        }
    }
    found
}

fn first_ident(text: &str) -> Option<String> {
    let ident: String = text.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!ident.is_empty()).then_some(ident)
}

/// Whether a source text names the external crate `name` (as a path, outside comments).
fn names_crate(text: &str, name: &str) -> bool {
    let path = format!("{name}::");
    text.lines().filter(|l| !l.trim_start().starts_with("//")).any(|line| {
        line.match_indices(&path).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
        })
    })
}

/// Every layering break of one file, in words.
fn breaks(relative: &Path, text: &str) -> Vec<String> {
    let Some(part) = part_of_file(relative) else { return Vec::new() };
    let mut found = Vec::new();
    for module in crate_modules(text) {
        if let Some(target) = part_of_module(&module)
            && !may_use(part, target)
        {
            found.push(format!("{} ({part:?}) imports crate::{module} ({target:?})", relative.display()));
        }
    }
    for name in forbidden_crates(part) {
        if names_crate(text, name) {
            found.push(format!("{} ({part:?}) names {name}", relative.display()));
        }
    }
    found
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_point_down_and_frameworks_stay_in_their_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut classified = 0;
    let mut all = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        if part_of_file(relative).is_some() {
            classified += 1;
        } else {
            assert_eq!(relative, Path::new("lib.rs"), "every source file belongs to a part");
        }
        all.extend(breaks(relative, &std::fs::read_to_string(file).expect("read")));
    }
    assert!(classified > 60, "the scan found the tree ({classified} files)");
    assert!(all.is_empty(), "layering breaks:\n{}", all.join("\n"));
}

#[test]
fn the_scan_catches_an_upward_import_and_a_framework_in_the_wrong_layer() {
    let upward = "use crate::error::AppError;\nuse crate::{config::Config, app::HttpState};\n";
    assert_eq!(
        breaks(Path::new("service/posts.rs"), upward),
        vec!["service/posts.rs (Services) imports crate::app (App)".to_owned()]
    );
    let framework = "// diesel:: in a comment is fine\nfn f(r: actix_web::HttpRequest) {}\n";
    assert_eq!(breaks(Path::new("db/posts.rs"), framework), vec!["db/posts.rs (Db) names actix_web".to_owned()]);
    let sideways = "use crate::web::session::cookie;\n";
    assert_eq!(breaks(Path::new("http/auth.rs"), sideways).len(), 1, "the API never imports the pages");
    assert!(breaks(Path::new("web/mod.rs"), "use crate::edge::HttpState;\n").is_empty());
}
