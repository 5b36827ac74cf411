//! Stat values: an `int` (i64) or a `float` (f64), written as a plain number on the wire.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A stat value or threshold: a plain number on the wire, an integer where it is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A 64-bit signed integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
}

impl Value {
    /// The value as f64 (exact for integers up to 2^53).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }

    /// The value as an exact integer, if it is one. A float counts when it has no fraction
    /// and its magnitude is at most 2^53: past that a float no longer tells which integer
    /// was written (`-9223372036854775809` reads as the same float as `i64::MIN`), so such a
    /// number is refused on both sides alike. Integers written as such cover all of i64.
    pub fn as_exact_int(self) -> Option<i64> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        match self {
            Value::Int(i) => Some(i),
            Value::Float(f) => (f.fract() == 0.0 && f.abs() <= EXACT).then_some(f as i64),
        }
    }

    /// The value as an `int` stat takes it: [`Reason::NotInteger`] for a fraction,
    /// [`Reason::IntegerOutOfRange`] for a whole number too large to be exact.
    pub fn to_int(self) -> Result<i64, crate::Reason> {
        match self.as_exact_int() {
            Some(i) => Ok(i),
            None if self.as_f64().fract() == 0.0 => Err(crate::Reason::IntegerOutOfRange),
            None => Err(crate::Reason::NotInteger),
        }
    }

    /// Whether the value is finite (integers always are).
    pub fn is_finite(self) -> bool {
        match self {
            Value::Int(_) => true,
            Value::Float(f) => f.is_finite(),
        }
    }

    /// Numeric comparison: exact between integers, as f64 otherwise.
    pub fn compare(self, other: Value) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(&b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }

    /// `self + other`, saturating as sums do: integers at the 64-bit bounds, floats at the
    /// largest finite value of their sign.
    pub fn plus(self, other: Value) -> Value {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_add(b)),
            (a, b) => {
                let s = a.as_f64() + b.as_f64();
                Value::Float(if s.is_finite() {
                    s
                } else {
                    f64::MAX.copysign(s)
                })
            }
        }
    }

    /// `self - other`, saturating as sums do: integers at the 64-bit bounds, floats at the
    /// largest finite value of their sign. What a repeatable's progress counts from its
    /// last earn.
    pub fn minus(self, other: Value) -> Value {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_sub(b)),
            (a, b) => {
                let d = a.as_f64() - b.as_f64();
                Value::Float(if d.is_finite() {
                    d
                } else {
                    f64::MAX.copysign(d)
                })
            }
        }
    }

    /// The absolute difference `|self - other|` as f64.
    pub fn distance(self, other: Value) -> f64 {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.abs_diff(b) as f64,
            (a, b) => (a.as_f64() - b.as_f64()).abs(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Int(i) => s.serialize_i64(i),
            Value::Float(f) => s.serialize_f64(f),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl Visitor<'_> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a finite number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if v.is_finite() {
            Ok(Value::Float(v))
        } else {
            Err(E::custom("a number must be finite"))
        }
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Value, E> {
        self.visit_f64(f64::from(v))
    }
}
