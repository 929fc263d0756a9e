//! The layering rule, checked: dependencies point one way, `api` -> services and domain ->
//! `store`, so no module outside `src/api/` may reach into `crate::api` (see
//! docs/architecture.md). Only the modules that assemble the application may: `app.rs` builds
//! the router from the state, `main.rs` and `lib.rs` wire and export, and `cli.rs` prints the
//! OpenAPI document. The check reads the sources, so a violation fails with its file and line.

use std::path::{Path, PathBuf};

/// Files allowed to import `crate::api`, relative to `src/`.
const ASSEMBLERS: [&str; 3] = ["app.rs", "main.rs", "lib.rs"];

/// One path into `api` a module outside it may use: `switchyard openapi` prints the document.
const CLI_EXCEPTION: (&str, &str) = ("cli.rs", "crate::api::openapi_json");

/// Every `.rs` file under `dir`, sorted so the report is stable.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Whether `text` has `needle` as a whole path (not `crate::api_x`).
fn mentions_path(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let next = text[at + needle.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The lines (1-based) of `source` that reach `crate::api`: a path `crate::api...` anywhere, or
/// `api` named inside `use crate::{...}` (which may span lines). Comment lines are skipped.
fn api_imports(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    // Inside a `use crate::{` group: how deep in its braces.
    let mut group_depth = 0usize;
    for (index, line) in source.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut hit = mentions_path(code, "crate::api") || mentions_path(code, "switchyard::api");
        let mut rest = code;
        if group_depth == 0 {
            match code.find("crate::{") {
                Some(at) => {
                    rest = &code[at + "crate::{".len()..];
                    group_depth = 1;
                }
                None => rest = "",
            }
        }
        // Walk the group's items: `api` at the group's top level is `crate::api`.
        let mut word = String::new();
        let mut word_starts_item = group_depth == 1;
        for c in rest.chars().chain(std::iter::once(' ')) {
            if group_depth == 0 {
                break;
            }
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if word == "api" && group_depth == 1 && word_starts_item {
                hit = true;
            }
            if !word.is_empty() {
                word_starts_item = false;
            }
            word.clear();
            match c {
                '{' => group_depth += 1,
                '}' => group_depth -= 1,
                ',' => word_starts_item = group_depth == 1,
                _ => {}
            }
        }
        if hit {
            found.push((index + 1, line.trim().to_string()));
        }
    }
    found
}

/// Whether the line is the one use of `api` that `file` (relative to `src/`) is allowed.
fn allowed(file: &str, line: &str) -> bool {
    let (exception_file, exception_path) = CLI_EXCEPTION;
    if file != exception_file || !mentions_path(line, exception_path) {
        return false;
    }
    // Nothing else from `api` on the same line.
    let without = line.replace(exception_path, "");
    api_imports(&without).is_empty()
}

#[test]
fn no_module_outside_api_imports_crate_api() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for path in rust_files(&src) {
        let relative = path.strip_prefix(&src).expect("under src/");
        let file = relative.to_string_lossy().replace('\\', "/");
        if file.starts_with("api/") || ASSEMBLERS.contains(&file.as_str()) {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a readable source file");
        for (line, text) in api_imports(&source) {
            if !allowed(&file, &text) {
                violations.push(format!("src/{file}:{line}: {text}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the domain must not import crate::api (api -> services/domain -> store; see \
         docs/architecture.md). Return the module's own error enum, mapped to HTTP in \
         src/api/error.rs, and take a struct of the dependencies it uses instead of AppState:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layering_check_finds_every_form_of_import() {
    let source = "\
use crate::api::AppState;
// use crate::api::commented_out;
use crate::{
    config::Config,
    api::{self, error::ApiError},
};
use crate::{Application, store};
impl FromRef<crate::api::AppState> for Metrics {}
use crate::apis::Unrelated;
use crate::{store::api, hub};
";
    let lines: Vec<usize> = api_imports(source).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, [1, 5, 8]);
    assert!(allowed("cli.rs", "crate::api::openapi_json().as_bytes(),"));
    assert!(!allowed("cli.rs", "use crate::api::auth::Scope;"));
    assert!(!allowed("ingest.rs", "crate::api::openapi_json()"));
}
