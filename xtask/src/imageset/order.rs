//! The one dependency order of the project: images after their parents, Maven projects
//! after the projects they need; bake stages and pushes follow it. Next in the order is
//! always the first item, in declaration order, whose dependencies are all placed (the
//! order the old script built in); each comes with its depth (1 for an item that depends
//! on nothing listed): the stage it can be built in.

/// An item with its place in the order.
#[derive(Debug, PartialEq, Eq)]
pub struct Ordered<'a, T> {
    pub item: &'a T,
    /// 1 + the greatest depth of its dependencies.
    pub depth: usize,
}

/// `items` in dependency order. `name` names an item, `deps` the names it comes after;
/// names of items not in `items` are left out. The items must not depend on each other
/// in a cycle (the image set is checked for cycles when it is read).
pub fn dependency_order<T, N, D>(items: &[T], name: N, deps: D) -> Vec<Ordered<'_, T>>
where
    N: Fn(&T) -> &str,
    D: Fn(&T) -> Vec<&str>,
{
    let known: Vec<&str> = items.iter().map(&name).collect();
    let mut depth_of: Vec<Option<usize>> = vec![None; items.len()];
    let mut out = Vec::with_capacity(items.len());
    while out.len() < items.len() {
        let next = (0..items.len())
            .filter(|i| depth_of[*i].is_none())
            .find_map(|i| {
                let mut depth = 1;
                for dep in deps(&items[i]) {
                    match known.iter().position(|n| *n == dep) {
                        None => {}
                        Some(j) => depth = depth.max(1 + depth_of[j]?),
                    }
                }
                Some((i, depth))
            })
            .expect("the items were checked for cycles");
        depth_of[next.0] = Some(next.1);
        out.push(Ordered {
            item: &items[next.0],
            depth: next.1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_comes_after_what_it_names_as_early_as_it_can() {
        let items = [
            ("egg", vec!["builder", "base"]),
            ("builder", vec!["base"]),
            ("base", vec![]),
            ("roll", vec!["elsewhere"]),
        ];
        let order = dependency_order(&items, |i| i.0, |i| i.1.clone());
        let named: Vec<(&str, usize)> = order.iter().map(|o| (o.item.0, o.depth)).collect();
        assert_eq!(
            named,
            [("base", 1), ("builder", 2), ("egg", 3), ("roll", 1)]
        );
    }
}
