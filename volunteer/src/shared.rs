//! `Shared`, the string type of every kept Node value, and the bounded pool that dedupes them.
//!
//! Many nodes share their strings ("cpu", "110", "linux", the same OS image and kernel), so
//! each distinct value is decoded once and shared by reference counting. The pool is also a
//! memory bound: all distinct values of one list together hold at most `MAX_POOL_BYTES`, so
//! an API server cannot grow it by making every value different. It does not know which
//! fields are kept; that is `objects.rs`.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The most the distinct kept values of one list may hold, counting `PER_VALUE` bytes of
/// bookkeeping each. A real cluster needs a few hundred KiB (values repeat across nodes).
pub const MAX_POOL_BYTES: usize = 4 * 1024 * 1024;

/// What a pooled value costs besides its text: the `Arc` counts, the allocator's header and
/// rounding, and the pool's own slot.
const PER_VALUE: usize = 48;

/// A string decoded from a Node, shared by every node that has the same value.
///
/// In a cluster of 5000 nodes this takes the kept data from ~8 MB to ~3 MB. The sharing happens
/// through a per-thread pool that `forget()` empties after each list, so it never outlives one
/// report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shared(Arc<str>);

/// The distinct values of the current list, and what they cost (see `PER_VALUE`).
#[derive(Default)]
struct Pool {
    values: HashSet<Arc<str>>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

impl Shared {
    /// The pooled copy of `text`; fails when a new value would take the pool past its bound.
    pub fn pooled(text: &str) -> Result<Shared, String> {
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if let Some(known) = pool.values.get(text) {
                return Ok(Shared(Arc::clone(known)));
            }
            let bytes = pool.bytes + text.len() + PER_VALUE;
            if bytes > MAX_POOL_BYTES {
                return Err(format!(
                    "the nodes' kept values take more than {} MiB, far more than a real \
                     cluster's",
                    MAX_POOL_BYTES >> 20
                ));
            }
            let fresh: Arc<str> = Arc::from(text);
            pool.values.insert(Arc::clone(&fresh));
            pool.bytes = bytes;
            Ok(Shared(fresh))
        })
    }

    /// Two values are one allocation (for tests of the sharing).
    pub fn same(&self, other: &Shared) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Empties this thread's pool. Values already decoded keep their own references.
pub fn forget() {
    POOL.with(|pool| *pool.borrow_mut() = Pool::default());
}

impl Deref for Shared {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Shared {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// An unpooled value, for tests and fakes.
impl From<&str> for Shared {
    fn from(text: &str) -> Shared {
        Shared(Arc::from(text))
    }
}

impl Serialize for Shared {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Shared {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shared, D::Error> {
        struct SharedVisitor;
        impl Visitor<'_> for SharedVisitor {
            type Value = Shared;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            // A borrowed &str: no allocation at all when the value is already pooled.
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Shared, E> {
                Shared::pooled(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(SharedVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_are_one_allocation_and_the_pool_is_bounded() {
        let (a, b) = (Shared::pooled("110"), Shared::pooled("110"));
        assert!(a.expect("pooled").same(&b.expect("pooled")));
        let big = "x".repeat(MAX_POOL_BYTES / 2);
        assert!(Shared::pooled(&big).is_ok(), "half the bound fits");
        assert!(Shared::pooled(&big).is_ok(), "a known value costs nothing");
        let e = Shared::pooled(&format!("{big}y")).expect_err("over the bound");
        assert!(e.contains("more than 4 MiB"), "{e}");
        forget();
        assert!(
            Shared::pooled(&format!("{big}y")).is_ok(),
            "forget() empties it"
        );
        forget();
    }
}
