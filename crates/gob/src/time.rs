//! `time.Time`'s gob payload (Go `time.Time.AppendBinary`, sent through `GobEncode`).
//!
//! Layout: version byte (1, or 2 when the zone offset has seconds), seconds since
//! 0001-01-01T00:00:00Z as big-endian i64, nanoseconds as big-endian u32, zone offset in
//! minutes as big-endian i16 (`-1` means UTC), and for version 2 one more byte of offset seconds.

use std::fmt;

/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch.
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// A decoded `time.Time` (its instant and zone offset; zone names do not travel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoTime {
    /// Seconds since the Unix epoch.
    pub unix_secs: i64,
    /// Nanoseconds within the second, 0..=999_999_999.
    pub nanos: u32,
    /// Zone offset east of UTC in seconds; `None` is Go's `time.UTC` location.
    pub offset_secs: Option<i32>,
}

/// Why bytes are not a valid `time.Time` payload, or a [`GoTime`] cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError(pub String);

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "time.Time payload: {}", self.0)
    }
}

impl std::error::Error for TimeError {}

impl GoTime {
    /// A UTC time.
    pub fn utc(unix_secs: i64, nanos: u32) -> Self {
        GoTime {
            unix_secs,
            nanos,
            offset_secs: None,
        }
    }

    /// The offset in whole minutes, as Go's v1 payload carries it (`-1` for UTC).
    pub fn offset_minutes(&self) -> i32 {
        self.offset_secs.map_or(-1, |s| s / 60)
    }

    /// Parses a payload as Go's `UnmarshalBinary` does.
    pub fn decode(b: &[u8]) -> Result<GoTime, TimeError> {
        let Some(&version) = b.first() else {
            return Err(TimeError("no data".into()));
        };
        let want = match version {
            1 => 15,
            2 => 16,
            v => return Err(TimeError(format!("unsupported version {v}"))),
        };
        if b.len() != want {
            return Err(TimeError(format!(
                "version {version} needs {want} bytes, got {}",
                b.len()
            )));
        }
        let mut sec = [0u8; 8];
        sec.copy_from_slice(&b[1..9]);
        let mut nsec = [0u8; 4];
        nsec.copy_from_slice(&b[9..13]);
        let sec = i64::from_be_bytes(sec);
        let nanos = u32::from_be_bytes(nsec);
        let off_min = i16::from_be_bytes([b[13], b[14]]);
        let mut offset = i32::from(off_min) * 60;
        if version == 2 {
            offset += i32::from(b[15] as i8);
        }
        // Go stores nanoseconds in 30 bits and does not range-check them; we do, so a value
        // we accept is always a real instant.
        if nanos > 999_999_999 {
            return Err(TimeError(format!("nanoseconds {nanos} out of range")));
        }
        Ok(GoTime {
            unix_secs: sec.wrapping_sub(UNIX_TO_INTERNAL),
            nanos,
            offset_secs: if offset == -60 { None } else { Some(offset) },
        })
    }

    /// The payload Go's `MarshalBinary` produces for this time.
    pub fn encode(&self) -> Result<Vec<u8>, TimeError> {
        if self.nanos > 999_999_999 {
            return Err(TimeError(format!(
                "nanoseconds {} out of range",
                self.nanos
            )));
        }
        let (version, off_min, off_sec) = match self.offset_secs {
            None => (1u8, -1i16, 0i8),
            Some(off) => {
                let rem = off % 60;
                let min = off / 60;
                if !(-32768..=32767).contains(&min) || min == -1 {
                    return Err(TimeError(format!("unexpected zone offset {off}s")));
                }
                (if rem != 0 { 2 } else { 1 }, min as i16, rem as i8)
            }
        };
        let sec = self
            .unix_secs
            .checked_add(UNIX_TO_INTERNAL)
            .ok_or_else(|| TimeError("seconds out of range".into()))?;
        let mut b = Vec::with_capacity(16);
        b.push(version);
        b.extend_from_slice(&sec.to_be_bytes());
        b.extend_from_slice(&self.nanos.to_be_bytes());
        b.extend_from_slice(&off_min.to_be_bytes());
        if version == 2 {
            b.push(off_sec as u8);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        for t in [
            GoTime::utc(0, 0),
            GoTime::utc(1_700_000_000, 123_456_789),
            GoTime {
                unix_secs: -5,
                nanos: 1,
                offset_secs: Some(-5 * 3600),
            },
            GoTime {
                unix_secs: 10,
                nanos: 0,
                offset_secs: Some(3600 + 30),
            },
        ] {
            let b = t.encode().unwrap();
            assert_eq!(GoTime::decode(&b).unwrap(), t);
        }
        assert!(GoTime::decode(&[]).is_err());
        assert!(GoTime::decode(&[3; 15]).is_err());
        assert!(GoTime::decode(&[1; 14]).is_err());
        assert!(
            GoTime {
                unix_secs: 0,
                nanos: 0,
                offset_secs: Some(-60)
            }
            .encode()
            .is_err()
        );
    }
}
