//! The paths of the FATE root an image is made of, with its ancestors': what a commit
//! must touch to change the image (so the commit its revision label names is the last
//! that touched one of them, whatever commit the tree is at when it is built).

use std::collections::BTreeSet;
use std::path::Path;

use super::{ContextPart, IMAGE_SET_FILE, Image, ImageSet};

impl ImageSet {
    /// The paths (relative to the FATE root) `image` and its ancestors are built from:
    /// this file, their Dockerfiles (of the chosen mirror profile), the sources their
    /// contexts copy, their trees' skeletons and copies, and the Maven projects of their
    /// jars with the projects those are built beside.
    #[must_use]
    pub fn input_paths(&self, image: &Image, china: bool) -> Vec<String> {
        let mut paths = BTreeSet::from([IMAGE_SET_FILE.to_string()]);
        let mut pending = vec![image];
        let mut seen = BTreeSet::new();
        while let Some(image) = pending.pop() {
            if !seen.insert(image.name.as_str()) {
                continue;
            }
            paths.insert(image.dockerfile_for(china).to_string());
            for part in &image.context {
                match part {
                    ContextPart::Source(c) => {
                        paths.insert(c.from.clone());
                    }
                    ContextPart::Tree { tree, .. } => self.tree_inputs(tree, &mut paths),
                }
            }
            pending.extend(image.parents.iter().filter_map(|p| self.image(p)));
        }
        paths.into_iter().collect()
    }

    fn tree_inputs(&self, name: &str, paths: &mut BTreeSet<String>) {
        let Some(tree) = self.tree(name) else { return };
        if tree.skeleton {
            let skeleton = Path::new(&self.packaging.skeletons).join(&tree.name);
            paths.insert(skeleton.display().to_string());
        }
        paths.extend(tree.copy.iter().map(|c| c.from.clone()));
        let mut projects: Vec<&str> = tree.java.iter().map(|j| j.maven.as_str()).collect();
        while let Some(project) = projects.pop() {
            if paths.insert(project.to_string())
                && let Some(maven) = self.maven_project(project)
            {
                projects.extend(maven.after.iter().map(String::as_str));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::imageset::tests::sample_set;

    #[test]
    fn an_image_is_made_of_its_own_inputs_and_its_ancestors() {
        let set = sample_set();
        let egg = set.image("egg").unwrap();
        assert_eq!(
            set.input_paths(egg, false),
            [
                "arch",
                "arch/eggroll/storage-service-cxx",
                "docker/base/Dockerfile",
                "docker/builder/Dockerfile",
                "docker/images.toml",
                "docker/modules/egg/Dockerfile",
                "example-tree-dir/egg",
                "example-tree-dir/python",
                "federatedml",
                "requirements.txt",
            ]
        );
        let base = set.image("base-image").unwrap();
        assert_eq!(
            set.input_paths(base, true),
            [
                "docker/base/Dockerfile-cn",
                "docker/images.toml",
                "requirements.txt"
            ]
        );
    }
}
