//! The value types' parsers.

use super::*;

#[test]
fn a_value_read_from_json_is_parsed_like_one_from_input() {
    let read = |json: &str| serde_json::from_str::<UserId>(json);
    assert_eq!(
        read("\"ann\"").expect("valid"),
        UserId::parse("ann").expect("valid")
    );
    assert!(read("\"\"").is_err());
    assert!(read("\"two words\"").is_err());
    assert!(serde_json::from_str::<Category>("\"Billing\"").is_err());
    assert!(serde_json::from_str::<Title>("\"bell\\u0007\"").is_err());
    assert_eq!(
        serde_json::from_str::<Title>("\" padded \"")
            .expect("trimmed")
            .as_str(),
        "padded"
    );
    assert!(serde_json::from_str::<Body>("\"nul\\u0000\"").is_err());
    assert!(serde_json::from_str::<Link>("\"javascript:alert(1)\"").is_err());
    assert!(serde_json::from_str::<IdempotencyKey>("\"\"").is_err());
    assert!(serde_json::from_str::<Payload>("[1]").is_err());
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(limits::DATA_MAX_BYTES));
    assert!(serde_json::from_str::<Payload>(&big).is_err());
    // What is written reads back as the same value.
    let title = Title::parse("Deploy finished").expect("valid");
    let json = serde_json::to_string(&title).expect("serialize");
    assert_eq!(json, "\"Deploy finished\"");
    assert_eq!(serde_json::from_str::<Title>(&json).expect("read"), title);
}

#[test]
fn categories_are_lowercase_slugs() {
    assert!(Category::parse("billing.invoices").is_ok());
    assert!(Category::parse("Billing").is_err());
    assert!(Category::parse("").is_err());
    assert!(Category::parse("-x").is_err());
    assert!(Category::parse(&"a".repeat(65)).is_err());
}

#[test]
fn user_ids_reject_blank_and_control_characters() {
    assert!(UserId::parse("alice@example.com").is_ok());
    assert!(UserId::parse("").is_err());
    assert!(UserId::parse("a b").is_err());
    assert!(UserId::parse("a\u{0}").is_err());
    assert!(UserId::parse(&"u".repeat(129)).is_err());
}

#[test]
fn payload_must_be_a_small_object() {
    assert!(Payload::parse(serde_json::json!({"a": 1})).is_ok());
    assert!(Payload::parse(serde_json::json!([1])).is_err());
    let big = "x".repeat(limits::DATA_MAX_BYTES);
    let err = Payload::parse(serde_json::json!({ "a": big })).unwrap_err();
    assert_eq!(err.field, "data");
}

#[test]
fn bodies_and_data_may_not_hold_nul_characters() {
    assert!(Body::parse("two\nlines\tand a tab").is_ok());
    assert_eq!(Body::parse("a\0b").unwrap_err().field, "body");
    let nested = serde_json::json!({"a": [{"b": "x\u{0}y"}]});
    assert_eq!(Payload::parse(nested).unwrap_err().field, "data");
    let key = serde_json::json!({"k\u{0}": 1});
    assert_eq!(Payload::parse(key).unwrap_err().field, "data");
    assert!(Payload::parse(serde_json::json!({"a": ["\t", {"b": null}]})).is_ok());
}

#[test]
fn links_are_http_urls_or_app_paths() {
    assert!(Link::parse("action url", "https://example.com/x").is_ok());
    assert!(Link::parse("action url", "/inbox/1").is_ok());
    assert!(Link::parse("action url", "javascript:alert(1)").is_err());
    assert!(Link::parse("action url", "//evil.example").is_err());
}

#[test]
fn titles_are_trimmed_and_bounded() {
    assert_eq!(Title::parse("  hi ").unwrap().as_str(), "hi");
    assert!(Title::parse("   ").is_err());
    assert!(Title::parse(&"t".repeat(201)).is_err());
}

#[test]
fn enums_parse_case_insensitively_and_list_choices() {
    assert_eq!(Priority::parse("URGENT").unwrap(), Priority::Urgent);
    assert_eq!(Channel::parse("in_app").unwrap(), Channel::InApp);
    let err = Channel::parse("pigeon").unwrap_err();
    assert!(err.message.contains("in_app, email, sms, push, webhook"));
}
