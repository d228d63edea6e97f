//! Per-link routing: targeting rules (device, country, language, time window), a weighted split
//! over several targets, a click cap with an overflow target, and a target for bots.
//!
//! A link's [`Routing`] is decided in this order (see [`Routing::choose`]):
//! 1. **Rules**, first match wins. A rule matches when *every* condition it sets holds:
//!    device (from the User-Agent), country (from the gate's country header), language (the
//!    primary tag of the first `Accept-Language` entry), time window (`after` ≤ now < `before`).
//! 2. Otherwise the **split**: one of the variants, chosen by weight, deterministically from the
//!    click id (the same id always picks the same variant, so a choice can be audited later).
//! 3. Otherwise the link's own target.
//!
//! The click cap (`max_clicks`) is applied by the [`Gate`](crate::Gate) before any of this: once a
//! link has sent `max_clicks` visitors on, it answers with its overflow target (the click's `rule`
//! is then `max_clicks:overflow`), or as an unknown link when it has none. The count is exact
//! under any number of threads and is carried from snapshot to snapshot while the key keeps a
//! cap (a reload does not reset it; removing the cap or the link does).
//!
//! ```
//! use linkgate::{Device, Link, Rule};
//! let link = Link::builder("/go/app", "https://example.com/app")
//!     .rule(Rule::new("ios", "https://apps.apple.com/app/id1").device(Device::Ios))
//!     .rule(Rule::new("dach", "https://example.de/app").country("DE").country("AT"))
//!     .variant("a", 70, "https://example.com/app?v=a")
//!     .variant("b", 30, "https://example.com/app?v=b")
//!     .max_clicks(10_000)
//!     .build()?;
//! assert_eq!(link.routing().unwrap().rules().len(), 2);
//! # Ok::<(), linkgate::LinkError>(())
//! ```
//!
//! In link files, routing is written in the JSON format (fields `rules`, `split`, `max_clicks`,
//! `overflow`, `bot_target`; see [`Format::Json`](crate::Format::Json)); links loaded from CSV or an
//! nginx map get theirs from a JSON side file (see [`apply_routing`](crate::apply_routing)).

use std::fmt;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::HeaderValue;
use memchr::memmem::Finder;

use crate::click_id::ClickId;
use crate::error::LinkError;
use crate::notes::ClickNotes;
use crate::target;
use crate::template;

/// Most rules per link.
pub const MAX_RULES: usize = 32;
/// Most split variants per link.
pub const MAX_VARIANTS: usize = 32;

/// A device class told from the User-Agent.
///
/// `Ios`: `iPhone`, `iPad` or `iPod` in the UA. `Android`: `Android`. `Desktop`: anything else
/// that is not empty. iPadOS 13+ Safari sends a desktop (Macintosh) UA by default and counts as
/// `Desktop`; a missing UA matches no device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// iPhone, iPad, iPod.
    Ios,
    /// Android phones and tablets.
    Android,
    /// Everything else with a User-Agent.
    Desktop,
}

impl Device {
    /// Classifies a User-Agent (`None` for an empty one).
    pub fn from_user_agent(ua: &[u8]) -> Option<Device> {
        if ua.is_empty() {
            return None;
        }
        // Built once: `memmem::find` would build a searcher on every call.
        static ANDROID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"Android"));
        static IP: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"iP"));
        if ANDROID.find(ua).is_some() {
            return Some(Device::Android);
        }
        // `iPhone`, `iPad`, `iPod` share `iP`; check the next bytes.
        let mut at = 0;
        while let Some(i) = IP.find(&ua[at..]) {
            let rest = &ua[at + i + 2..];
            if rest.starts_with(b"hone") || rest.starts_with(b"ad") || rest.starts_with(b"od") {
                return Some(Device::Ios);
            }
            at += i + 2;
        }
        Some(Device::Desktop)
    }

    /// The name used in link files: `ios`, `android`, `desktop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Ios => "ios",
            Device::Android => "android",
            Device::Desktop => "desktop",
        }
    }
}

