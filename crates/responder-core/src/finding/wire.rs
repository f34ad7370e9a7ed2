//! The finding's wire shape, decoded in one pass straight from the bytes (or from a
//! `Value`, through the same visitors), without building a DOM.
//!
//! Every visitor here is tolerant in the way [`super`] documents: a member of an
//! unexpected type reads as absent (and is skipped, whatever its size), numbers given
//! as strings are read, unknown members are skipped. A member given twice keeps its
//! last value, as `serde_json::Value` does, so the typed view and [`super::Finding::raw`]
//! never disagree.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// A leaf member, kept with its JSON type so each reader applies today's rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Scalar {
    /// Absent, null, or an object or array (skipped).
    #[default]
    Other,
    /// A string, possibly empty.
    Str(String),
    /// A number.
    Num(Number),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// A non-empty string, or a number rendered as `Value` renders it.
    pub(crate) fn text(self) -> Option<String> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            Scalar::Num(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A string, possibly empty; nothing else.
    pub(crate) fn into_string(self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A number, or a string holding one (`"5"`, `"-1"`).
    pub(crate) fn number(&self) -> Option<f64> {
        match self {
            Scalar::Num(n) => n.as_f64(),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `true`, or a string that says true in any case.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Scalar::Bool(b) => *b,
            Scalar::Str(s) => s.trim().eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Num(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Number::from_f64(v).map_or(Scalar::Other, Scalar::Num))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                drain_map(map).map(|()| Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                drain_seq(seq).map(|()| Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// An object key, borrowed from the input when it holds no escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An object read member by member: `member` takes the value of each key it knows and
/// must skip (`IgnoredAny`) the others.
pub(crate) trait Object<'de>: Default {
    /// Reads the value of `key` from `map` into `self`.
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;

    /// Whether this object chooses the casing of its own keys under
    /// [`KeyCase::Adaptive`] (a finding does, by its first key).
    fn adaptive() -> bool {
        false
    }

    /// Each key as the input spells it, before [`Object::member`]; `pascal` says how
    /// the keys of this object are read.
    fn saw_key(&mut self, _key: &str, _pascal: bool) {}
}

/// How object keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCase {
    /// As given (camelCase findings, and any `Value`).
    Camel,
    /// Rewritten as [`crate::casing`] rewrites PascalCase member names (first letter
    /// lower-cased; names with other than ASCII letters and digits left alone). None of
    /// that module's special renames is a member read here.
    Pascal,
    /// Each finding object (and everything in it) as its first key suggests; the
    /// caller checks the guess against the counts ([`Wire::read_as_pascal`]).
    Adaptive,
}

thread_local! {
    /// The [`KeyCase`] in force (see [`KeysRead`]).
    static CASE: Cell<KeyCase> = const { Cell::new(KeyCase::Camel) };
    /// Under [`KeyCase::Adaptive`], the guess of the finding being read.
    static GUESS: Cell<bool> = const { Cell::new(false) };
}

/// While alive, keys are read as its [`KeyCase`]; the previous one is back after.
pub(crate) struct KeysRead(KeyCase, bool);

impl KeysRead {
    /// Reads keys as `case` until the guard is dropped.
    pub(crate) fn as_case(case: KeyCase) -> KeysRead {
        let old = KeysRead(CASE.with(Cell::get), GUESS.with(Cell::get));
        CASE.with(|c| c.set(case));
        old
    }
}

impl Drop for KeysRead {
    fn drop(&mut self) {
        CASE.with(|c| c.set(self.0));
        GUESS.with(|g| g.set(self.1));
    }
}

fn read_object<'de, T: Object<'de>, A: MapAccess<'de>>(mut map: A) -> Result<T, A::Error> {
    let mut out = T::default();
    let case = CASE.with(Cell::get);
    let adaptive = case == KeyCase::Adaptive && T::adaptive();
    // Restores the outer guess when this finding object is done (or fails).
    let _restore = adaptive.then(|| KeysRead::as_case(KeyCase::Adaptive));
    let mut pascal = match case {
        KeyCase::Camel => false,
        KeyCase::Pascal => true,
        KeyCase::Adaptive => GUESS.with(Cell::get),
    };
    let mut first = true;
    let mut camel = [0u8; 64];
    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
        let bytes = key.as_bytes();
        if adaptive && first {
            pascal = bytes.first().is_some_and(u8::is_ascii_uppercase);
            GUESS.with(|g| g.set(pascal));
        }
        first = false;
        out.saw_key(&key, pascal);
        if pascal
            && bytes.len() <= camel.len()
            && bytes.first().is_some_and(u8::is_ascii_uppercase)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
        {
            let camel = &mut camel[..bytes.len()];
            camel.copy_from_slice(bytes);
            camel[0] = camel[0].to_ascii_lowercase();
            if let Ok(camel) = std::str::from_utf8(camel) {
                out.member(camel, &mut map)?;
                continue;
            }
        }
        out.member(&key, &mut map)?;
    }
    Ok(out)
}

/// An object of type `T`, or `None` when the value is of any other type.
pub(crate) struct Obj<T>(pub(crate) Option<T>);

impl<'de, T: Object<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Object<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                read_object(map).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                drain_seq(seq).map(|()| Obj(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_none<E>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Obj<T>, D::Error> {
                Obj::deserialize(d)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An array whose elements are objects of type `T` (`None` for any other element, so
/// indexes stay those of the input); empty when the value is not an array.
pub(crate) struct List<T>(pub(crate) Vec<Option<T>>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Object<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Object<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(Obj(item)) = seq.next_element::<Obj<T>>()? {
                    out.push(item);
                }
                Ok(List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
                drain_map(map).map(|()| List::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<List<T>, E> {
                Ok(List::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<List<T>, E> {
                Ok(List::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<List<T>, E> {
                Ok(List::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<List<T>, E> {
                Ok(List::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<List<T>, E> {
                Ok(List::default())
            }
            fn visit_unit<E>(self) -> Result<List<T>, E> {
                Ok(List::default())
            }
            fn visit_none<E>(self) -> Result<List<T>, E> {
                Ok(List::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<List<T>, D::Error> {
                List::deserialize(d)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `privateIpAddresses` / `ipv6Addresses`: strings (kept even when empty), or objects
/// whose `privateIpAddress` is read; anything else is left out.
#[derive(Default)]
pub(crate) struct Addresses(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for Addresses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Objects need their member: read the element as an object or a scalar.
        struct Element(Option<String>);
        impl<'de> Deserialize<'de> for Element {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Element;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("any JSON value")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
                        let p: PrivateIp = read_object(map)?;
                        Ok(Element(p.private_ip_address.text()))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                        drain_seq(seq).map(|()| Element(None))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Element, E> {
                        Ok(Element(Some(v.to_owned())))
                    }
                    fn visit_string<E>(self, v: String) -> Result<Element, E> {
                        Ok(Element(Some(v)))
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<Element, E> {
                        Ok(Element(None))
                    }
                    fn visit_i64<E>(self, _: i64) -> Result<Element, E> {
                        Ok(Element(None))
                    }
                    fn visit_u64<E>(self, _: u64) -> Result<Element, E> {
                        Ok(Element(None))
                    }
                    fn visit_f64<E>(self, _: f64) -> Result<Element, E> {
                        Ok(Element(None))
                    }
                    fn visit_unit<E>(self) -> Result<Element, E> {
                        Ok(Element(None))
                    }
                    fn visit_none<E>(self) -> Result<Element, E> {
                        Ok(Element(None))
                    }
                    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
                        Element::deserialize(d)
                    }
                }
                d.deserialize_any(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Addresses;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Addresses, A::Error> {
                let mut out = Vec::new();
                while let Some(Element(item)) = seq.next_element::<Element>()? {
                    out.extend(item);
                }
                Ok(Addresses(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Addresses, A::Error> {
                drain_map(map).map(|()| Addresses::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Addresses, E> {
                Ok(Addresses::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Addresses, E> {
                Ok(Addresses::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Addresses, E> {
                Ok(Addresses::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Addresses, E> {
                Ok(Addresses::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Addresses, E> {
                Ok(Addresses::default())
            }
            fn visit_unit<E>(self) -> Result<Addresses, E> {
                Ok(Addresses::default())
            }
            fn visit_none<E>(self) -> Result<Addresses, E> {
                Ok(Addresses::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Addresses, D::Error> {
                Addresses::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

/// How a member of a wire object is read: a value type with its `Deserialize`, an
/// optional object through [`Obj`] (`None` when the value is of another type).
pub(crate) trait Member<'de>: Sized {
    fn read<A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error>;
}

macro_rules! member_by_deserialize {
    ($($ty:ty),*) => {
        $(impl<'de> Member<'de> for $ty {
            fn read<A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
                map.next_value()
            }
        })*
    };
}

member_by_deserialize!(Scalar, Addresses);

impl<'de, T: Object<'de>> Member<'de> for List<T> {
    fn read<A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        map.next_value()
    }
}

impl<'de, T: Object<'de>> Member<'de> for Option<T> {
    fn read<A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(map.next_value::<Obj<T>>()?.0)
    }
}

/// Declares a wire object: each `"key" => field: Type` is read as [`Member`] of
/// `Type`, every other key is skipped.
macro_rules! object {
    ($(#[$doc:meta])* $name:ident { $($key:literal => $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Default)]
        pub(crate) struct $name {
            $(pub(crate) $field: $ty,)*
        }
        impl<'de> Object<'de> for $name {
            fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                match key {
                    $($key => self.$field = <$ty as Member<'de>>::read(map)?,)*
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(())
            }
        }
    };
}

object!(
    /// An element of `privateIpAddresses`.
    PrivateIp { "privateIpAddress" => private_ip_address: Scalar }
);

/// A finding object, or an EventBridge envelope around one (`detail`). It also counts
/// the casing of its own keys, for [`crate::casing::is_pascal_case`]'s rule.
#[derive(Default)]
pub(crate) struct Wire {
    pub(crate) id: Option<Value>,
    pub(crate) type_: Option<Value>,
    pub(crate) arn: Option<Value>,
    pub(crate) severity: Option<Value>,
    pub(crate) account_id: Option<Value>,
    pub(crate) region: Option<Value>,
    pub(crate) partition: Scalar,
    pub(crate) created_at: Scalar,
    pub(crate) updated_at: Scalar,
    pub(crate) title: Scalar,
    pub(crate) associated_attack_sequence_arn: Scalar,
    pub(crate) resource: Option<Resource>,
    pub(crate) service: Option<Service>,
    /// `detail`, when it is an object (then this is an envelope).
    pub(crate) detail: Option<Box<Wire>>,
    /// The envelope's `source`, as given.
    pub(crate) source: Option<Value>,
    /// The envelope's `detail-type`, as given.
    pub(crate) detail_type: Option<Value>,
    /// Whether `Findings` holds an array (a get-findings answer).
    pub(crate) findings_upper: bool,
    /// Whether `findings` holds an array.
    pub(crate) findings_lower: bool,
    /// Keys starting with an upper-case ASCII letter.
    pub(crate) pascal_keys: usize,
    /// Keys starting with a lower-case ASCII letter.
    pub(crate) camel_keys: usize,
    /// Whether the keys were read as PascalCase ([`KeyCase`]).
    pub(crate) read_as_pascal: bool,
}

impl Wire {
    /// Whether this is a `{"Findings": [...]}` document.
    pub(crate) fn is_findings_document(&self) -> bool {
        self.findings_upper || self.findings_lower
    }

    /// The same rule as [`crate::casing::is_pascal_case`].
    pub(crate) fn is_pascal_case(&self) -> bool {
        self.pascal_keys > self.camel_keys
    }
}

/// Whether a value is an array, skipping it either way.
struct IsArray(bool);

impl<'de> Deserialize<'de> for IsArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsArray;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<IsArray, A::Error> {
                drain_seq(seq).map(|()| IsArray(true))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<IsArray, A::Error> {
                drain_map(map).map(|()| IsArray(false))
            }
            fn visit_bool<E>(self, _: bool) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_unit<E>(self) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Object<'de> for Wire {
    fn adaptive() -> bool {
        true
    }

    fn saw_key(&mut self, key: &str, pascal: bool) {
        self.read_as_pascal = pascal;
        match key.as_bytes().first() {
            Some(c) if c.is_ascii_uppercase() => self.pascal_keys += 1,
            Some(c) if c.is_ascii_lowercase() => self.camel_keys += 1,
            _ => {}
        }
    }

    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "id" => self.id = Some(map.next_value()?),
            "type" => self.type_ = Some(map.next_value()?),
            "arn" => self.arn = Some(map.next_value()?),
            "severity" => self.severity = Some(map.next_value()?),
            "accountId" => self.account_id = Some(map.next_value()?),
            "region" => self.region = Some(map.next_value()?),
            "partition" => self.partition = map.next_value()?,
            "createdAt" => self.created_at = map.next_value()?,
            "updatedAt" => self.updated_at = map.next_value()?,
            "title" => self.title = map.next_value()?,
            "associatedAttackSequenceArn" => {
                self.associated_attack_sequence_arn = map.next_value()?;
            }
            "resource" => self.resource = map.next_value::<Obj<Resource>>()?.0,
            "service" => self.service = map.next_value::<Obj<Service>>()?.0,
            "detail" => self.detail = map.next_value::<Obj<Wire>>()?.0.map(Box::new),
            "source" => self.source = Some(map.next_value()?),
            "detail-type" => self.detail_type = Some(map.next_value()?),
            "Findings" => self.findings_upper = map.next_value::<IsArray>()?.0,
            "findings" => self.findings_lower = map.next_value::<IsArray>()?.0,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// `resource`.
#[derive(Default)]
pub(crate) struct Resource {
    pub(crate) resource_type: Option<Value>,
    pub(crate) instance_details: Option<InstanceDetails>,
    pub(crate) principal_id: Scalar,
}

impl<'de> Object<'de> for Resource {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "resourceType" => self.resource_type = Some(map.next_value()?),
            "instanceDetails" => {
                self.instance_details = map.next_value::<Obj<InstanceDetails>>()?.0;
            }
            "accessKeyDetails" => {
                self.principal_id = map
                    .next_value::<Obj<AccessKey>>()?
                    .0
                    .map(|a| a.principal_id)
                    .unwrap_or_default();
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

object!(
    /// `resource.accessKeyDetails`.
    AccessKey { "principalId" => principal_id: Scalar }
);

/// `resource.instanceDetails`.
#[derive(Default)]
pub(crate) struct InstanceDetails {
    pub(crate) instance_id: Option<Value>,
    pub(crate) instance_type: Scalar,
    pub(crate) image_id: Scalar,
    pub(crate) availability_zone: Scalar,
    pub(crate) instance_state: Scalar,
    pub(crate) platform: Scalar,
    pub(crate) launch_time: Scalar,
    pub(crate) outpost_arn: Scalar,
    pub(crate) iam_instance_profile: Option<Profile>,
    pub(crate) network_interfaces: List<Eni>,
    pub(crate) tags: List<TagWire>,
}

impl<'de> Object<'de> for InstanceDetails {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "instanceId" => self.instance_id = Some(map.next_value()?),
            "instanceType" => self.instance_type = map.next_value()?,
            "imageId" => self.image_id = map.next_value()?,
            "availabilityZone" => self.availability_zone = map.next_value()?,
            "instanceState" => self.instance_state = map.next_value()?,
            "platform" => self.platform = map.next_value()?,
            "launchTime" => self.launch_time = map.next_value()?,
            "outpostArn" => self.outpost_arn = map.next_value()?,
            "iamInstanceProfile" => {
                self.iam_instance_profile = map.next_value::<Obj<Profile>>()?.0;
            }
            "networkInterfaces" => self.network_interfaces = map.next_value()?,
            "tags" => self.tags = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

object!(
    /// `iamInstanceProfile`.
    Profile { "arn" => arn: Scalar, "id" => id: Scalar }
);

object!(
    /// One element of `networkInterfaces`.
    Eni {
        "networkInterfaceId" => network_interface_id: Scalar,
        "vpcId" => vpc_id: Scalar,
        "subnetId" => subnet_id: Scalar,
        "securityGroups" => security_groups: List<GroupWire>,
        "privateIpAddress" => private_ip_address: Scalar,
        "privateIpAddresses" => private_ip_addresses: Addresses,
        "publicIp" => public_ip: Scalar,
        "ipv6Addresses" => ipv6_addresses: Addresses,
    }
);

object!(
    /// One element of `securityGroups`.
    GroupWire { "groupId" => group_id: Scalar, "groupName" => group_name: Scalar }
);

object!(
    /// One element of `tags`.
    TagWire { "key" => key: Scalar, "value" => value: Scalar }
);

/// `service`.
#[derive(Default)]
pub(crate) struct Service {
    pub(crate) resource_role: Scalar,
    pub(crate) count: Scalar,
    pub(crate) archived: Scalar,
    pub(crate) event_first_seen: Scalar,
    pub(crate) event_last_seen: Scalar,
    pub(crate) detector_id: Scalar,
    pub(crate) trigger_finding_id: Scalar,
    pub(crate) action: Option<Action>,
    pub(crate) additional_info: Option<AdditionalInfo>,
}

impl<'de> Object<'de> for Service {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "resourceRole" => self.resource_role = map.next_value()?,
            "count" => self.count = map.next_value()?,
            "archived" => self.archived = map.next_value()?,
            "eventFirstSeen" => self.event_first_seen = map.next_value()?,
            "eventLastSeen" => self.event_last_seen = map.next_value()?,
            "detectorId" => self.detector_id = map.next_value()?,
            "ebsVolumeScanDetails" => {
                self.trigger_finding_id = map
                    .next_value::<Obj<ScanDetails>>()?
                    .0
                    .map(|d| d.trigger_finding_id)
                    .unwrap_or_default();
            }
            "action" => self.action = map.next_value::<Obj<Action>>()?.0,
            "additionalInfo" => {
                self.additional_info = map.next_value::<Obj<AdditionalInfo>>()?.0;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

object!(
    /// `service.ebsVolumeScanDetails`.
    ScanDetails { "triggerFindingId" => trigger_finding_id: Scalar }
);

object!(
    /// `service.additionalInfo`, and the object its `value` string may hold.
    AdditionalInfo { "sample" => sample: Scalar, "value" => value: Scalar }
);

/// `service.action`.
#[derive(Default)]
pub(crate) struct Action {
    pub(crate) action_type: Scalar,
    pub(crate) network_connection: Option<Connection>,
    pub(crate) dns_request: Option<Dns>,
    pub(crate) aws_api_call: Option<ApiCall>,
    pub(crate) port_probe: Option<List<Probe2>>,
    pub(crate) kubernetes_api_call: Option<Remote>,
    pub(crate) rds_login_attempt: Option<Remote>,
}

impl<'de> Object<'de> for Action {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "actionType" => self.action_type = map.next_value()?,
            "networkConnectionAction" => {
                self.network_connection = map.next_value::<Obj<Connection>>()?.0;
            }
            "dnsRequestAction" => self.dns_request = map.next_value::<Obj<Dns>>()?.0,
            "awsApiCallAction" => self.aws_api_call = map.next_value::<Obj<ApiCall>>()?.0,
            "portProbeAction" => {
                self.port_probe = map
                    .next_value::<Obj<PortProbe>>()?
                    .0
                    .map(|p| p.port_probe_details);
            }
            "kubernetesApiCallAction" => {
                self.kubernetes_api_call = map.next_value::<Obj<Remote>>()?.0;
            }
            "rdsLoginAttemptAction" => {
                self.rds_login_attempt = map.next_value::<Obj<Remote>>()?.0;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

object!(
    /// `remoteIpDetails`: only the addresses.
    Ips { "ipAddressV4" => v4: Scalar, "ipAddressV6" => v6: Scalar }
);

object!(
    /// `remotePortDetails` / `localPortDetails`.
    PortDetails { "port" => port: Scalar }
);

object!(
    /// `networkConnectionAction`.
    Connection {
        "remoteIpDetails" => remote_ip: Option<Ips>,
        "remotePortDetails" => remote_port: Option<PortDetails>,
        "localPortDetails" => local_port: Option<PortDetails>,
    }
);

object!(
    /// `dnsRequestAction`.
    Dns { "domain" => domain: Scalar }
);

object!(
    /// `awsApiCallAction.domainDetails`.
    DomainDetails { "domain" => domain: Scalar }
);

object!(
    /// `awsApiCallAction`.
    ApiCall {
        "remoteIpDetails" => remote_ip: Option<Ips>,
        "domainDetails" => domain: Option<DomainDetails>,
    }
);

object!(
    /// `portProbeAction`.
    PortProbe { "portProbeDetails" => port_probe_details: List<Probe2> }
);

object!(
    /// One element of `portProbeDetails`.
    Probe2 {
        "remoteIpDetails" => remote_ip: Option<Ips>,
        "localPortDetails" => local_port: Option<PortDetails>,
    }
);

object!(
    /// An action that only names a remote address (`kubernetesApiCallAction`,
    /// `rdsLoginAttemptAction`).
    Remote { "remoteIpDetails" => remote_ip: Option<Ips> }
);

/// A JSON value as a finding element: an object, or the kind of anything else.
pub(crate) enum Element {
    /// An object (a finding, an envelope or a get-findings answer).
    Object(Box<Wire>),
    /// Anything else: what it was, for the error.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
                read_object(map).map(|w| Element::Object(Box::new(w)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                drain_seq(seq).map(|()| Element::Other("an array"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Element, E> {
                Ok(Element::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Element, E> {
                Ok(Element::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Element, E> {
                Ok(Element::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Element, E> {
                Ok(Element::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Element, E> {
                Ok(Element::Other("a string"))
            }
            fn visit_unit<E>(self) -> Result<Element, E> {
                Ok(Element::Other("null"))
            }
            fn visit_none<E>(self) -> Result<Element, E> {
                Ok(Element::Other("null"))
            }
        }
        d.deserialize_any(V)
    }
}
