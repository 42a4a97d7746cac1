//! The docs hold together: every link in README.md, SECURITY.md and docs/ points inside the
//! repository, at a file that exists and, with `#anchor`, at a heading that exists (GitHub's
//! heading anchors). A section cut by mistake breaks the links to it, and fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The anchors GitHub gives a markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

/// The lines outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |l| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

#[test]
fn every_link_in_the_docs_points_at_a_file_and_heading_that_exist_inside_the_repository() {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("SECURITY.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let link = regex_lite::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for line in prose(&text) {
            for target in link.captures_iter(line).map(|c| c[1].to_string()) {
                checked += 1;
                if target.contains("://") {
                    broken.push(format!("{name}: {target} is outside the repository"));
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let linked = match path {
                    "" => file.clone(),
                    p => file.parent().unwrap().join(p),
                };
                if !linked.exists() {
                    broken.push(format!("{name}: {target}: no such file"));
                    continue;
                }
                if !anchor.is_empty() {
                    let headings = anchors(&std::fs::read_to_string(&linked).unwrap());
                    if !headings.contains(anchor) {
                        broken.push(format!("{name}: {target}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 10, "only {checked} links found");
}

#[test]
fn heading_anchors_are_githubs() {
    let found = anchors(
        "## The HTTP API\n### What Rust buys: the headline figures\n## For people: the `nbfleet` command\n```\n# not a heading\n```\n",
    );
    let expected = [
        "the-http-api",
        "what-rust-buys-the-headline-figures",
        "for-people-the-nbfleet-command",
    ];
    assert_eq!(found, expected.map(String::from).into_iter().collect());
}