impl std::str::FromStr for Device {
    type Err = LinkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ios" => Ok(Device::Ios),
            "android" => Ok(Device::Android),
            "desktop" => Ok(Device::Desktop),
            _ => Err(LinkError::Field {
                field: "device",
                reason: format!("`{s}` is not a device: use ios, android or desktop"),
            }),
        }
    }
}

/// A redirect target of a rule, variant, overflow or bot route: validated like a link target,
/// with its `Location` prebuilt.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RouteTarget {
    text: Box<str>,
    location: HeaderValue,
    template: bool,
}

impl fmt::Debug for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl RouteTarget {
    fn new(text: &str) -> Result<RouteTarget, LinkError> {
        target::validate(text)?;
        let location = HeaderValue::from_str(text).map_err(|_| LinkError::Field {
            field: "target",
            reason: "not a valid header value".into(),
        })?;
        Ok(RouteTarget {
            text: text.into(),
            location,
            template: template::is_template(text),
        })
    }

    /// The target as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The prebuilt `Location` (templates not yet expanded).
    pub fn location(&self) -> &HeaderValue {
        &self.location
    }

    /// Whether the target has `{click_id}`/`{key}` placeholders.
    pub fn is_template(&self) -> bool {
        self.template
    }
}

/// One targeting rule: a name (recorded in the click), the conditions, and where it sends.
///
/// Conditions of different kinds must all hold; several values of one kind are alternatives
/// (`country("DE").country("AT")` = DE or AT). A rule without conditions always matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[must_use]
pub struct Rule {
    name: Bytes,
    devices: Vec<Device>,
    countries: Vec<[u8; 2]>,
    languages: Vec<Box<str>>,
    after: Option<i64>,
    before: Option<i64>,
    target: String,
    built: Option<RouteTarget>,
    /// The click labels this rule gives (shared by every click it routes).
    notes: Arc<ClickNotes>,
    error: Option<(&'static str, String)>,
}

impl Rule {
    /// A rule named `name` sending to `target` (validated when the link is built).
    pub fn new(name: impl Into<String>, target: impl Into<String>) -> Rule {
        Rule {
            name: Bytes::from(name.into()),
            devices: Vec::new(),
            countries: Vec::new(),
            languages: Vec::new(),
            after: None,
            before: None,
            target: target.into(),
            built: None,
            notes: Arc::default(),
            error: None,
        }
    }

    /// Matches this device (add several for "any of").
    pub fn device(mut self, d: Device) -> Rule {
        if !self.devices.contains(&d) {
            self.devices.push(d);
        }
        self
    }

