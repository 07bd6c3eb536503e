//! Pure rules over Dockerfile text: which build args it declares, which images it starts from.

/// An `ARG` instruction: its name and default, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// Logical instructions: comments dropped, `\` continuations joined, keyword upper-cased.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') && current.is_empty() {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let full = std::mem::take(&mut current);
        let full = full.trim();
        if full.is_empty() {
            continue;
        }
        let (keyword, rest) = full.split_once(char::is_whitespace).unwrap_or((full, ""));
        out.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
    }
    out
}

/// Splits on whitespace outside quotes, removing the quotes.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Every `ARG` declared anywhere in the Dockerfile (before or after `FROM`), first declaration wins.
#[must_use]
pub fn declared_args(text: &str) -> Vec<ArgDecl> {
    let mut args: Vec<ArgDecl> = Vec::new();
    for (keyword, rest) in instructions(text) {
        if keyword != "ARG" {
            continue;
        }
        for word in words(&rest) {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (word, None),
            };
            if !args.iter().any(|a| a.name == name) {
                args.push(ArgDecl {
                    name: name.clone(),
                    default,
                });
            }
        }
    }
    args
}

/// The image of every `FROM` (without `--platform` and `AS name`), in order.
#[must_use]
pub fn from_images(text: &str) -> Vec<String> {
    instructions(text)
        .into_iter()
        .filter(|(k, _)| k == "FROM")
        .filter_map(|(_, rest)| {
            rest.split_whitespace()
                .find(|w| !w.starts_with("--"))
                .map(str::to_string)
        })
        .collect()
}

/// One `LABEL` instruction setting every label; quoted so values are taken literally.
#[must_use]
pub fn label_instruction(labels: &[(String, String)]) -> String {
    let quote = |s: &str| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$");
        format!("\"{escaped}\"")
    };
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect();
    format!("LABEL {}\n", pairs.join(" \\\n      "))
}

/// A `COPY`/`ADD` from the build context (not `--from` another stage): its text, its
/// sources and its destination.
struct ContextCopy {
    text: String,
    sources: Vec<String>,
    dest: String,
}

fn context_copies(text: &str) -> Vec<ContextCopy> {
    instructions(text)
        .into_iter()
        .filter(|(keyword, _)| keyword == "COPY" || keyword == "ADD")
        .filter_map(|(keyword, rest)| {
            let args = words(&rest);
            let (flags, mut paths): (Vec<String>, Vec<String>) =
                args.into_iter().partition(|w| w.starts_with("--"));
            if flags.iter().any(|f| f.starts_with("--from")) {
                return None;
            }
            let dest = paths.pop()?;
            Some(ContextCopy {
                text: format!("{keyword} {rest}"),
                sources: paths,
                dest,
            })
        })
        .collect()
}

/// The directory a context copy's source names (`image/`, `./image/`: `image`), if it
/// names one by its trailing `/`.
fn source_dir(source: &str) -> Option<&str> {
    let dir = source.trim_start_matches("./").strip_suffix('/')?;
    let dir = dir.trim_end_matches('/');
    (!dir.is_empty() && dir != ".").then_some(dir)
}

/// The `COPY`/`ADD` instructions that copy from the build context other than as
/// `<dir>/ /`: a directory of the context whose entries are the image's paths, copied to
/// the root. Any other destination makes its directories (and their parents) at build
/// time, with the build's time, where BuildKit cannot rewrite it (before 0.13): two builds
/// then give other layers. Copies from another stage (`--from`) are not from the context.
#[must_use]
pub fn context_copies_off_root(text: &str) -> Vec<String> {
    context_copies(text)
        .into_iter()
        .filter(|c| c.dest != "/" || !c.sources.iter().all(|s| source_dir(s).is_some()))
        .map(|c| c.text)
        .collect()
}

/// The context's directories copied to the image's root (`COPY <dir>/ /`): a staged path
/// `<dir>/<path>` is `/<path>` in the image.
#[must_use]
pub fn context_dirs_in_image(text: &str) -> Vec<String> {
    context_copies(text)
        .into_iter()
        .filter(|c| c.dest == "/")
        .flat_map(|c| c.sources)
        .filter_map(|s| source_dir(&s).map(str::to_string))
        .collect()
}

/// Whether any step runs a command (and so makes the legacy builder start a container).
#[must_use]
pub fn runs_commands(text: &str) -> bool {
    instructions(text)
        .iter()
        .any(|(keyword, _)| keyword == "RUN")
}

