//! Just enough of a Maven POM to find a module's jar: artifactId, version (with
//! `${...}` properties resolved through parents), finalName and `<modules>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What one `pom.xml` says, before property resolution.
#[derive(Clone, Debug, Default)]
struct RawPom {
    artifact_id: String,
    /// Its own `<groupId>`, else its parent's (Maven's inheritance).
    group_id: Option<String>,
    version: Option<String>,
    parent_version: Option<String>,
    parent_path: Option<String>,
    has_parent: bool,
    final_name: Option<String>,
    properties: BTreeMap<String, String>,
    modules: Vec<String>,
    /// `<systemPath>` of its dependencies: files it uses by path.
    system_paths: Vec<String>,
    /// artifactIds of its `<dependencies>`.
    dependencies: Vec<String>,
}

/// A module of a Maven project with its resolved coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub dir: PathBuf,
    /// Empty when neither the pom nor its `<parent>` names one.
    pub group_id: String,
    pub artifact_id: String,
    pub version: String,
    /// The jar's file name without `.jar`.
    pub final_name: String,
}

impl Module {
    #[must_use]
    pub fn target(&self) -> PathBuf {
        self.dir.join("target")
    }

    /// The jar the pom predicts.
    #[must_use]
    pub fn jar(&self) -> PathBuf {
        self.target().join(format!("{}.jar", self.final_name))
    }