    /// Matches this ISO 3166 alpha-2 country code (case-insensitive), as sent in the gate's
    /// country header (e.g. `CF-IPCountry`).
    pub fn country(mut self, code: &str) -> Rule {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                self.countries
                    .push([a.to_ascii_uppercase(), b.to_ascii_uppercase()]);
            }
            _ => {
                self.error.get_or_insert((
                    "country",
                    format!("`{code}` is not a two-letter country code"),
                ));
            }
        }
        self
    }

    /// Matches this primary language tag (`de` matches `de-AT`; case-insensitive).
    pub fn language(mut self, tag: &str) -> Rule {
        let ok = (1..=8).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphabetic());
        if ok {
            self.languages.push(tag.to_ascii_lowercase().into());
        } else {
            self.error.get_or_insert((
                "language",
                format!("`{tag}` is not a primary language tag (1-8 letters, e.g. `de`)"),
            ));
        }
        self
    }

    /// Matches from this instant on (Unix ms, inclusive).
    pub fn after(mut self, unix_ms: i64) -> Rule {
        self.after = Some(unix_ms);
        self
    }

    /// Matches until this instant (Unix ms, exclusive).
    pub fn before(mut self, unix_ms: i64) -> Rule {
        self.before = Some(unix_ms);
        self
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name).unwrap_or("")
    }

    /// Where the rule sends.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn validate(&mut self) -> Result<(), LinkError> {
        let err = |field: &'static str, reason: String| LinkError::Rule {
            rule: self.name().to_string(),
            field,
            reason,
        };
        if let Some((field, reason)) = self.error.clone() {
            return Err(err(field, reason));
        }
        check_name(&self.name).map_err(|r| err("name", r))?;
        if let (Some(a), Some(b)) = (self.after, self.before) {
            if b <= a {
                return Err(err(
                    "before",
                    format!("before ({b}) must be after after ({a})"),
                ));
            }
        }
        self.built =
            Some(RouteTarget::new(&self.target).map_err(|e| err("target", e.to_string()))?);
        self.notes = Arc::new(ClickNotes {
            rule: Some(self.name.clone()),
            ..ClickNotes::default()
        });
        Ok(())
    }

    fn built(&self) -> &RouteTarget {
        self.built
            .as_ref()
            .expect("validated when the link was built")
    }

    /// Checks the rule's conditions against a visitor, one by one, reporting each.
    fn test(&self, v: &Visitor<'_>, device: &mut Option<Option<Device>>) -> Result<(), Miss> {
        if !self.devices.is_empty() {
            let d = *device.get_or_insert_with(|| v.user_agent.and_then(Device::from_user_agent));
            if !d.is_some_and(|d| self.devices.contains(&d)) {
                return Err(Miss::Device(d));
            }
        }
        if !self.countries.is_empty() {
            let c = v
                .country
                .filter(|c| c.len() == 2)
                .map(|c| [c[0].to_ascii_uppercase(), c[1].to_ascii_uppercase()]);
            if !c.is_some_and(|c| self.countries.contains(&c)) {
                return Err(Miss::Country);
            }
        }
        if !self.languages.is_empty() {
            let lang = v.accept_language.map(primary_language).unwrap_or("");
            if !self.languages.iter().any(|l| l.eq_ignore_ascii_case(lang)) {
                return Err(Miss::Language);
            }
        }
        if self.after.is_some_and(|a| v.now_ms < a) || self.before.is_some_and(|b| v.now_ms >= b) {
            return Err(Miss::Time);
        }
        Ok(())
    }
}

fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("name must be 1 to 64 bytes".into());
    }
    if name.iter().any(|b| !b.is_ascii_graphic()) {
        return Err("name must be visible ASCII without spaces".into());
    }
    Ok(())
}

/// The primary subtag of the first `Accept-Language` entry: `de` for `de-AT,de;q=0.9,en;q=0.8`.
/// (The first entry is the visitor's preferred language: browsers list by preference.)
pub fn primary_language(accept_language: &[u8]) -> &str {
    let first = accept_language
        .split(|&b| b == b',' || b == b';' || b == b'-' || b == b'_')
        .next()
        .unwrap_or(b"");
    let t = first.trim_ascii();
    std::str::from_utf8(t).unwrap_or("")
}

/// Why a rule did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Miss {
    /// The device (as classified; `None` without a User-Agent) is not one the rule names.
    Device(Option<Device>),
    /// The country header is missing or names another country.
    Country,
    /// The preferred language is another one (or there is no `Accept-Language`).
    Language,
    /// Now is outside the rule's time window.
    Time,
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::Device(Some(d)) => write!(f, "device is {}", d.as_str()),
            Miss::Device(None) => f.write_str("no User-Agent, so no device"),
            Miss::Country => f.write_str("country does not match (or no country header)"),
            Miss::Language => f.write_str("language does not match (or no Accept-Language)"),
            Miss::Time => f.write_str("outside the rule's time window"),
        }
    }
}

