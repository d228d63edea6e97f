//! `Click::from_json` reads back everything `Click::write_json` writes.

use std::net::IpAddr;

use bytes::Bytes;
use http::HeaderValue;
use http::uri::PathAndQuery;
use linkgate::{Click, ClickId, ClickIp, ClickNotes, ClickParseError, Tags};
use proptest::prelude::*;

fn header() -> impl Strategy<Value = HeaderValue> {
    // Visible ASCII, spaces, tabs and any non-ASCII text: everything a header value can hold
    // that is also UTF-8.
    "[ -~\t\u{a0}-\u{10ffff}]{0,40}".prop_map(|s| HeaderValue::from_str(&s).unwrap())
}

fn ip() -> impl Strategy<Value = ClickIp> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| ClickIp::Addr(IpAddr::from(o))),
        any::<[u8; 16]>().prop_map(|o| ClickIp::Addr(IpAddr::from(o))),
        any::<u128>().prop_map(ClickIp::Hashed),
    ]
}

fn label() -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of("(?s).{0,20}".prop_map(Bytes::from))
}

prop_compose! {
    fn click()(
        // Years 0000 to 9999: what the 4-digit form prints.
        ts in -62_167_219_200_000i64..=253_402_300_799_999,
        id in any::<u128>(),
        key in "(?s).{0,30}",
        location in header(),
        status in any::<u16>(),
        ip in proptest::option::of(ip()),
        ua in proptest::option::of(header()),
        referer in proptest::option::of(header()),
        country in proptest::option::of(header()),
        query in proptest::option::of("[A-Za-z0-9=&%._~!$'()*+,;:@/?-]{0,30}"),
        tags in proptest::collection::vec(("(?s).{0,10}", "(?s).{0,10}"), 0..4),
        matched in any::<bool>(),
        bot in proptest::option::of(any::<bool>()),
        unique in proptest::option::of(any::<bool>()),
        suspicious in proptest::option::of(any::<bool>()),
        notes in (label(), label(), label(), label()),
    ) -> Click {
        let mut c = Click::new(ts, ClickId::from(id), key, location, status);
        c.ip = ip;
        c.user_agent = ua;
        c.referer = referer;
        c.country = country;
        c.path_and_query = query.map(|q| PathAndQuery::try_from(format!("/some/path?{q}")).unwrap());
        c.tags = (!tags.is_empty()).then(|| {
            tags.into_iter().map(|(k, v)| (k.into(), v.into())).collect::<Tags>()
        });
        c.matched = matched;
        c.bot = bot;
        c.unique = unique;
        c.suspicious = suspicious;
        let (bot_reason, suspicious_reason, rule, variant) = notes;
        let n = c.notes_mut();
        n.bot_reason = bot_reason;
        n.suspicious_reason = suspicious_reason;
        n.rule = rule;
        n.variant = variant;
        if c.notes.as_deref().is_some_and(ClickNotes::is_empty) {
            c.notes = None;
        }
        c
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn from_json_inverts_to_json(c in click()) {
        let json = c.to_json();
        let mut back = Click::from_json(&json).map_err(|e| TestCaseError::fail(format!("{e:?}: {}", String::from_utf8_lossy(&json))))?;
        // The documented normalisation: only the query of `path_and_query` is serialised.
        prop_assert_eq!(back.query(), c.query());
        back.path_and_query = c.path_and_query.clone();
        prop_assert_eq!(&back, &c);
        // And the JSON is a fixed point.
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn from_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Click::from_json(&bytes);
    }

    #[test]
    fn a_cut_line_is_an_error_not_a_panic(c in click(), cut in 0usize..400) {
        let json = c.to_json();
        let cut = cut.min(json.len() - 1);
        prop_assert!(Click::from_json(&json[..cut]).is_err());
    }
}

#[test]
fn normalisation_of_what_json_does_not_keep() {
    let mut c = Click::new(
        0,
        ClickId::from(1),
        Bytes::from_static(b"/go/caf\xe9"),
        HeaderValue::from_static("/x"),
        302,
    );
    c.tags = Some(Vec::new().into());
    c.notes = Some(Default::default());
    c.path_and_query = Some(PathAndQuery::from_static("/GO/Caf%C3%A9/?a=1"));
    let back = Click::from_json(&c.to_json()).unwrap();
    assert_eq!(back.key, "/go/caf\u{fffd}".as_bytes());
    assert_eq!((&back.tags, &back.notes), (&None, &None));
    assert_eq!(back.query(), Some("a=1"));
}

#[test]
fn errors_name_the_problem() {
    let good = Click::new(
        0,
        ClickId::from(1),
        "/k",
        HeaderValue::from_static("/x"),
        302,
    )
    .to_json();
    let good = String::from_utf8(good).unwrap();
    type Check = fn(&ClickParseError) -> bool;
    // (field as written, the same field broken, the error it must give)
    let cases: [(&str, &str, Check); 5] = [
        (
            "\"ts\":\"1970-01-01T00:00:00.000Z\"",
            "\"ts\":\"1970-02-30T00:00:00.000Z\"",
            |e| matches!(e, ClickParseError::Timestamp(_)),
        ),
        (
            "\"click_id\":\"00000000000000000000000001\"",
            "\"click_id\":\"not-an-id\"",
            |e| matches!(e, ClickParseError::ClickId(_)),
        ),
        ("\"location\":\"/x\"", "\"location\":\"/x\\ny\"", |e| {
            matches!(
                e,
                ClickParseError::Header {
                    field: "location",
                    ..
                }
            )
        }),
        ("\"ip\":null", "\"ip\":\"999.1.1.1\"", |e| {
            matches!(e, ClickParseError::Ip(_))
        }),
        ("\"status\":302", "\"status\":\"302\"", |e| {
            matches!(e, ClickParseError::Json(_))
        }),
    ];
    for (from, to, check) in cases {
        assert!(good.contains(from), "{from}");
        let bad = good.replace(from, to);
        let e = Click::from_json(bad.as_bytes()).unwrap_err();
        assert!(check(&e), "{bad}: {e:?}");
    }
}

#[test]
fn the_fuzz_seeds_parse_and_round_trip() {
    // The property the `click_json` fuzz target checks, on its seed corpus.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/click_json");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let c = Click::from_json(&bytes).unwrap();
        let back = Click::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.to_json(), c.to_json());
        n += 1;
    }
    assert!(n >= 2);
}
