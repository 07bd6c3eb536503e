//! Collects every problem found by a check so the user sees them all at once.

use anyhow::{Result, bail};

/// A titled list of problems; each entry says where, what is wrong, and the fix.
#[derive(Debug)]
pub struct Problems {
    title: String,
    items: Vec<String>,
}

impl Problems {
    pub fn new(title: impl Into<String>) -> Self {
        Problems {
            title: title.into(),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, problem: impl Into<String>) {
        self.items.push(problem.into());
    }

    /// Runs `work` on every item at once, one thread each, and gives the results in
    /// order; every failure is reported under `title`, not only the first.
    pub fn each_at_once<I: Sync, T: Send>(
        title: &str,
        items: &[I],
        work: impl Fn(&I) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let work = &work;
        let results: Vec<Result<T>> = std::thread::scope(|scope| {
            let running: Vec<_> = items
                .iter()
                .map(|item| scope.spawn(move || work(item)))
                .collect();
            running
                .into_iter()
                .map(|t| t.join().expect("the work does not panic"))
                .collect()
        });
        let mut problems = Problems::new(title);
        let mut done = Vec::new();
        for result in results {
            match result {
                Ok(value) => done.push(value),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        problems.into_result().map(|()| done)
    }

    /// Ok when nothing was found, else one error listing every problem.
    pub fn into_result(self) -> Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = self.items.iter().map(|p| format!("  - {p}")).collect();
        bail!("{}:\n{}", self.title, list.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::Problems;

    #[test]
    fn work_at_once_keeps_order_and_reports_every_failure() {
        let doubled = Problems::each_at_once("t", &[1, 2, 3], |n| Ok(n * 2)).unwrap();
        assert_eq!(doubled, [2, 4, 6]);
        let error = Problems::each_at_once("nothing was written", &[1, 2, 3], |n| {
            if *n == 2 {
                Ok(())
            } else {
                anyhow::bail!("item {n} failed")
            }
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "nothing was written:\n  - item 1 failed\n  - item 3 failed"
        );
    }
}