/// One split variant: a name (recorded in the click), an integer weight and a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Variant {
    name: Bytes,
    weight: u32,
    target: RouteTarget,
    notes: Arc<ClickNotes>,
}

impl Variant {
    /// The variant's name.
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name).unwrap_or("")
    }
    /// Its weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// Where it sends.
    pub fn target(&self) -> &str {
        self.target.as_str()
    }
}

/// The request facts rules look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Visitor<'a> {
    /// The `User-Agent` header.
    pub user_agent: Option<&'a [u8]>,
    /// The country header's value (e.g. `CF-IPCountry: DE`).
    pub country: Option<&'a [u8]>,
    /// The `Accept-Language` header.
    pub accept_language: Option<&'a [u8]>,
    /// Now, Unix ms.
    pub now_ms: i64,
}

/// What [`Routing::choose`] picked.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'r> {
    /// The target, or `None` for the link's own target.
    pub target: Option<&'r RouteTarget>,
    /// The name of the rule that matched.
    pub rule: Option<&'r Bytes>,
    /// The name of the split variant chosen.
    pub variant: Option<&'r Bytes>,
    /// The click labels for this choice (`rule` or `variant` set), shared.
    pub notes: Option<&'r Arc<ClickNotes>>,
}

/// One rule tried, for [`Gate::explain`](crate::Gate::explain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStep {
    /// The rule's name.
    pub rule: String,
    /// `Ok` when it matched, or why not.
    pub outcome: Result<(), Miss>,
}

/// A link's routing: rules, split, cap and bot target. Immutable and shared (`Arc`) between the
/// link, its snapshot and every redirect that matched it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Routing {
    rules: Vec<Rule>,
    split: Vec<Variant>,
    total_weight: u64,
    max_clicks: Option<u64>,
    overflow: Option<RouteTarget>,
    bot_target: Option<RouteTarget>,
    /// Per label (the rules', then the variants'): its notes with each flood reason added, so
    /// that a click flagged in a flood shares them instead of allocating (feature `fraud`).
    #[cfg(feature = "fraud")]
    flood_notes: Box<[[Arc<ClickNotes>; 2]]>,
}

impl Routing {
    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    /// The split variants.
    pub fn split(&self) -> &[Variant] {
        &self.split
    }
    /// The click cap.
    pub fn max_clicks(&self) -> Option<u64> {
        self.max_clicks
    }
    /// Where visitors go once the cap is reached (`None`: the link then answers as unknown).
    pub fn overflow(&self) -> Option<&RouteTarget> {
        self.overflow.as_ref()
    }
    /// Where bots go under `BotPolicy::Redirect` (feature `fraud`) (`None`: the link's
    /// target without its query string).
    pub fn bot_target(&self) -> Option<&RouteTarget> {
        self.bot_target.as_ref()
    }

