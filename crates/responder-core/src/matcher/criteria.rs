//! Match criteria as playbooks write them (`match:` and `exclude:` blocks): what a
//! finding must look like. Lists mean "any of" everywhere; the fields of one criteria
//! block must all hold. [`super::CompiledCriteria`] compiles them and evaluates them.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, IntoDeserializer};
use serde::{Deserialize, Serialize};

use crate::severity::SeverityLevel;

/// A block of criteria; every field present must hold.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Finding type patterns; `*` matches any run of characters (`CryptoCurrency:EC2/*`, `*!DNS`).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<String>")]
    pub finding_types: Option<Vec<String>>,
    /// Severity: a level (`high`), a list of levels, or number comparisons (`{gte: 7}`).
    #[serde(default)]
    pub severity: Option<SeverityCriterion>,
    /// Account ids (quoted strings: a YAML number would lose leading zeros).
    #[serde(default, deserialize_with = "account_ids")]
    #[schemars(with = "OneOrMany<AccountId>")]
    pub accounts: Option<Vec<String>>,
    /// Regions, e.g. `us-east-1`.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<String>")]
    pub regions: Option<Vec<String>>,
    /// Resource types (`resource.resourceType`), e.g. `Instance`, `AccessKey`.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<String>")]
    pub resource_types: Option<Vec<String>>,
    /// Resource roles (`service.resourceRole`): `TARGET` or `ACTOR`.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<ResourceRole>")]
    pub resource_roles: Option<Vec<ResourceRole>>,
    /// Action types (`service.action.actionType`), e.g. `DNS_REQUEST`, `NETWORK_CONNECTION`.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<String>")]
    pub action_types: Option<Vec<String>>,
    /// Instance tags: `key` (present with any value) or `key=value`.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<String>")]
    pub tags: Option<Vec<String>>,
    /// Any finding field by its GuardDuty filter-criteria name, e.g.
    /// `service.action.networkConnectionAction.remotePortDetails.port: {eq: [22]}`.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldCondition>,
}

impl Criteria {
    /// True when no criterion is set.
    pub fn is_empty(&self) -> bool {
        self.finding_types.is_none()
            && self.severity.is_none()
            && self.accounts.is_none()
            && self.regions.is_none()
            && self.resource_types.is_none()
            && self.resource_roles.is_none()
            && self.action_types.is_none()
            && self.tags.is_none()
            && self.fields.is_empty()
    }
}

/// A twelve-digit AWS account id, quoted.
#[derive(JsonSchema)]
#[schemars(transparent)]
pub struct AccountId(
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    #[allow(dead_code)]
    String,
);

/// `service.resourceRole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ResourceRole {
    /// The resource is the target of the activity.
    Target,
    /// The resource performs the activity (an instance as the attacker).
    Actor,
}

impl ResourceRole {
    /// `TARGET` or `ACTOR`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceRole::Target => "TARGET",
            ResourceRole::Actor => "ACTOR",
        }
    }
}

/// Severity criterion: `high`, `[high, critical]`, or `{gte: 7, lt: 9}`.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(untagged)]
pub enum SeverityCriterion {
    /// Any of these console levels.
    Levels(Vec<SeverityLevel>),
    /// Number comparisons, all of which must hold.
    Range(NumberRange),
}

/// Number comparisons; every bound present must hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberRange {
    /// Greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
}

impl NumberRange {
    /// True when `n` satisfies every bound.
    pub fn contains(&self, n: f64) -> bool {
        self.gt.is_none_or(|b| n > b)
            && self.gte.is_none_or(|b| n >= b)
            && self.lt.is_none_or(|b| n < b)
            && self.lte.is_none_or(|b| n <= b)
    }

    /// True when no bound is set.
    pub fn is_empty(&self) -> bool {
        self.gt.is_none() && self.gte.is_none() && self.lt.is_none() && self.lte.is_none()
    }
}

impl<'de> Deserialize<'de> for SeverityCriterion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = SeverityCriterion;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a severity level (low, medium, high, critical), a list of levels, or {gt, gte, lt, lte}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                SeverityLevel::deserialize(v.into_deserializer())
                    .map(|l| SeverityCriterion::Levels(vec![l]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<SeverityLevel>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(SeverityCriterion::Levels)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                NumberRange::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(SeverityCriterion::Range)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A condition on one finding field. Every operator present must hold; a field with
/// several values (inside lists) holds when any value does, except `neq`, which holds
/// when no value equals any listed one (as in the GuardDuty console).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// Equal to any of these.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<Scalar>")]
    pub eq: Option<Vec<Scalar>>,
    /// Equal to none of these.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<Scalar>")]
    pub neq: Option<Vec<Scalar>>,
    /// Greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
    /// `true`: the field is present and not null; `false`: it is absent or null.
    pub exists: Option<bool>,
    /// Matches any of these `*` patterns (strings only).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany<String>")]
    pub glob: Option<Vec<String>>,
}

impl FieldCondition {
    /// True when no operator is set.
    pub fn is_empty(&self) -> bool {
        self.eq.is_none()
            && self.neq.is_none()
            && self.gt.is_none()
            && self.gte.is_none()
            && self.lt.is_none()
            && self.lte.is_none()
            && self.exists.is_none()
            && self.glob.is_none()
    }

    /// The numeric bounds as a range.
    pub fn range(&self) -> NumberRange {
        NumberRange {
            gt: self.gt,
            gte: self.gte,
            lt: self.lt,
            lte: self.lte,
        }
    }
}

/// A string, number or boolean to compare a field with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// A number; equal to a string field holding the same number.
    Number(f64),
    /// A string.
    String(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// Schema helper: one value or a list of them.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// Accepts `x` or `[x, y]`.
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> de::Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a value or a list of values")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
    }
    deserializer.deserialize_any(V(PhantomData)).map(Some)
}

/// Account ids must be quoted: `012345678901` as a YAML number is not that account.
fn account_ids<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let ids: Option<Vec<AccountIdString>> = one_or_many(deserializer)?;
    Ok(ids.map(|ids| ids.into_iter().map(|a| a.0).collect()))
}

struct AccountIdString(String);

impl<'de> Deserialize<'de> for AccountIdString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = AccountIdString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quoted twelve-digit account id")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(AccountIdString(v.to_owned()))
                } else {
                    Err(E::custom(format!("{v:?} is not a twelve-digit account id")))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "account id {v} must be a quoted string: a YAML number loses leading zeros"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "account id {v} must be a quoted string: a YAML number loses leading zeros"
                )))
            }
        }
        deserializer.deserialize_any(V)
    }
}
