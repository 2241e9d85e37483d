//! One place that turns numbers from users, files and clients into bounded
//! values: a timeout of `1e20`, `NaN` or `-1` is a clear error, never a panic
//! in `Duration::from_secs_f64` or a wait that never ends.

use std::time::Duration;

/// The longest timeout anything accepts (a day): longer is a typo or an attack,
/// and `Duration` arithmetic on it stays far from overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_hours(24);

/// A number outside the range its setting allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{what}` must be {expected}, not {got}")]
pub struct BoundsError {
    /// The setting, as the user wrote it (`timeout`, `--timeout`).
    pub what: String,
    pub expected: String,
    pub got: String,
}

/// A timeout in seconds: finite, above zero, at most [`MAX_TIMEOUT`].
pub fn timeout_secs(what: &str, seconds: f64) -> Result<Duration, BoundsError> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_TIMEOUT.as_secs_f64() {
        return Ok(Duration::from_secs_f64(seconds));
    }
    Err(BoundsError {
        what: what.to_owned(),
        expected: format!(
            "a number of seconds above 0 and at most {}",
            MAX_TIMEOUT.as_secs()
        ),
        got: seconds.to_string(),
    })
}

/// A count or size given by a user: at least `min`, at most `max`.
pub fn count(what: &str, value: u64, min: u64, max: u64) -> Result<u64, BoundsError> {
    if (min..=max).contains(&value) {
        return Ok(value);
    }
    Err(BoundsError {
        what: what.to_owned(),
        expected: format!("between {min} and {max}"),
        got: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_outside_the_range_are_errors_naming_the_setting() {
        for bad in [1e20, f64::NAN, f64::INFINITY, -1.0, 0.0, 86_401.0] {
            let error = timeout_secs("timeout", bad).err();
            assert!(
                error
                    .as_ref()
                    .is_some_and(|e| e.to_string().starts_with("`timeout` must be")),
                "{bad}: {error:?}"
            );
        }
        assert_eq!(timeout_secs("t", 1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(timeout_secs("t", 86_400.0), Ok(MAX_TIMEOUT));
    }

    #[test]
    fn counts_outside_the_range_are_errors() {
        assert_eq!(count("n", 5, 1, 10), Ok(5));
        assert!(count("--max-sessions", 0, 1, 10).is_err());
    }
}
