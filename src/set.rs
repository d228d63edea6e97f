//! `LinkSet`: what a link file or source produces and a reload consumes.

use std::hash::{BuildHasher, Hash, Hasher};

use crate::link::{DefaultRedirect, Link};

/// The links of one load, plus the default redirect the file declares (nginx `map`'s `default`)
/// and notes about directives that were accepted but ignored.
///
/// `Vec<Link>` converts into a `LinkSet` with no default (the table's own default then answers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkSet {
    /// The links, in file order.
    pub links: Vec<Link>,
    /// The file's default redirect, if it declares one.
    pub default: Option<DefaultRedirect>,
    /// Things accepted but ignored (e.g. nginx `hostnames;`), with their line.
    pub notes: Vec<String>,
}

impl From<Vec<Link>> for LinkSet {
    fn from(links: Vec<Link>) -> Self {
        LinkSet {
            links,
            ..LinkSet::default()
        }
    }
}

impl LinkSet {
    /// Number of links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether there are no links.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// A hash of everything that changes behaviour, independent of link order and of where the
    /// links came from; two sets with equal hashes serve the same redirects (collisions aside).
    /// Used to skip reloads whose content is unchanged.
    pub fn content_hash(&self) -> u64 {
        let state = foldhash::fast::FixedState::with_seed(0x6c69_6e6b_6761_7465);
        let mut sum = 0u64;
        for l in &self.links {
            let mut h = state.build_hasher();
            l.key().hash(&mut h);
            l.target().hash(&mut h);
            l.status().as_u16().hash(&mut h);
            (l.forward_query(), l.forward_path(), l.cache_seconds()).hash(&mut h);
            (l.not_before(), l.not_after()).hash(&mut h);
            for (n, v) in l.tags() {
                (n, v).hash(&mut h);
            }
            l.routing().map(|r| &**r).hash(&mut h);
            sum = sum.wrapping_add(h.finish());
        }
        let mut h = state.build_hasher();
        (sum, self.links.len()).hash(&mut h);
        if let Some(d) = &self.default {
            (d.target(), d.status().as_u16()).hash(&mut h);
        }
        h.finish()
    }
}
