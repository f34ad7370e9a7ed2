//! The DynamoDB item codec: attribute values, the times items carry, the reader that
//! names the item and field of every error, and update expressions.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use responder_core::timestamp;
use serde::Serializer;
use serde_json::Value;

use super::{Item, LedgerError};

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Milliseconds since the epoch (0 before it).
pub(super) fn epoch_ms(t: SystemTime) -> u64 {
    u64::try_from(timestamp::millis_of(t)).unwrap_or(0)
}

/// The time `ms` milliseconds after the epoch (none when the clock cannot hold it).
pub(super) fn from_ms(ms: u64) -> Option<SystemTime> {
    i64::try_from(ms).ok().and_then(timestamp::system_time)
}

/// `now + retention` in epoch seconds, for the TTL attribute.
pub(super) fn expires(now: SystemTime, retention: Duration) -> u64 {
    (epoch_ms(now) / 1000).saturating_add(retention.as_secs())
}

/// RFC 3339 UTC with milliseconds, fixed width (`2026-11-29T09:20:12.345Z`), so that
/// the text sorts as the time does (`recorded_at`, the index's sort key, and the
/// deny entries' sort keys); before the epoch reads as the epoch.
pub fn rfc3339_ms(t: SystemTime) -> String {
    timestamp::format_millis(i64::try_from(epoch_ms(t)).unwrap_or(i64::MAX))
}

pub(super) fn ser_time<S: Serializer>(t: &SystemTime, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&rfc3339_ms(*t))
}

pub(super) fn ser_opt_time<S: Serializer>(
    t: &Option<SystemTime>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser.serialize_str(&rfc3339_ms(*t)),
        None => ser.serialize_none(),
    }
}

/// Reads typed attributes off an item, naming the item and field in every error.
pub(super) struct Reader<'a> {
    pub(super) item: &'a Item,
}

impl Reader<'_> {
    fn where_(&self) -> String {
        let part = |k: &str| match self.item.get(k) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => "?".to_owned(),
        };
        format!("{} / {}", part("pk"), part("sk"))
    }

    pub(super) fn corrupt(&self, field: &str, problem: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt {
            key: self.where_(),
            field: field.to_owned(),
            problem: problem.into(),
        }
    }

    pub(super) fn opt_s(&self, field: &str) -> Result<Option<&str>, LedgerError> {
        match self.item.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(_) => Err(self.corrupt(field, "is not a string")),
        }
    }

    pub(super) fn s(&self, field: &str) -> Result<&str, LedgerError> {
        self.opt_s(field)?
            .ok_or_else(|| self.corrupt(field, "is missing"))
    }

    pub(super) fn opt_u64(&self, field: &str) -> Result<Option<u64>, LedgerError> {
        match self.item.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(field, format!("is not a whole number: {v}"))),
            Some(_) => Err(self.corrupt(field, "is not a number")),
        }
    }

    pub(super) fn u64(&self, field: &str) -> Result<u64, LedgerError> {
        self.opt_u64(field)?
            .ok_or_else(|| self.corrupt(field, "is missing"))
    }

    pub(super) fn u32(&self, field: &str) -> Result<u32, LedgerError> {
        let v = self.u64(field)?;
        u32::try_from(v).map_err(|_| self.corrupt(field, format!("{v} is too large")))
    }

    pub(super) fn bool(&self, field: &str) -> Result<bool, LedgerError> {
        match self.item.get(field) {
            Some(AttributeValue::Bool(b)) => Ok(*b),
            None => Err(self.corrupt(field, "is missing")),
            Some(_) => Err(self.corrupt(field, "is not a boolean")),
        }
    }

    pub(super) fn strings(&self, field: &str) -> Result<Vec<String>, LedgerError> {
        match self.item.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::S(s) => Ok(s.clone()),
                    _ => Err(self.corrupt(field, "holds a value that is not a string")),
                })
                .collect(),
            Some(AttributeValue::Ss(list)) => Ok(list.clone()),
            Some(_) => Err(self.corrupt(field, "is not a list")),
        }
    }

    pub(super) fn json(&self, field: &str) -> Result<Value, LedgerError> {
        match self.opt_s(field)? {
            None => Ok(Value::Null),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| self.corrupt(field, format!("is not JSON: {e}"))),
        }
    }

    pub(super) fn opt_time(&self, field: &str) -> Result<Option<SystemTime>, LedgerError> {
        match self.opt_u64(field)? {
            None => Ok(None),
            Some(ms) => from_ms(ms)
                .map(Some)
                .ok_or_else(|| self.corrupt(field, format!("{ms} ms is out of range"))),
        }
    }

    pub(super) fn time(&self, field: &str) -> Result<SystemTime, LedgerError> {
        self.opt_time(field)?
            .ok_or_else(|| self.corrupt(field, "is missing"))
    }
}

