//! Which loopback network each end-to-end test takes: every literal tag
//! given to [`crate::test_net`], or to a helper whose first parameter is
//! `tag: u8` (`sim_rtp_horns`, `DemoProc::start`, a suite's own `sim` or
//! `Rig::start`), must be used once in the whole crate. Two suites with the
//! same tag share `127.TAG.P.0/24` whenever their process ids agree modulo
//! 200 (nextest runs every test in a process of its own), and their
//! simulators then answer each other's probes. The unit test below scans
//! `tests/*.rs` and `src/*.rs` and fails on a tag used twice.

use std::collections::BTreeMap;

use regex::Regex;

/// A helper that takes a network tag first: `name` (a free function) or
/// `Type::name` (a method), and the file it is visible in (`None`: every
/// file, as for the helpers of `src/`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Helper {
    call: String,
    only_in: Option<String>,
}

/// The helpers `text` (the file `name`) declares with `tag: u8` first.
fn helpers(name: &str, text: &str, shared: bool) -> Vec<Helper> {
    let decl = Regex::new(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?fn\s+(\w+)\s*\(\s*tag\s*:\s*u8")
        .expect("regex");
    let imp = Regex::new(r"^\s*impl(?:<[^>]*>)?\s+(\w+)").expect("regex");
    let mut out = Vec::new();
    let mut current_impl: Option<String> = None;
    for line in text.lines() {
        if let Some(c) = imp.captures(line) {
            current_impl = Some(c[1].to_string());
            continue;
        }
        if !line.starts_with([' ', '\t', '}']) && !line.trim().is_empty() {
            // Back at the top level: no longer inside an `impl` block.
            current_impl = None;
        }
        let Some(c) = decl.captures(line) else {
            continue;
        };
        let method = !c[1].is_empty();
        let call = match (&current_impl, method) {
            (Some(t), true) => format!("{t}::{}", &c[2]),
            _ => c[2].to_string(),
        };
        out.push(Helper {
            call,
            only_in: (!shared).then(|| name.to_string()),
        });
    }
    out
}

/// Every literal tag in `files` (name, text): tag → where (`file:line`).
/// Files whose name starts with `src/` share their helpers with all files.
pub fn tags(files: &[(String, String)]) -> BTreeMap<u8, Vec<String>> {
    let mut all: Vec<Helper> = Vec::new();
    for (name, text) in files {
        all.extend(helpers(name, text, name.starts_with("src/")));
    }
    let mut out: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    for (name, text) in files {
        let visible: Vec<&Helper> = all
            .iter()
            .filter(|h| h.only_in.as_deref().is_none_or(|f| f == name))
            .collect();
        for h in visible {
            // A free function must not be reached as a method or a path
            // (`Relay::start(1, 5)` is not `start(1, 5)`).
            let lead = if h.call.contains("::") {
                r"\b"
            } else {
                r"(?:^|[^\w:.])"
            };
            let re = Regex::new(&format!(
                r"{lead}{}\(\s*(\d+)\s*[,)]",
                regex::escape(&h.call)
            ))
            .expect("regex");
            for (i, line) in text.lines().enumerate() {
                for c in re.captures_iter(line) {
                    let tag: u8 = c[1].parse().unwrap_or(u8::MAX);
                    out.entry(tag)
                        .or_default()
                        .push(format!("{name}:{}", i + 1));
                }
            }
        }
    }
    out
}

/// The tags used more than once, with where.
pub fn duplicates(tags: &BTreeMap<u8, Vec<String>>) -> Vec<(u8, Vec<String>)> {
    tags.iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(t, at)| (*t, at.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (String, String) {
        (name.to_string(), text.to_string())
    }

    /// The crate's own test files, as the scan sees them (this file left
    /// out: its examples below are not tests).
    fn crate_files() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["src", "tests"] {
            let mut names: Vec<_> = std::fs::read_dir(root.join(dir))
                .expect("read_dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .filter(|p| !p.ends_with("nets.rs"))
                .collect();
            names.sort();
            for p in names {
                let text = std::fs::read_to_string(&p).expect("read");
                let name = format!(
                    "{dir}/{}",
                    p.file_name().unwrap_or_default().to_string_lossy()
                );
                files.push((name, text));
            }
        }
        files
    }

    /// A tag reached directly, through a shared helper, a shared method or
    /// a suite's own method is seen; two uses of one tag are reported
    /// with both places; a path call to another type's `start` is not a
    /// tag.
    #[test]
    fn a_tag_used_twice_is_reported_wherever_it_is_given() {
        let lib = file(
            "src/lib.rs",
            "pub fn test_net(tag: u8) -> Ipv4Addr {}\n\
             pub fn sim_rtp_horns(tag: u8, n: usize) {}\n\
             impl DemoProc {\n    pub fn start(tag: u8) -> DemoProc {}\n}\n",
        );
        let a = file(
            "tests/a.rs",
            "fn t() {\n    let base = test_net(61);\n    let d = DemoProc::start(81);\n}\n",
        );
        let b = file(
            "tests/b.rs",
            "fn t() {\n    let (s, c, _) = sim_rtp_horns(61, 3, &p);\n    let r = Relay::start(1, 5);\n}\n\
             impl Rig {\n    fn start(tag: u8, n: usize) -> Rig {}\n}\n\
             fn u() {\n    let rig = Rig::start(81, 2);\n}\n",
        );
        let c = file(
            "tests/c.rs",
            "fn t() {\n    let rig = Rig::start(81, 2);\n}\n",
        );
        let tags = tags(&[lib, a, b, c]);
        assert_eq!(
            tags.keys().copied().collect::<Vec<_>>(),
            [61, 81],
            "{tags:?}"
        );
        let dups = duplicates(&tags);
        assert_eq!(
            dups,
            [
                (
                    61,
                    vec!["tests/a.rs:2".to_string(), "tests/b.rs:2".to_string()]
                ),
                (
                    81,
                    vec!["tests/a.rs:3".to_string(), "tests/b.rs:9".to_string()]
                ),
            ]
        );
    }

    /// No two suites of this crate share a network.
    #[test]
    fn every_test_network_tag_is_used_once() {
        let tags = tags(&crate_files());
        // The scan finds the suites' tags (a scan that finds nothing would
        // pass for the wrong reason): health's, and ones given through
        // helpers.
        for t in [31, 61, 81, 91, 97] {
            assert!(tags.contains_key(&t), "tag {t} not found: {tags:?}");
        }
        let dups = duplicates(&tags);
        let free: Vec<u8> = (2..=99).filter(|t| !tags.contains_key(t)).collect();
        assert!(
            dups.is_empty(),
            "test_net tags used more than once: {dups:?}; free tags: {free:?}"
        );
    }
}
