//! Integer fields as JSON Schema reads them: a number with no fractional part is an
//! integer, `3.0` as much as `3` (the OpenAPI document says `integer`, and clients and
//! API testers may write either). A fraction, or a number out of the field's range, is
//! refused as serde refuses a wrong type.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};

struct Integral<T>(PhantomData<T>);

impl<T: TryFrom<i128>> Visitor<'_> for Integral<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer in range")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(i128::from(v)).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(i128::from(v)).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // Within ±2^63 an f64 with no fraction is an exact integer.
        let exact = v.fract() == 0.0 && v.abs() < 2f64.powi(63);
        exact
            .then(|| T::try_from(v as i128).ok())
            .flatten()
            .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
    }
}

/// Deserializes an integer field (`#[serde(deserialize_with = "integral::exact")]`).
pub fn exact<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Integral(PhantomData))
}

struct OptionalIntegral<T>(PhantomData<T>);

impl<'de, T: TryFrom<i128>> Visitor<'de> for OptionalIntegral<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer in range, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        exact(d).map(Some)
    }
}

/// Deserializes an optional integer field (`#[serde(default, deserialize_with =
/// "integral::optional")]`).
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_option(OptionalIntegral(PhantomData))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        #[serde(deserialize_with = "super::exact")]
        points: u32,
        #[serde(default, deserialize_with = "super::optional")]
        ts: Option<i64>,
    }

    fn parse(json: &str) -> Result<Sample, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_number_without_fraction_is_an_integer_in_either_encoding() {
        let want = Sample {
            points: 10,
            ts: Some(-5),
        };
        assert_eq!(parse(r#"{"points": 10, "ts": -5}"#), Ok(want));
        let want = Sample {
            points: 10,
            ts: Some(-5),
        };
        assert_eq!(parse(r#"{"points": 10.0, "ts": -5.0}"#), Ok(want));
        assert_eq!(
            parse(r#"{"points": 1e3, "ts": null}"#),
            Ok(Sample {
                points: 1000,
                ts: None
            })
        );
        assert_eq!(parse(r#"{"points": 1}"#).unwrap().ts, None);
        let msgpack = crate::encode(&serde_json::json!({"points": 7.0, "ts": 3}));
        let decoded: Sample = crate::decode(&msgpack).unwrap();
        assert_eq!(decoded.points, 7);
    }

    #[test]
    fn a_fraction_or_a_number_out_of_range_is_refused() {
        for json in [
            r#"{"points": 1.5}"#,
            r#"{"points": -1}"#,
            r#"{"points": 4294967296}"#,
            r#"{"points": 1e300}"#,
            r#"{"points": "1"}"#,
            r#"{"points": 1, "ts": 0.5}"#,
        ] {
            assert!(parse(json).is_err(), "{json}");
        }
    }
}
