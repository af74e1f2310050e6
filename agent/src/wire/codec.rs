//! Decoding what a peer sends: a text frame becomes a client message, or a rejection that tells
//! bytes that are not JSON, JSON that is no known message, and a known message with bad fields
//! apart, naming the request when the frame names one.

use whyrefused_shared::{ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, RequestId};

/// Why a text frame is not a valid client message, and which request it named, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub id: Option<RequestId>,
    pub code: ErrorCode,
    pub message: String,
}

/// Parses a text frame into a client message, telling apart bytes that are not JSON, JSON that
/// is not a known message, and a known message with bad fields.
pub fn decode(text: &str) -> Result<ClientMessage, Rejection> {
    let reject = |id, code, message: String| Rejection { id, code, message };
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(reject(
            None,
            ErrorCode::MessageTooLarge,
            format!("the message is {} bytes; the limit is {MAX_MESSAGE_BYTES}", text.len()),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
        reject(None, ErrorCode::MalformedMessage, format!("the message is not valid JSON: {error}"))
    })?;
    let id = value.get("id").and_then(serde_json::Value::as_u64).map(RequestId);
    let types = ClientMessage::TYPES.join(", ");
    match value.get("type").and_then(serde_json::Value::as_str) {
        None => {
            return Err(reject(
                id,
                ErrorCode::UnknownMessageType,
                format!(
                    r#"the message has no "type": it must be an object with "type" one of {types}"#
                ),
            ));
        }
        Some(kind) if !ClientMessage::TYPES.contains(&kind) => {
            return Err(reject(
                id,
                ErrorCode::UnknownMessageType,
                format!("unknown message type {kind:?}: expected one of {types}"),
            ));
        }
        Some(_) => {}
    }
    serde_json::from_value(value).map_err(|error| {
        reject(id, ErrorCode::InvalidMessage, format!("the message's fields are wrong: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(text: &str) -> Rejection {
        decode(text).expect_err(text)
    }

    #[test]
    fn valid_messages_decode() {
        let check = decode(r#"{"type":"check","id":4,"request":{"target":"db:5432"}}"#).unwrap();
        assert!(matches!(check, ClientMessage::Check { id: RequestId(4), .. }));
        assert!(matches!(
            decode(r#"{"type":"cancel","id":4}"#).unwrap(),
            ClientMessage::Cancel { .. }
        ));
    }

    #[test]
    fn not_json_is_malformed() {
        let r = rejection("{not json");
        assert_eq!((r.code, r.id), (ErrorCode::MalformedMessage, None));
        assert!(r.message.contains("not valid JSON"));
    }

    #[test]
    fn unknown_or_missing_types_are_named() {
        let r = rejection(r#"{"type":"scan_everything","id":9}"#);
        assert_eq!((r.code, r.id), (ErrorCode::UnknownMessageType, Some(RequestId(9))));
        assert!(
            r.message.contains("\"scan_everything\"")
                && r.message.contains("hello, check, scan, cancel")
        );
        assert_eq!(rejection("[1,2]").code, ErrorCode::UnknownMessageType);
        assert_eq!(rejection(r#"{"id":1}"#).code, ErrorCode::UnknownMessageType);
    }

    #[test]
    fn bad_fields_name_the_request() {
        let r = rejection(r#"{"type":"check","id":5,"request":{"target":7}}"#);
        assert_eq!((r.code, r.id), (ErrorCode::InvalidMessage, Some(RequestId(5))));
        let r = rejection(r#"{"type":"check","id":5}"#);
        assert!(r.message.contains("request"), "{}", r.message);
    }

    #[test]
    fn oversized_messages_are_refused_before_parsing() {
        let big = format!(
            r#"{{"type":"check","id":1,"request":{{"target":"{}"}}}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(rejection(&big).code, ErrorCode::MessageTooLarge);
    }

    #[test]
    fn deeply_nested_json_is_malformed_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
        assert_eq!(rejection(&deep).code, ErrorCode::MalformedMessage);
        let object = format!(r#"{{"type":"check","id":1,"request":{}}}"#, "{\"a\":".repeat(10_000));
        assert_eq!(rejection(&object).code, ErrorCode::MalformedMessage);
    }

    /// Text shaped like a client message: a known or unknown type, an id, and fields of any
    /// JSON kind.
    fn message_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let kind = prop_oneof![
            proptest::sample::select(ClientMessage::TYPES.to_vec()).prop_map(String::from),
            "\\PC{0,12}",
        ];
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "\\PC{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("null".to_string()),
            Just("{}".to_string()),
            "[0-9a-z:/\\.\\[\\]@]{0,30}"
                .prop_map(|s| format!(r#"{{"target":"{s}","ports":"{s}"}}"#)),
        ];
        let field =
            proptest::sample::select(vec!["id", "request", "protocol", "token", "from", "x"]);
        (kind, any::<u64>(), proptest::collection::vec((field, value), 0..4)).prop_map(
            |(kind, id, fields)| {
                let mut text =
                    format!(r#"{{"type":{},"id":{id}"#, serde_json::to_string(&kind).unwrap());
                for (name, value) in fields {
                    text.push_str(&format!(r#","{name}":{value}"#));
                }
                text + "}"
            },
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(400))]

        #[test]
        fn any_text_decodes_or_is_rejected_with_a_reason(text in "\\PC{0,200}") {
            if let Err(rejection) = decode(&text) {
                proptest::prop_assert!(!rejection.message.is_empty());
            }
        }

        #[test]
        fn any_message_like_text_decodes_or_names_what_is_wrong(text in message_like()) {
            match decode(&text) {
                Ok(message) => {
                    proptest::prop_assert!(ClientMessage::TYPES.iter().any(|kind| text.contains(kind)), "{message:?}")
                }
                Err(rejection) => {
                    proptest::prop_assert_ne!(rejection.code, ErrorCode::MalformedMessage, "{}", text);
                    proptest::prop_assert!(!rejection.message.is_empty());
                }
            }
        }
    }
}