    /// Whether nothing is set (no rules, split, cap or bot target).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
            && self.split.is_empty()
            && self.max_clicks.is_none()
            && self.overflow.is_none()
            && self.bot_target.is_none()
    }

    /// Whether a rule asks for the visitor's device.
    #[cfg(feature = "os")]
    pub(crate) fn uses_device(&self) -> bool {
        self.rules.iter().any(|r| !r.devices.is_empty())
    }

    /// Picks the target for one visitor: first matching rule, else the split variant for `id`,
    /// else `None` (the link's own target). `trace`, when given, receives every rule tried.
    pub fn choose<'r>(
        &'r self,
        v: &Visitor<'_>,
        id: ClickId,
        trace: Option<&mut Vec<RuleStep>>,
    ) -> Choice<'r> {
        self.choose_labelled(v, &mut None, id, trace).0
    }

    /// The label sets of label `i` (from [`choose_labelled`](Self::choose_labelled)) with each
    /// flood reason added (see `fraud::flagged_notes`).
    #[cfg(feature = "fraud")]
    pub(crate) fn flood_notes(&self, i: usize) -> Option<&[Arc<ClickNotes>; 2]> {
        self.flood_notes.get(i)
    }

    /// [`choose`](Self::choose), and the index of the choice's label when it has one: the rule's
    /// index, or the number of rules plus the variant's index. `device` is the visitor's
    /// device if already known (`Some`), and receives it if a rule works it out.
    pub(crate) fn choose_labelled<'r>(
        &'r self,
        v: &Visitor<'_>,
        device: &mut Option<Option<Device>>,
        id: ClickId,
        mut trace: Option<&mut Vec<RuleStep>>,
    ) -> (Choice<'r>, Option<usize>) {
        for (i, r) in self.rules.iter().enumerate() {
            let outcome = r.test(v, device);
            if let Some(t) = trace.as_deref_mut() {
                t.push(RuleStep {
                    rule: r.name().to_string(),
                    outcome,
                });
            }
            if outcome.is_ok() {
                let choice = Choice {
                    target: Some(r.built()),
                    rule: Some(&r.name),
                    variant: None,
                    notes: Some(&r.notes),
                };
                return (choice, Some(i));
            }
        }
        match self.variant_index(id) {
            Some(i) => {
                let var = &self.split[i];
                let choice = Choice {
                    target: Some(&var.target),
                    rule: None,
                    variant: Some(&var.name),
                    notes: Some(&var.notes),
                };
                (choice, Some(self.rules.len() + i))
            }
            None => {
                let choice = Choice {
                    target: None,
                    rule: None,
                    variant: None,
                    notes: None,
                };
                (choice, None)
            }
        }
    }

    /// The split variant a click id picks (`None` without a split).
    ///
    /// The choice is `mix(id) mod total_weight` walked over the variants in order, where `mix` is
    /// SplitMix64's finaliser over the low 64 bits of the id (its random part): anyone holding a
    /// click id and the link's weights can recompute the variant.
    pub fn variant_for(&self, id: ClickId) -> Option<&Variant> {
        self.variant_index(id).map(|i| &self.split[i])
    }

    /// The index in [`split`](Self::split) of [`variant_for`](Self::variant_for)'s variant.
    fn variant_index(&self, id: ClickId) -> Option<usize> {
        if self.split.is_empty() {
            return None;
        }
        let mut x = split_mix(id.as_u128() as u64) % self.total_weight;
        for (i, v) in self.split.iter().enumerate() {
            if x < u64::from(v.weight) {
                return Some(i);
            }
            x -= u64::from(v.weight);
        }
        Some(self.split.len() - 1)
    }
}

/// SplitMix64's output function.
fn split_mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Collects routing settings on a [`LinkBuilder`](crate::LinkBuilder) until the link is built.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoutingSpec {
    pub(crate) rules: Vec<Rule>,
    pub(crate) split: Vec<(String, u32, String)>,
    pub(crate) max_clicks: Option<u64>,
    pub(crate) overflow: Option<String>,
    pub(crate) bot_target: Option<String>,
}

