//! The documentation says what the code does: every setting is in
//! `docs/configuration.md`, with the flag and variable `xmcp serve` takes.

use std::collections::BTreeSet;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Every key the configuration file accepts.
fn settings_keys() -> BTreeSet<String> {
    xmcp_server::config::Settings::keys()
        .iter()
        .map(|k| k.to_string())
        .collect()
}

/// The rows of the settings table: (TOML key, flag, variables).
fn documented() -> Vec<(String, String, String)> {
    repo_file("docs/configuration.md")
        .lines()
        .filter(|l| l.starts_with("| `") || l.starts_with("| config file"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let unquote = |c: &str| c.trim_matches('`').to_owned();
            (unquote(cells[1]), cells[2].to_owned(), cells[3].to_owned())
        })
        .collect()
}

#[test]
fn every_setting_is_documented_and_every_documented_setting_exists() {
    let keys = settings_keys();
    assert!(keys.len() > 50, "{keys:?}");
    let rows: BTreeSet<String> = documented()
        .into_iter()
        .map(|(k, _, _)| k.trim_start_matches("[[").trim_end_matches("]]").to_owned())
        .filter(|k| k != "config file")
        .collect();
    let missing: Vec<_> = keys.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "settings not in docs/configuration.md: {missing:?}"
    );
    let unknown: Vec<_> = rows.difference(&keys).collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md names settings that do not exist: {unknown:?}"
    );
}

/// Each row names the flag and the variable its setting declares: the
/// setting's own, or (for a secret's `*_file` key) the file's and then the
/// secret's.
#[test]
fn every_settings_row_names_what_its_setting_declares() {
    use clap::Args;
    let cmd = xmcp_server::config::Settings::augment_args(clap::Command::new("settings"));
    let arg = |id: &str| cmd.get_arguments().find(|a| a.get_id() == id);
    let mut rows = 0;
    for (key, flag, env) in documented() {
        if key == "config file" || key.starts_with("[[") {
            continue;
        }
        let a = arg(&key).unwrap_or_else(|| panic!("{key}: no flag declares it"));
        let long = a.get_long().unwrap();
        let var = a.get_env().unwrap().to_str().unwrap();
        assert_eq!(flag, format!("`--{long}`"), "{key}: the flag");
        // A secret's `*_file` row also names the secret's own variable;
        // no other row names a second one.
        let secret = key.strip_suffix("_file").and_then(arg);
        let expected = match secret {
            Some(s) => format!("`{var}` (or `{}`)", s.get_env().unwrap().to_str().unwrap()),
            None => format!("`{var}`"),
        };
        assert_eq!(env, expected, "{key}: the variables");
        rows += 1;
    }
    assert!(rows > 50, "{rows} rows");
}

#[test]
fn every_documented_flag_and_variable_is_one_xmcp_serve_takes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xmcp"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for (key, flag, env) in documented() {
        for name in flag.split('`').skip(1).step_by(2) {
            assert!(
                help.contains(&format!("{name} ")) || help.contains(&format!("{name}\n")),
                "{key}: `xmcp serve` has no flag {name}"
            );
        }
        // The variable itself; `_FILE` variants and `(or ...)` forms too.
        for var in env
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|v| v.starts_with("XMCP_") && !v.contains("..."))
        {
            assert!(
                help.contains(&format!("env: {var}")) || help.contains(&format!("env: {var}]")),
                "{key}: `xmcp serve` reads no variable {var}"
            );
        }
    }
}

/// `xmcp ARGS --help` succeeds: its help text.
fn help_of(path: &[&str]) -> Option<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xmcp"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// A command line of the docs (`xmcp admin usage --user ID --json`) is
/// one the binary takes: its subcommands exist and each flag is in their
/// help.
fn check_command(words: &[&str], whence: &str) {
    let mut path: Vec<&str> = Vec::new();
    let mut help = help_of(&[]).unwrap();
    for w in words {
        if !w.chars().all(|c| c.is_ascii_lowercase() || c == '-') || w.starts_with('-') {
            break;
        }
        let mut next = path.clone();
        next.push(w);
        match help_of(&next) {
            Some(h) => {
                path = next;
                help = h;
            }
            None => break,
        }
    }
    assert!(
        !path.is_empty() || words.first().is_some_and(|w| w.starts_with("--")),
        "{whence}: `xmcp {}` names no command",
        words.join(" ")
    );
    for w in words {
        let flag = w.trim_matches(|c| c == '[' || c == ']' || c == '`' || c == ',');
        let flag = flag.split('=').next().unwrap();
        if flag.starts_with("--") && flag.len() > 2 {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{whence}: `xmcp {}` takes no {flag}",
                path.join(" ")
            );
        }
    }
}

/// The words after `xmcp` in every command the docs show: in code spans,
/// in shell blocks (also after `cargo run ... --`), and in the `args` of
/// JSON client configurations that start `xmcp`.
fn commands_in(doc: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let take = |out: &mut Vec<Vec<String>>, line: &str| {
        let line = line.split(" #").next().unwrap();
        let line = line
            .rsplit_once("-p xmcp --")
            .map_or(line, |(_, rest)| rest);
        if let Some(rest) = line.trim().strip_prefix("xmcp ") {
            out.push(rest.split_whitespace().map(str::to_owned).collect());
        }
    };
    let mut block: Option<String> = None;
    for line in doc.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(lang.to_owned()),
            };
            continue;
        }
        match block.as_deref() {
            Some("sh") => take(&mut out, line),
            Some("json") => {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!("a JSON block of the docs does not parse ({e}): {line}")
                });
                let mut stack = vec![v];
                while let Some(v) = stack.pop() {
                    if v["command"] == "xmcp" {
                        let args: Vec<String> = v["args"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| a.as_str().unwrap().to_owned())
                            .collect();
                        out.push(args);
                    }
                    if let Some(o) = v.as_object() {
                        stack.extend(o.values().cloned());
                    }
                }
            }
            Some(_) => {}
            None => {
                for (i, span) in line.split('`').enumerate() {
                    if i % 2 == 1 {
                        take(&mut out, span);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_xmcp_command_the_docs_show_is_one_the_binary_takes() {
    let mut docs = vec![("README.md".to_owned(), repo_file("README.md"))];
    for entry in std::fs::read_dir(format!("{}/../../docs", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
        docs.push((name, std::fs::read_to_string(path).unwrap()));
    }
    let mut checked = 0;
    for (name, doc) in &docs {
        for words in commands_in(doc) {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            check_command(&words, name);
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked} commands found");
}

/// The README opens with the two commands, and CI runs the second as
/// written.
#[test]
fn the_readme_starts_with_the_demo_and_the_test_command() {
    let readme = repo_file("README.md");
    let first_block: Vec<&str> = readme
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim())
        .collect();
    assert_eq!(
        first_block,
        [
            "cargo run --release -p xmcp -- serve --demo",
            "cargo test --workspace"
        ]
    );
    assert!(repo_file(".ci/run").contains("\ncargo test --workspace 2>&1"));
    assert!(readme.lines().count() < 250);
}

/// Every relative link of the README and the docs leads to a file.
#[test]
fn every_relative_link_of_the_docs_leads_to_a_file() {
    let root = std::path::PathBuf::from(format!("{}/../..", env!("CARGO_MANIFEST_DIR")));
    let mut docs = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        docs.push(entry.unwrap().path());
    }
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap().split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            let file = doc.parent().unwrap().join(target);
            assert!(
                file.exists(),
                "{}: the link to {target} leads nowhere",
                doc.display()
            );
        }
    }
}
