//! Collects every problem found by a check so the user sees them all at once.

use anyhow::{Result, bail};

/// How many problems are kept and shown: a hostile input may have a million, and the
/// first ones say what is wrong as well as all of them would.
pub const SHOWN: usize = 50;

/// A titled list of problems; each entry says where, what is wrong, and the fix.
#[derive(Debug)]
pub struct Problems {
    title: String,
    items: Vec<String>,
    /// Problems past [`SHOWN`]: counted, not kept.
    more: usize,
}

impl Problems {
    pub fn new(title: impl Into<String>) -> Self {
        Problems {
            title: title.into(),
            items: Vec::new(),
            more: 0,
        }
    }

    pub fn push(&mut self, problem: impl Into<String>) {
        if self.items.len() < SHOWN {
            self.items.push(problem.into());
        } else {
            self.more += 1;
        }
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
        let mut list: Vec<String> = self.items.iter().map(|p| format!("  - {p}")).collect();
        if self.more > 0 {
            list.push(format!("  - and {} more", self.more));
        }
        bail!("{}:\n{}", self.title, list.join("\n"))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_flood_of_problems_shows_the_first_and_counts_the_rest() {
        let mut problems = super::Problems::new("bad");
        for n in 0..1_000_000 {
            problems.push(format!("part {n} is missing"));
        }
        let text = problems.into_result().unwrap_err().to_string();
        assert_eq!(text.lines().count(), 1 + super::SHOWN + 1);
        assert!(
            text.ends_with(&format!("and {} more", 1_000_000 - super::SHOWN)),
            "{text}"
        );
    }

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