/// `SET #a = :a, ...` over `attrs`, with names and values filled in.
pub(super) struct Expr {
    pub(super) sets: Vec<String>,
    pub(super) names: HashMap<String, String>,
    pub(super) values: Item,
}

impl Expr {
    pub(super) fn new() -> Expr {
        Expr {
            sets: Vec::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    pub(super) fn set(&mut self, attrs: Vec<(&'static str, AttributeValue)>) {
        for (name, value) in attrs {
            self.names.insert(format!("#{name}"), name.to_owned());
            self.values.insert(format!(":{name}"), value);
            self.sets.push(format!("#{name} = :{name}"));
        }
    }

    pub(super) fn name(&mut self, name: &str) -> &mut Expr {
        self.names.insert(format!("#{name}"), name.to_owned());
        self
    }

    pub(super) fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Expr {
        self.values.insert(placeholder.to_owned(), value);
        self
    }
}

/// Parses an RFC 3339 timestamp (what [`rfc3339_ms`] writes, and what `responder
/// expire --now` takes: any offset, `Z` or `±HH:MM`; the grammar of
/// [`responder_core::timestamp`]); `None` for anything else or before 1970.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let ms = timestamp::parse_millis(text)?;
    from_ms(u64::try_from(ms).ok()?)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::super::budget_hour;
    use super::*;

    #[test]
    fn rfc3339_parses_what_it_writes() {
        for ms in [0u64, 951_827_696_789, 1_798_536_012_005] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse_rfc3339(&rfc3339_ms(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-29T09:20:12Z"),
            Some(UNIX_EPOCH + Duration::from_millis(1_795_944_012_000))
        );
        for bad in [
            "",
            "2026-11-29",
            "2026-02-30T00:00:00Z",
            "2026-11-29T09:20:12",
            "1969-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
            "2026-11-29T25:00:00Z",
            "2026-11-29T09:20:12.Z",
            "2026-04-31T00:00:00Z",
            "2100-02-29T00:00:00Z",
            " 2026-11-29T09:20:12Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        // One grammar with the finding's timestamps: offsets and fractions read as
        // `responder_core::timestamp` reads them; leap days only in leap years.
        let t = Some(UNIX_EPOCH + Duration::from_millis(1_795_944_012_345));
        assert_eq!(parse_rfc3339("2026-11-29T11:20:12.345+02:00"), t);
        assert_eq!(parse_rfc3339("2026-11-29t09:20:12.3459z"), t);
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn rfc3339_is_fixed_width_utc() {
        assert_eq!(rfc3339_ms(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z, a leap day in a century leap year.
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339_ms(t), "2000-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_798_536_012_005);
        assert_eq!(rfc3339_ms(t), "2026-12-29T09:20:12.005Z");
        assert_eq!(budget_hour(t), "2026-12-29T09");
        // Before the epoch reads as the epoch rather than panicking.
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(rfc3339_ms(before), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn text_order_is_time_order() {
        // Offsets whose texts would sort wrongly with trimmed fractions or unpadded
        // fields; listed in time order.
        let offsets = [
            0u64,
            5,
            50,
            999,
            1000,
            9_000,
            61_000,
            3_600_000,
            86_400_000 * 400,
        ];
        let texts: Vec<String> = offsets
            .iter()
            .map(|ms| rfc3339_ms(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)))
            .collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
        assert!(texts.iter().all(|t| t.len() == 24), "{texts:?}");
    }
}