    /// The jar Maven built: the predicted one when present, else the one jar in `target/`
    /// named after the artifactId (profiles, a parent's `finalName` and the like decide the
    /// name in ways this reader does not follow: Maven's result decides).
    pub fn built_jar(&self) -> Result<PathBuf> {
        let predicted = self.jar();
        if predicted.is_file() {
            return Ok(predicted);
        }
        let target = self.target();
        let all: Vec<String> = std::fs::read_dir(&target)
            .map(|entries| {
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| Path::new(n).extension().is_some_and(|e| e == "jar"))
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default();
        let ours: Vec<&String> = all
            .iter()
            .filter(|n| n.starts_with(&self.artifact_id))
            .filter(|n| {
                !["-sources.jar", "-javadoc.jar", "-tests.jar"]
                    .iter()
                    .any(|s| n.ends_with(s))
            })
            .collect();
        match ours.as_slice() {
            [one] => Ok(target.join(one)),
            _ => bail!(
                "Maven built no single jar for module {} in {}: expected {}.jar; it holds {}",
                self.artifact_id,
                target.display(),
                self.final_name,
                if all.is_empty() {
                    "no jar".to_string()
                } else {
                    all.join(", ")
                }
            ),
        }
    }
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(node: Option<roxmltree::Node<'_, '_>>) -> Option<String> {
    node.and_then(|n| n.text()).map(|t| t.trim().to_string())
}

fn parse(text: &str) -> Result<RawPom> {
    let doc = roxmltree::Document::parse(text)?;
    let project = doc.root_element();
    let parent = child(project, "parent");
    let mut pom = RawPom {
        artifact_id: text_of(child(project, "artifactId")).unwrap_or_default(),
        group_id: text_of(child(project, "groupId"))
            .or_else(|| parent.and_then(|p| text_of(child(p, "groupId")))),
        version: text_of(child(project, "version")),
        parent_version: parent.and_then(|p| text_of(child(p, "version"))),
        parent_path: parent.and_then(|p| text_of(child(p, "relativePath"))),
        has_parent: parent.is_some(),
        final_name: child(project, "build").and_then(|b| text_of(child(b, "finalName"))),
        ..Default::default()
    };
    if let Some(props) = child(project, "properties") {
        for p in props.children().filter(roxmltree::Node::is_element) {
            pom.properties.insert(
                p.tag_name().name().to_string(),
                p.text().unwrap_or("").trim().to_string(),
            );
        }
    }
    pom.system_paths = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "systemPath")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    if let Some(deps) = child(project, "dependencies") {
        pom.dependencies = deps
            .children()
            .filter(|d| d.is_element() && d.tag_name().name() == "dependency")
            .filter_map(|d| text_of(child(d, "artifactId")))
            .collect();
    }
    if let Some(modules) = child(project, "modules") {
        pom.modules = modules
            .children()
            .filter(roxmltree::Node::is_element)
            .filter_map(|m| m.text().map(|t| t.trim().to_string()))
            .collect();
    }
    Ok(pom)
}

fn read(dir: &Path) -> Result<RawPom> {
    let path = dir.join("pom.xml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("{} is not a readable POM", path.display()))
}

/// Properties visible in `dir`'s POM: its own over its parents' (by relativePath).
fn properties(dir: &Path, pom: &RawPom, depth: usize) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    if pom.has_parent && depth < 16 {
        let rel = pom
            .parent_path
            .clone()
            .unwrap_or_else(|| "../pom.xml".into());
        let rel = rel.strip_suffix("pom.xml").unwrap_or(&rel).to_string();
        let parent_dir = dir.join(rel);
        if let Ok(parent) = read(&parent_dir) {
            props = properties(&parent_dir, &parent, depth + 1);
        }
    }
    props.extend(pom.properties.clone());
    props
}

/// Substitutes `${name}` from `props` until nothing changes; unknown names are an error.
fn substitute(value: &str, props: &BTreeMap<String, String>) -> Result<String> {
    let mut out = value.to_string();
    for _ in 0..16 {
        let Some(start) = out.find("${") else {
            return Ok(out);
        };
        let Some(len) = out[start..].find('}') else {
            bail!("unterminated ${{ in {value:?}");
        };
        let name = &out[start + 2..start + len];
        let Some(v) = props.get(name) else {
            bail!("property {name} in {value:?} is not defined");
        };
        out = format!("{}{}{}", &out[..start], v, &out[start + len + 1..]);
    }
    bail!("properties in {value:?} refer to each other without end")
}

fn resolve(dir: &Path, pom: &RawPom) -> Result<Module> {
    let mut props = properties(dir, pom, 0);
    let raw_version = pom
        .version
        .clone()
        .or_else(|| pom.parent_version.clone())
        .with_context(|| format!("{}/pom.xml has no version", dir.display()))?;
    if let Some(pv) = &pom.parent_version {
        let pv = substitute(pv, &props)?;
        props.insert("project.parent.version".into(), pv.clone());
        props.insert("parent.version".into(), pv);
    }
    let version = substitute(&raw_version, &props)
        .with_context(|| format!("resolving the version in {}/pom.xml", dir.display()))?;
    props.insert("project.version".into(), version.clone());
    props.insert("version".into(), version.clone());
    props.insert("project.artifactId".into(), pom.artifact_id.clone());
    props.insert("artifactId".into(), pom.artifact_id.clone());
    let final_name = match &pom.final_name {
        Some(f) => substitute(f, &props)?,
        None => format!("{}-{}", pom.artifact_id, version),
    };
    let group_id = match &pom.group_id {
        Some(g) => substitute(g, &props)?,
        None => String::new(),
    };
    Ok(Module {
        dir: dir.to_path_buf(),
        group_id,
        artifact_id: pom.artifact_id.clone(),
        version,
        final_name,
    })
}

/// Every module of the reactor rooted at `dir`, the root first.
pub fn reactor(dir: &Path) -> Result<Vec<Module>> {
    walk(dir)?.iter().map(|(d, pom)| resolve(d, pom)).collect()
}

/// The directory and POM of every module of the reactor rooted at `dir`, the root first.
fn walk(dir: &Path) -> Result<Vec<(PathBuf, RawPom)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let pom = read(&d)?;
        for m in pom.modules.iter().rev() {
            pending.push(d.join(m));
        }
        out.push((d, pom));
    }
    Ok(out)
}

