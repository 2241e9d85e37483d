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

/// A size in bytes as people write it: `1073741824`, `512m`, `1g`, `1GiB`,
/// `64k` (binary multiples, case-insensitive, an optional `b`/`ib`), at least
/// `min` and at most `max` bytes. The spelling of Docker's `--memory`, so a
/// limit reads the same for every executor.
pub fn size_bytes(what: &str, text: &str, min: u64, max: u64) -> Result<u64, BoundsError> {
    let error = || BoundsError {
        what: what.to_owned(),
        expected: format!("a size between {min} and {max} bytes (`512m`, `1g`)"),
        got: format!("`{text}`"),
    };
    let lower = text.trim().to_ascii_lowercase();
    let unit = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let digits_end = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let (digits, suffix) = unit.split_at(digits_end);
    let shift = match suffix {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(error()),
    };
    let value: u64 = digits.parse().map_err(|_| error())?;
    let value = value.checked_mul(1 << shift).ok_or_else(error)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(error())
    }
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

    #[test]
    fn sizes_read_as_docker_writes_them() {
        let max = 1 << 50;
        assert_eq!(size_bytes("memory", "512m", 1, max), Ok(512 << 20));
        assert_eq!(size_bytes("memory", "1G", 1, max), Ok(1 << 30));
        assert_eq!(size_bytes("memory", "1GiB", 1, max), Ok(1 << 30));
        assert_eq!(size_bytes("memory", "4096", 1, max), Ok(4096));
        assert_eq!(size_bytes("memory", "64kb", 1, max), Ok(64 << 10));
        for bad in ["", "m", "-1m", "1.5g", "12q", "99999999999999999999t", "0"] {
            let error = size_bytes("--memory", bad, 1, max).err();
            assert!(
                error
                    .as_ref()
                    .is_some_and(|e| e.to_string().starts_with("`--memory` must be a size")),
                "{bad}: {error:?}"
            );
        }
    }
}