impl RoutingSpec {
    /// Validates everything; `None` when nothing was set.
    pub(crate) fn build(self) -> Result<Option<Arc<Routing>>, LinkError> {
        if self.rules.is_empty()
            && self.split.is_empty()
            && self.max_clicks.is_none()
            && self.overflow.is_none()
            && self.bot_target.is_none()
        {
            return Ok(None);
        }
        let field = |field: &'static str, reason: String| LinkError::Field { field, reason };
        if self.rules.len() > MAX_RULES {
            return Err(field("rules", format!("more than {MAX_RULES} rules")));
        }
        if self.split.len() > MAX_VARIANTS {
            return Err(field("split", format!("more than {MAX_VARIANTS} variants")));
        }
        let mut rules = self.rules;
        for r in rules.iter_mut() {
            r.validate()?;
        }
        for (i, r) in rules.iter().enumerate() {
            if rules[..i].iter().any(|p| p.name == r.name) {
                return Err(LinkError::Rule {
                    rule: r.name().to_string(),
                    field: "name",
                    reason: "two rules have this name".into(),
                });
            }
        }
        let mut split = Vec::with_capacity(self.split.len());
        let mut total = 0u64;
        for (name, weight, target) in self.split {
            let bad = |reason: String| LinkError::Variant {
                variant: name.clone(),
                reason,
            };
            check_name(name.as_bytes()).map_err(bad)?;
            if weight == 0 {
                return Err(bad("weight must be at least 1".into()));
            }
            if split.iter().any(|v: &Variant| v.name == name.as_bytes()) {
                return Err(bad("two variants have this name".into()));
            }
            let target = RouteTarget::new(&target).map_err(|e| bad(e.to_string()))?;
            total += u64::from(weight);
            let name = Bytes::from(name);
            split.push(Variant {
                notes: Arc::new(ClickNotes {
                    variant: Some(name.clone()),
                    ..ClickNotes::default()
                }),
                name,
                weight,
                target,
            });
        }
        if split.len() == 1 {
            return Err(field(
                "split",
                "a split needs at least two variants (one variant is just a target)".into(),
            ));
        }
        if self.max_clicks == Some(0) {
            return Err(field("max_clicks", "must be at least 1".into()));
        }
        if self.overflow.is_some() && self.max_clicks.is_none() {
            return Err(field(
                "overflow",
                "an overflow target needs max_clicks".into(),
            ));
        }
        let target_of = |name: &'static str, t: Option<String>| {
            t.map(|t| RouteTarget::new(&t).map_err(|e| field(name, e.to_string())))
                .transpose()
        };
        #[cfg(feature = "fraud")]
        let flood_notes = rules
            .iter()
            .map(|r| &r.notes)
            .chain(split.iter().map(|v| &v.notes))
            .map(|n| crate::fraud::flagged_notes(n))
            .collect();
        Ok(Some(Arc::new(Routing {
            #[cfg(feature = "fraud")]
            flood_notes,
            rules,
            split,
            total_weight: total,
            max_clicks: self.max_clicks,
            overflow: target_of("overflow", self.overflow)?,
            bot_target: target_of("bot_target", self.bot_target)?,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        let d = |ua: &str| Device::from_user_agent(ua.as_bytes());
        assert_eq!(
            d("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"),
            Some(Device::Ios)
        );
        assert_eq!(
            d("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X)"),
            Some(Device::Ios)
        );
        assert_eq!(
            d("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile"),
            Some(Device::Android)
        );
        assert_eq!(
            d("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120"),
            Some(Device::Desktop)
        );
        assert_eq!(d("Mozilla iPx iPa"), Some(Device::Desktop));
        assert_eq!(d(""), None);
    }

    #[test]
    fn languages() {
        assert_eq!(primary_language(b"de-AT,de;q=0.9,en;q=0.8"), "de");
        assert_eq!(primary_language(b" fr ; q=1"), "fr");
        assert_eq!(primary_language(b""), "");
        assert_eq!(primary_language(b"*"), "*");
    }

    #[test]
    fn split_is_deterministic_and_weighted() {
        let spec = RoutingSpec {
            split: vec![
                ("a".into(), 70, "https://a.example/".into()),
                ("b".into(), 30, "https://b.example/".into()),
            ],
            ..Default::default()
        };
        let r = spec.build().unwrap().unwrap();
        let mut a = 0u32;
        for i in 0..100_000u128 {
            let id = ClickId::from((1_700_000_000_000u128 << 80) | i);
            let v = r.variant_for(id).unwrap();
            assert_eq!(r.variant_for(id).unwrap().name(), v.name());
            a += (v.name() == "a") as u32;
        }
        // 70 % of 100 000 with binomial sd ≈ 145: ±5 sd.
        assert!((69_275..=70_725).contains(&a), "{a}");
    }
}