/// One module of a reactor, and what decides its build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactorModule {
    /// Relative to the reactor's directory (`.` for the root), as `mvn -pl` takes it.
    pub path: String,
    /// Its `pom.xml` and `src/` (sources and resources), relative to the FATE root.
    pub inputs: Vec<PathBuf>,
    /// It lists modules of its own: a change to it concerns all of them.
    pub aggregates: bool,
    /// Files outside the reactor that it uses by path (`<systemPath>`), e.g. another
    /// project's jar.
    pub uses: Vec<PathBuf>,
    pub artifact_id: String,
    /// artifactIds of its dependencies.
    pub depends_on: Vec<String>,
}

/// The modules at `changed` and every module that depends on them, directly or not
/// (paths relative to the reactor).
#[must_use]
pub fn with_dependents(modules: &[ReactorModule], changed: &[String]) -> Vec<String> {
    let mut out: Vec<String> = changed.to_vec();
    loop {
        let ids: Vec<&str> = modules
            .iter()
            .filter(|m| out.contains(&m.path))
            .map(|m| m.artifact_id.as_str())
            .collect();
        let more: Vec<String> = modules
            .iter()
            .filter(|m| !out.contains(&m.path))
            .filter(|m| m.depends_on.iter().any(|d| ids.contains(&d.as_str())))
            .map(|m| m.path.clone())
            .collect();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

/// The modules of the reactor at `dir`, the root first. Anything else in the project
/// (Python files, the C++ storage service) is not Maven's input.
pub fn reactor_modules(dir: &Path, root: &Path) -> Result<Vec<ReactorModule>> {
    let mut out = Vec::new();
    for (d, pom) in walk(dir)? {
        let inputs = [d.join("pom.xml"), d.join("src")]
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| p.strip_prefix(root).unwrap_or(&p).to_path_buf())
            .collect();
        let mut props = properties(&d, &pom, 0);
        for key in ["project.basedir", "basedir"] {
            props.insert(key.into(), d.display().to_string());
        }
        let mut uses = Vec::new();
        for raw in &pom.system_paths {
            let path = PathBuf::from(
                substitute(raw, &props)
                    .with_context(|| format!("a <systemPath> of {}/pom.xml", d.display()))?,
            );
            let path = lexical(&path);
            if !path.starts_with(lexical(dir)) {
                uses.push(path);
            }
        }
        let rel = d.strip_prefix(dir).unwrap_or(&d).display().to_string();
        out.push(ReactorModule {
            path: if rel.is_empty() { ".".into() } else { rel },
            inputs,
            aggregates: !pom.modules.is_empty(),
            uses,
            artifact_id: pom.artifact_id.clone(),
            depends_on: pom.dependencies.clone(),
        });
    }
    Ok(out)
}

/// `path` with `.` and `..` resolved by name (links are not followed).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The module of `dir`'s reactor whose artifactId is `artifact`.
pub fn find_module(dir: &Path, artifact: &str) -> Result<Module> {
    let modules = reactor(dir)?;
    let known: Vec<&str> = modules.iter().map(|m| m.artifact_id.as_str()).collect();
    modules
        .iter()
        .find(|m| m.artifact_id == artifact)
        .cloned()
        .with_context(|| {
            format!(
                "the Maven project {} has no module with artifactId {artifact} (it has: {})",
                dir.display(),
                known.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn versions_come_from_parent_properties() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "pom.xml",
            r#"<project xmlns="http://maven.apache.org/POM/4.0.0"><artifactId>fate-arch</artifactId><version>0.3</version>
            <properties><fate.version>0.3</fate.version></properties>
            <modules><module>core</module><module>eggroll</module></modules></project>"#,
        );
        write(
            d,
            "core/pom.xml",
            r"<project><parent><artifactId>fate-arch</artifactId><version>0.3</version></parent>
            <artifactId>fate-core</artifactId><version>${fate.version}</version></project>",
        );
        write(
            d,
            "eggroll/pom.xml",
            r"<project><parent><artifactId>fate-arch</artifactId><version>0.3</version></parent>
            <artifactId>eggroll</artifactId><modules><module>egg</module></modules></project>",
        );
        write(
            d,
            "eggroll/egg/pom.xml",
            r"<project><parent><artifactId>eggroll</artifactId><version>0.3</version></parent>
            <artifactId>fate-egg</artifactId><version>${project.parent.version}</version>
            <build><finalName>${project.artifactId}-${fate.version}</finalName></build></project>",
        );
        let ids: Vec<String> = reactor(d)
            .unwrap()
            .into_iter()
            .map(|m| m.artifact_id)
            .collect();
        assert_eq!(ids, ["fate-arch", "fate-core", "eggroll", "fate-egg"]);
        let egg = find_module(d, "fate-egg").unwrap();
        assert_eq!(egg.version, "0.3");
        assert_eq!(egg.jar(), d.join("eggroll/egg/target/fate-egg-0.3.jar"));
        let e = find_module(d, "fate-proxy").unwrap_err().to_string();
        assert!(e.contains("no module with artifactId fate-proxy (it has: fate-arch, fate-core, eggroll, fate-egg)"), "{e}");
    }

    #[test]
    fn undefined_property_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "pom.xml",
            "<project><artifactId>x</artifactId><version>${nope}</version></project>",
        );
        let e = format!("{:#}", reactor(tmp.path()).unwrap_err());
        assert!(e.contains("property nope"), "{e}");
    }

    #[test]
    fn reactor_modules_say_what_decides_each_build() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(
            root,
            "arch/pom.xml",
            "<project><artifactId>arch</artifactId><version>1</version><modules><module>core</module></modules></project>",
        );
        write(
            root,
            "arch/core/pom.xml",
            "<project><parent><version>1</version></parent><artifactId>core</artifactId></project>",
        );
        write(root, "arch/core/src/main/java/C.java", "class C {}");
        write(
            root,
            "serving/pom.xml",
            "<project><artifactId>serving</artifactId><version>1</version><properties><arch.version>1</arch.version></properties>\
             <dependencies><dependency><systemPath>${project.basedir}/../arch/core/target/core-${arch.version}.jar</systemPath></dependency>\
             <dependency><systemPath>${basedir}/lib/own.jar</systemPath></dependency></dependencies></project>",
        );
        let arch = reactor_modules(&root.join("arch"), root).unwrap();
        assert_eq!(
            arch,
            [
                ReactorModule {
                    path: ".".into(),
                    inputs: vec!["arch/pom.xml".into()],
                    aggregates: true,
                    uses: vec![],
                    artifact_id: "arch".into(),
                    depends_on: vec![],
                },
                ReactorModule {
                    path: "core".into(),
                    inputs: vec!["arch/core/pom.xml".into(), "arch/core/src".into()],
                    aggregates: false,
                    uses: vec![],
                    artifact_id: "core".into(),
                    depends_on: vec![],
                },
            ]
        );
        // A jar of another project, used by path, is an input; its own lib/ is not outside.
        let serving = reactor_modules(&root.join("serving"), root).unwrap();
        assert_eq!(serving[0].uses, [root.join("arch/core/target/core-1.jar")]);
        assert!(serving[0].depends_on.is_empty());
        let chain = |path: &str, id: &str, deps: &[&str]| ReactorModule {
            path: path.into(),
            inputs: vec![],
            aggregates: false,
            uses: vec![],
            artifact_id: id.into(),
            depends_on: deps.iter().map(|d| (*d).to_string()).collect(),
        };
        let modules = [
            chain("core", "core", &[]),
            chain("a", "a", &["core"]),
            chain("b", "b", &["a"]),
            chain("c", "c", &["core"]),
        ];
        assert_eq!(with_dependents(&modules, &["a".into()]), ["a", "b"]);
        assert_eq!(
            with_dependents(&modules, &["core".into()]),
            ["core", "a", "c", "b"]
        );
    }
}
