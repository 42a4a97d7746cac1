//! A phase's time budget. The sweep gives each of its phases one, so that a record that hangs
//! (an agent that never registers, an EC2 call retried against throttling) costs only what
//! is left of its phase, and the phases after it (probe, warn, stop) are always reached.

use nbfleet_core::{Error, Result};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Budget {
    until: Instant,
}

impl Budget {
    /// `length` from now.
    pub fn of(length: Duration) -> Budget {
        Budget {
            until: Instant::now() + length,
        }
    }

    pub fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// Runs one record's step within what is left of the budget. A step not begun, or cut
    /// off, is `Unavailable`: the record is left as it is, for the next round.
    pub async fn run<T>(&self, step: impl Future<Output = Result<T>>) -> Result<T> {
        let left = self.left();
        if left.is_zero() {
            return Err(Error::Unavailable(
                "not reached: the phase's time budget ran out".into(),
            ));
        }
        tokio::time::timeout(left, step).await.unwrap_or_else(|_| {
            Err(Error::Unavailable(format!(
                "cut off after {:.1} s: the phase's time budget ran out",
                left.as_secs_f64()
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_that_hangs_is_cut_off_and_the_next_is_not_begun() {
        let budget = Budget::of(Duration::from_millis(50));
        let hang = budget.run(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        let err = hang.await.unwrap_err().to_string();
        assert!(err.contains("cut off after"), "{err}");
        let next = budget.run(async { Ok(1) }).await.unwrap_err().to_string();
        assert!(next.contains("not reached"), "{next}");
    }

    #[tokio::test]
    async fn a_step_within_the_budget_answers_as_it_would() {
        let budget = Budget::of(Duration::from_secs(5));
        assert_eq!(budget.run(async { Ok(7) }).await.unwrap(), 7);
        let e = budget.run(async { Err::<(), _>(Error::Conflict("moved".into())) });
        assert!(matches!(e.await, Err(Error::Conflict(_))));
    }
}
