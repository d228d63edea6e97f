//! Parsers on valid and hostile files: every outcome is a set or a typed error, never a panic.

use linkgate::{Format, LinkTable, LoadError};

const MAP: &str = "map $uri $affiliate_url {\n    /go/summer-deal https://store.com/p/123?ref=aff_01;\n    default https://store.com/;\n}\n";
const CSV: &str =
    "key,target,status,campaign\n/go/summer-deal,https://store.com/p/123?ref=aff_01,302,summer\n";
const JSON: &str = "[{\"key\": \"/go/summer-deal\", \"target\": \"https://store.com/p/123?ref=aff_01\", \"tags\": {\"campaign\": \"summer\"}}]\n";

fn all() -> [(Format, &'static str); 3] {
    [
        (Format::NginxMap, MAP),
        (Format::Csv, CSV),
        (Format::Json, JSON),
    ]
}

fn line_of(e: &LoadError) -> Option<usize> {
    match e {
        LoadError::Syntax { error, .. } => Some(error.line),
        LoadError::Invalid { errors, .. } => match errors[0].origin {
            linkgate::Origin::Line { line, .. } => Some(line),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn valid_files_with_bom_and_crlf() {
    for (f, text) in all() {
        for variant in [
            text.to_string(),
            format!("\u{feff}{text}"),
            text.replace('\n', "\r\n"),
        ] {
            let set = f
                .parse(variant.as_bytes())
                .unwrap_or_else(|e| panic!("{f:?}: {e}"));
            assert_eq!(set.links.len(), 1, "{f:?}");
            let t = LinkTable::from_links(set).unwrap();
            assert_eq!(
                t.resolve("/go/summer-deal").location(),
                "https://store.com/p/123?ref=aff_01"
            );
        }
    }
}

#[test]
fn truncated_files_fail_or_load_a_prefix_never_panic() {
    for (f, text) in all() {
        for cut in 0..text.len() {
            let _ = f.parse(&text.as_bytes()[..cut]);
        }
    }
    // Truncations that must be errors, not a silently smaller table.
    assert!(
        Format::NginxMap
            .parse(&MAP.as_bytes()[..MAP.len() - 3])
            .is_err()
    );
    assert!(Format::NginxMap.parse(b"/go/a https://a.example/").is_err());
    assert!(
        Format::Json
            .parse(&JSON.as_bytes()[..JSON.len() - 3])
            .is_err()
    );
    assert!(
        Format::Csv
            .parse(b"key,target\n/go/a,\"https://a.exa")
            .is_err()
    );
}

#[test]
fn binary_input_is_a_typed_error_with_position() {
    let mut bin = b"/go/a /x;\n/go/b ".to_vec();
    bin.extend_from_slice(&[0xff, 0xfe, 0x00, 0x81]);
    for (f, _) in all() {
        let e = f.parse(&bin).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("not UTF-8") && msg.contains("line 2, column 7"),
            "{f:?}: {msg}"
        );
    }
    let e = Format::NginxMap.parse(b"/go/a /x\0y;").unwrap_err();
    assert!(e.to_string().contains("control character"), "{e}");
}

#[test]
fn ten_megabyte_line() {
    let huge_target = format!("https://a.example/{}", "x".repeat(10 * 1024 * 1024));
    let map = format!("/go/a {huge_target};\n");
    let e = Format::NginxMap.parse(map.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("8192"), "{e}");
    assert_eq!(line_of(&e), Some(1));
    let csv = format!("key,target\n/go/a,{huge_target}\n");
    assert!(
        Format::Csv
            .parse(csv.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("8192")
    );
    let json = format!("[{{\"key\":\"/go/a\",\"target\":\"{huge_target}\"}}]");
    assert!(
        Format::Json
            .parse(json.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("8192")
    );
    let huge_key = format!("/go/{} /x;", "k".repeat(10 * 1024 * 1024));
    assert!(
        Format::NginxMap
            .parse(huge_key.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("longer than 1024")
    );
}

#[test]
fn unbalanced_quotes_and_braces() {
    let cases: &[(&[u8], usize)] = &[
        (b"map $uri $x {\n/go/a \"https://a.example/;\n}\n", 2),
        (b"map $uri $x {\n/go/a https://a.example/;\n", 2),
        (b"map $uri $x {\n/go/a https://a.example/;\n}}\n", 3),
        (b"/go/a 'https://a.example/;\n", 1),
        (b"map $uri $x {{\n", 1),
    ];
    for (input, line) in cases {
        let e = Format::NginxMap.parse(input).unwrap_err();
        assert!(matches!(e, LoadError::Syntax { .. }), "{e}");
        assert_eq!(line_of(&e), Some(*line), "{e}");
    }
    let e = Format::Json
        .parse(b"[{\"key\": \"/go/a\", \"target\": \"/x\"\n")
        .unwrap_err();
    assert!(matches!(e, LoadError::Syntax { .. }), "{e}");
}

#[test]
fn format_by_extension() {
    assert_eq!(Format::from_path("a/links.map").unwrap(), Format::NginxMap);
    assert_eq!(Format::from_path("links.CONF").unwrap(), Format::NginxMap);
    assert_eq!(Format::from_path("x.csv").unwrap(), Format::Csv);
    assert_eq!(Format::from_path("x.json").unwrap(), Format::Json);
    assert!(
        Format::from_path("x.txt")
            .unwrap_err()
            .to_string()
            .contains("x.txt")
    );
    let e = linkgate::load_file("/nonexistent/links.map").unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }) && e.to_string().contains("/nonexistent/links.map"));
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("linkgate-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.map");
    std::fs::write(&p, "map $uri $x {\n  ~* /x;\n}\n").unwrap();
    let msg = linkgate::load_file(&p).unwrap_err().to_string();
    assert!(
        msg.contains("bad.map")
            && msg.contains("line 2")
            && msg.contains("regex keys are not supported"),
        "{msg}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
