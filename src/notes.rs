//! `ClickNotes`: the labels of a click (why it was flagged, where it was routed).

use bytes::Bytes;

/// Why a click was flagged and where it was routed: the rarer, variable-size part of a
/// `Click`, shared (`Arc`) so that clicks without labels do not carry it and
/// clicks with the same labels share one.
///
/// Labels are [`Bytes`]: static names cost nothing, names from the link table are shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ClickNotes {
    /// Why the click counts as a bot (e.g. `ua:googlebot`, `head`, `prefetch`, `ua:empty`).
    pub bot_reason: Option<Bytes>,
    /// Why the click is suspicious (e.g. `flood:source`).
    pub suspicious_reason: Option<Bytes>,
    /// The targeting rule that chose the target (its name), if one matched.
    pub rule: Option<Bytes>,
    /// The split variant chosen (its name), if the link splits traffic.
    pub variant: Option<Bytes>,
}

impl ClickNotes {
    /// Whether no label is set.
    pub fn is_empty(&self) -> bool {
        self.bot_reason.is_none()
            && self.suspicious_reason.is_none()
            && self.rule.is_none()
            && self.variant.is_none()
    }
}