/// The Dockerfile that is built: `stage_label`, if given, right after every `FROM` (so the
/// legacy builder's containers for `RUN` steps carry it and a crash's leftovers can be
/// found), and the image's labels at the end (one build step).
#[must_use]
pub fn staged(
    text: &str,
    stage_label: Option<(&str, &str)>,
    labels: &[(String, String)],
) -> String {
    let Some((key, value)) = stage_label else {
        return format!("{text}\n{}", label_instruction(labels));
    };
    let stage = label_instruction(&[(key.to_string(), value.to_string())]);
    let mut out = String::with_capacity(text.len() + 256);
    // Inside an instruction continued with `\`, and whether that instruction is a FROM.
    let (mut continued, mut in_from) = (false, false);
    for line in text.split_inclusive('\n') {
        out.push_str(line);
        let body = line.trim_end();
        let starts_from = !continued
            && body
                .trim_start()
                .get(..5)
                .is_some_and(|w| w.eq_ignore_ascii_case("FROM "));
        in_from = starts_from || (continued && in_from);
        continued = body.ends_with('\\') || (continued && body.trim_start().starts_with('#'));
        if in_from && !continued {
            if !line.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&stage);
            in_from = false;
        }
    }
    format!("{out}\n{}", label_instruction(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EGG: &str = "# syntax comment\nARG PREFIX=federatedai\nARG BUILDER_TAG\nARG BASE_TAG=latest\nFROM ${PREFIX}/storage-service-builder:${BUILDER_TAG} AS builder\n\nFROM --platform=linux/amd64 ${PREFIX}/base-image:${BASE_TAG}\narg PIP_INDEX_URL \\\n  EXTRA=\"x y\"\nRUN echo \\\n  # not an instruction\n  done\nARG PREFIX\n";

    #[test]
    fn args_are_found_with_defaults() {
        let args = declared_args(EGG);
        let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "PREFIX",
                "BUILDER_TAG",
                "BASE_TAG",
                "PIP_INDEX_URL",
                "EXTRA"
            ]
        );
        assert_eq!(args[0].default.as_deref(), Some("federatedai"));
        assert_eq!(args[1].default, None);
        assert_eq!(args[4].default.as_deref(), Some("x y"));
    }

    #[test]
    fn every_stage_is_labelled_right_after_its_from() {
        let text =
            "ARG A\nFROM scratch AS one\nCOPY a /a\nFROM \\\n  scratch\nRUN x \\\n  from here\n";
        let staged = staged(text, Some(("s", "1")), &[("k".into(), "v".into())]);
        assert_eq!(
            staged,
            "ARG A\nFROM scratch AS one\nLABEL \"s\"=\"1\"\nCOPY a /a\nFROM \\\n  scratch\nLABEL \"s\"=\"1\"\nRUN x \\\n  from here\n\nLABEL \"k\"=\"v\"\n"
        );
    }

    #[test]
    fn without_a_stage_label_only_the_labels_are_added() {
        let text = "FROM scratch\nCOPY a /a\n";
        assert!(!runs_commands(text));
        assert!(runs_commands("FROM x\nrun true\n"));
        assert_eq!(
            staged(text, None, &[("k".into(), "v".into())]),
            "FROM scratch\nCOPY a /a\n\nLABEL \"k\"=\"v\"\n"
        );
    }

    #[test]
    fn labels_are_one_literal_instruction() {
        let l = label_instruction(&[
            ("a.b".into(), "1.0".into()),
            ("c".into(), "x \"q\" $HOME \\".into()),
        ]);
        assert_eq!(
            l,
            "LABEL \"a.b\"=\"1.0\" \\\n      \"c\"=\"x \\\"q\\\" \\$HOME \\\\\"\n"
        );
        assert_eq!(instructions(&l).len(), 1);
    }

    #[test]
    fn context_copies_must_be_directories_copied_to_the_root() {
        let text = "FROM scratch AS b\nCOPY image/ /\nCOPY --chown=0:0 a/ ./b/ /\nCOPY --from=b /x /y\ncopy . /\nCOPY image /\nADD env.sh /data/\nCOPY a/ /data/\n";
        assert_eq!(
            context_copies_off_root(text),
            [
                "COPY . /",
                "COPY image /",
                "ADD env.sh /data/",
                "COPY a/ /data/"
            ]
        );
    }

    #[test]
    fn the_context_directories_copied_to_the_root_are_found() {
        let text = "FROM scratch AS b\nCOPY egg-service/ /\nCOPY ./egg-processor/ storage/ /\nCOPY --from=b /x/ /\nCOPY . /\nCOPY other/ /opt/\n";
        assert_eq!(
            context_dirs_in_image(text),
            ["egg-service", "egg-processor", "storage"]
        );
    }

    #[test]
    fn from_lines_skip_flags_and_stage_names() {
        assert_eq!(
            from_images(EGG),
            [
                "${PREFIX}/storage-service-builder:${BUILDER_TAG}",
                "${PREFIX}/base-image:${BASE_TAG}"
            ]
        );
        assert_eq!(from_images("FROM scratch\r\nCOPY . /\r\n"), ["scratch"]);
    }
}
