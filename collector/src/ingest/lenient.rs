//! Lenient reading of JSON with serde: each reader (`Shape`) takes the kind of value it
//! expects, and any other kind reads as absent, skipped without being built (`IgnoredAny`).
//! Owns only this machinery; which fields are read is shapes.rs's.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::facts::MAX_TEXT;

/// A string value, borrowed from the payload unless it has escapes.
pub(super) type Text<'de> = Option<Cow<'de, str>>;

/// What a reader takes out of one JSON value. Each kind of value it does not override reads
/// as `Out::default()`, so a wrong type loses that value and nothing else.
pub(super) trait Shape<'de>: Sized {
    type Out: Default;
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::Out::default())
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::Out::default())
    }
    fn text(self, _: Cow<'de, str>) -> Self::Out {
        Self::Out::default()
    }
}

/// Reads any value with a `Shape`. Strings longer than `MAX_TEXT` read as absent before
/// anything is copied: no string fact or name facts reads may be longer.
pub(super) struct Lenient<S>(pub S);

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Lenient<S> {
    type Value = S::Out;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Out, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for Lenient<S> {
    type Value = S::Out;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<S::Out, E> {
        Ok(S::Out::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<S::Out, E> {
        Ok(S::Out::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<S::Out, E> {
        Ok(S::Out::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<S::Out, E> {
        Ok(S::Out::default())
    }
    fn visit_unit<E>(self) -> Result<S::Out, E> {
        Ok(S::Out::default())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<S::Out, E> {
        match v.len() <= MAX_TEXT {
            true => Ok(self.0.text(Cow::Borrowed(v))),
            false => Ok(S::Out::default()),
        }
    }
    fn visit_str<E>(self, v: &str) -> Result<S::Out, E> {
        match v.len() <= MAX_TEXT {
            true => Ok(self.0.text(Cow::Owned(v.to_owned()))),
            false => Ok(S::Out::default()),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S::Out, A::Error> {
        self.0.seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S::Out, A::Error> {
        self.0.map(map)
    }
}

/// A string.
pub(super) struct Str;

impl<'de> Shape<'de> for Str {
    type Out = Text<'de>;
    fn text(self, s: Cow<'de, str>) -> Text<'de> {
        Some(s)
    }
}

/// Calls `field` with each key of an object that is a string of at most `MAX_TEXT` bytes,
/// to read its value; a key it does not read (`Ok(false)`) has its value skipped.
pub(super) fn each_key<'de, A, F>(mut map: A, mut field: F) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    F: FnMut(Cow<'de, str>, &mut A) -> Result<bool, A::Error>,
{
    while let Some(key) = map.next_key_seed(Lenient(Str))? {
        let read = match key {
            Some(key) => field(key, &mut map)?,
            None => false,
        };
        if !read {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

/// Reads a string value.
pub(super) fn text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Text<'de>, A::Error> {
    map.next_value_seed(Lenient(Str))
}
