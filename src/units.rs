//! Units read from the command line and from run files, and written to results.json: one
//! duration parser, one percent parser and one serde form for durations (a leaf module:
//! every stage may use it, it uses nothing of storybench).

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Parses `30s`, `250ms`, `2m`, `1h30m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!(
            "{text:?} is not a valid duration (negative or not finite)"
        ));
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a valid duration: {e}"))
}

/// Parses a percentage into a fraction: `10%` and `10` are both 10 % (0.1). A bare number is
/// always a percent, so `0.5` means 0.5 %, never 50 %.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%').trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage (e.g. 10%)"))?;
    if !v.is_finite() || !(0.0..=1000.0).contains(&v) {
        return Err(format!("{text:?} must be between 0% and 1000%"));
    }
    Ok(v / 100.0)
}

/// A percentage that must stay within 0–100 % (a share of requests, of capacity, …).
pub fn parse_share(text: &str) -> Result<f64, String> {
    let v = parse_percent(text)?;
    if v > 1.0 {
        return Err(format!("{text:?} must be between 0% and 100%"));
    }
    Ok(v)
}

/// Fractions written as fractions in results.json, read from "10%" (or a fraction ≤ 1 from
/// a results file: JSON numbers are what this module itself wrote).
pub mod fraction {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Fraction(f64),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::Fraction(f) => Ok(f),
            Form::Text(t) => crate::units::parse_percent(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Durations in results.json and run files: written as fractional seconds, read from
/// seconds or from a human string (`"300ms"`, `"4s"`), so a TOML run file stays readable.
pub mod duration_secs {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Seconds(f64),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::Seconds(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
            Form::Seconds(s) => Err(serde::de::Error::custom(format!(
                "{s} is not a valid duration"
            ))),
            Form::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// The same for an optional duration.
pub mod duration_secs_opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    // Only the tests read an optional duration back: the CLI structs only serialize.
    #[cfg(test)]
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::duration_secs")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_read_one_way() {
        assert_eq!(parse_percent("10%").unwrap(), 0.1);
        assert_eq!(parse_percent("10").unwrap(), 0.1);
        assert_eq!(parse_percent(" 0.5 % ").unwrap(), 0.005);
        assert_eq!(parse_percent(" 2.5% ").unwrap(), 0.025);
        assert!(parse_percent("abc").is_err());
        assert!(parse_percent("-1").is_err());
        assert!(parse_share("150%").is_err());
        assert_eq!(parse_share("1%").unwrap(), 0.01);
    }

    #[test]
    fn durations_parse_and_round_trip() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("soon").is_err());

        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "duration_secs")]
            d: Duration,
            #[serde(with = "duration_secs_opt", default)]
            o: Option<Duration>,
        }
        let t = T {
            d: Duration::from_millis(300),
            o: Some(Duration::from_secs(2)),
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
        let from_toml: T = toml::from_str("d = \"300ms\"\no = 2").unwrap();
        assert_eq!(from_toml, t);
        let none: T = toml::from_str("d = 0.3").unwrap();
        assert_eq!(none.o, None);
    }
}
