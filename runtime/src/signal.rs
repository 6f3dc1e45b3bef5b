//! Signal names and numbers as `runc kill` accepts them: `KILL`, `SIGKILL`, `9`, `SIGRTMIN+3`.

use nix::sys::signal::Signal;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignalError {
    #[error("invalid signal {0:?}: not a signal name (e.g. KILL, SIGTERM) or number 1-64")]
    Unknown(String),
}

/// A signal number to deliver with kill(2); real-time signals have no `nix::Signal` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalNumber(pub i32);

pub fn parse(text: &str) -> Result<SignalNumber, SignalError> {
    let unknown = || SignalError::Unknown(text.to_string());
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(SignalNumber(n))
        } else {
            Err(unknown())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rtmin = libc::SIGRTMIN();
    let rtmax = libc::SIGRTMAX();
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|r| r.parse::<i32>().ok())
                .ok_or_else(unknown)?
        };
        return if rtmin + off <= rtmax {
            Ok(SignalNumber(rtmin + off))
        } else {
            Err(unknown())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')
                .and_then(|r| r.parse::<i32>().ok())
                .ok_or_else(unknown)?
        };
        return if rtmax - off >= rtmin {
            Ok(SignalNumber(rtmax - off))
        } else {
            Err(unknown())
        };
    }
    let full = format!("SIG{name}");
    full.parse::<Signal>()
        .map(|s| SignalNumber(s as i32))
        .map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_sig_prefix_and_numbers_parse_alike() {
        assert_eq!(parse("KILL"), Ok(SignalNumber(9)));
        assert_eq!(parse("SIGKILL"), Ok(SignalNumber(9)));
        assert_eq!(parse("sigterm"), Ok(SignalNumber(15)));
        assert_eq!(parse("9"), Ok(SignalNumber(9)));
        assert_eq!(parse("SIGRTMIN+1"), Ok(SignalNumber(libc::SIGRTMIN() + 1)));
    }

    #[test]
    fn unknown_names_and_out_of_range_numbers_are_rejected() {
        for bad in ["SIGFOO", "0", "65", "-1", "", "RTMIN+99"] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
