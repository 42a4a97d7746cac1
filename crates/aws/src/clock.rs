//! The real clock, for production and the local stack. Tests inject their own `Clock`.

use jiff::Timestamp;
use nbfleet_core::ports::Clock;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
