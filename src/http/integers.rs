//! JSON numbers for integer fields: JSON Schema counts `1.0` as an integer, so the API does
//! too; a fraction or a value out of range is still refused.

use serde::{Deserialize, Deserializer, de::Error};

/// An integer written as `3` or `3.0`.
pub fn integer<'de, D: Deserializer<'de>, T: TryFrom<i64>>(deserializer: D) -> Result<T, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_i64(), number.as_f64()) {
        (Some(value), _) => Some(value),
        // In range of i64 and without a fraction: exact as an integer.
        (None, Some(value)) if value.fract() == 0.0 && value.abs() < 9.0e18 => Some(value as i64),
        _ => None,
    };
    whole
        .and_then(|value| T::try_from(value).ok())
        .ok_or_else(|| D::Error::custom(format!("{number} is not an integer in range")))
}

/// [`integer`] for an optional field (`null` or absent is `None`).
pub fn optional_integer<'de, D: Deserializer<'de>, T: TryFrom<i64>>(deserializer: D) -> Result<Option<T>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped<T: TryFrom<i64>>(#[serde(deserialize_with = "integer")] T);
    Option::<Wrapped<T>>::deserialize(deserializer).map(|wrapped| wrapped.map(|Wrapped(value)| value))
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::integer")]
        value: i16,
        #[serde(default, deserialize_with = "super::optional_integer")]
        parent: Option<i64>,
    }

    fn parse(text: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn whole_numbers_pass_in_either_form_and_fractions_or_overflow_do_not() {
        assert_eq!(parse(r#"{"value": 1}"#).map(|b| (b.value, b.parent)).ok(), Some((1, None)));
        assert_eq!(parse(r#"{"value": -1.0, "parent": 7.0}"#).map(|b| (b.value, b.parent)).ok(), Some((-1, Some(7))));
        assert_eq!(parse(r#"{"value": 0, "parent": null}"#).map(|b| b.parent).ok(), Some(None));
        assert!(parse(r#"{"value": 1.5}"#).is_err());
        assert!(parse(r#"{"value": 70000}"#).is_err(), "out of i16");
        assert!(parse(r#"{"value": "1"}"#).is_err());
        assert!(parse(r#"{"value": 1e300}"#).is_err());
    }
}
