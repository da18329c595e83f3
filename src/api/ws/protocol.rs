//! The two GraphQL-over-WebSocket sub-protocols: `graphql-transport-ws` (the graphql-ws
//! library's protocol) and the legacy `graphql-ws` (subscriptions-transport-ws). Parsing of
//! client messages and the shape of server messages; the state machine is in `connection`.

use serde::Deserialize;
use serde_json::{json, Value};

/// Which sub-protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    TransportWs,
    Legacy,
}

impl Protocol {
    pub const TRANSPORT_WS: &'static str = "graphql-transport-ws";
    pub const LEGACY: &'static str = "graphql-ws";

    /// The protocol a negotiated `Sec-WebSocket-Protocol` names; none offered means the
    /// current protocol.
    pub fn from_header(selected: Option<&str>) -> Protocol {
        match selected {
            Some(Self::LEGACY) => Protocol::Legacy,
            _ => Protocol::TransportWs,
        }
    }
}

/// A client message, whichever protocol it came in.
#[derive(Debug)]
pub enum ClientMessage {
    Init(Option<Value>),
    Ping(Option<Value>),
    Pong,
    Subscribe {
        id: String,
        payload: Value,
    },
    Complete {
        id: String,
    },
    /// Legacy `connection_terminate`.
    Terminate,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

/// Parses a text frame; the error is the reason sent with close code 4400.
pub fn parse(protocol: Protocol, text: &str) -> Result<ClientMessage, String> {
    let raw: Raw = serde_json::from_str(text).map_err(|_| "Invalid message received".to_owned())?;
    let id = |raw: &Raw| match &raw.id {
        Some(id) if !id.is_empty() => Ok(id.clone()),
        _ => Err(format!("\"{}\" message expects an \"id\"", raw.kind)),
    };
    let object_payload = |raw: &Raw| match &raw.payload {
        None | Some(Value::Null) => Ok(None),
        Some(p @ Value::Object(_)) => Ok(Some(p.clone())),
        Some(_) => Err(format!(
            "\"{}\" message expects the \"payload\" to be an object",
            raw.kind
        )),
    };
    match (protocol, raw.kind.as_str()) {
        (_, "connection_init") => Ok(ClientMessage::Init(object_payload(&raw)?)),
        (Protocol::TransportWs, "ping") => Ok(ClientMessage::Ping(object_payload(&raw)?)),
        (Protocol::TransportWs, "pong") => Ok(ClientMessage::Pong),
        (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
            let id = id(&raw)?;
            match raw.payload {
                Some(payload @ Value::Object(_))
                    if payload.get("query").is_some_and(Value::is_string) =>
                {
                    Ok(ClientMessage::Subscribe { id, payload })
                }
                _ => Err(format!(
                    "\"{}\" message expects a payload with a \"query\" string",
                    raw.kind
                )),
            }
        }
        (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
            Ok(ClientMessage::Complete { id: id(&raw)? })
        }
        (Protocol::Legacy, "connection_terminate") => Ok(ClientMessage::Terminate),
        (_, other) => Err(format!("Unexpected message of type {other:?} received")),
    }
}

pub fn ack() -> String {
    json!({ "type": "connection_ack" }).to_string()
}

pub fn pong(payload: Option<Value>) -> String {
    match payload {
        Some(p) => json!({ "type": "pong", "payload": p }),
        None => json!({ "type": "pong" }),
    }
    .to_string()
}

/// An execution result for operation `id`. The result is serialized straight into the frame,
/// so its fields keep the order of the selection (a `serde_json::Value` would sort them).
pub fn next(protocol: Protocol, id: &str, payload: &async_graphql::Response) -> String {
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a str,
        payload: &'a async_graphql::Response,
    }
    let kind = match protocol {
        Protocol::TransportWs => "next",
        Protocol::Legacy => "data",
    };
    serde_json::to_string(&Frame { kind, id, payload }).unwrap_or_else(|e| {
        tracing::error!(error = %e, "failed to serialize a result");
        let errors = json!([{ "message": "internal error", "extensions": { "code": "INTERNAL" } }]);
        error(protocol, id, errors)
    })
}

/// Operation `id` failed before it produced any result (graphql-transport-ws sends a list of
/// errors; the legacy protocol a single one).
pub fn error(protocol: Protocol, id: &str, errors: Value) -> String {
    let payload = match (protocol, errors) {
        (Protocol::Legacy, Value::Array(mut list)) if !list.is_empty() => list.swap_remove(0),
        (_, errors) => errors,
    };
    json!({ "type": "error", "id": id, "payload": payload }).to_string()
}

pub fn complete(id: &str) -> String {
    json!({ "type": "complete", "id": id }).to_string()
}

/// Legacy only: the server refuses the connection.
pub fn connection_error(message: &str) -> String {
    json!({ "type": "connection_error", "payload": { "message": message } }).to_string()
}

/// Legacy only: keep-alive.
pub fn keep_alive() -> String {
    json!({ "type": "ka" }).to_string()
}

/// Close codes of graphql-transport-ws.
pub mod close {
    pub const INVALID_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
    pub const GOING_AWAY: u16 = 1001;
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;

    /// The most bytes a close frame's reason may have (RFC 6455: 125 less the code).
    pub const MAX_REASON: usize = 123;

    /// `reason` cut to fit a close frame, on a character boundary.
    pub fn reason(reason: &str) -> String {
        if reason.len() <= MAX_REASON {
            return reason.to_owned();
        }
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason[..end].to_owned()
    }
}

/// The credential a `connection_init` payload carries: `Authorization` (any case, with or
/// without `Bearer `), `token`, or `headers.Authorization` (as some clients nest it).
pub fn credential(payload: &Value) -> Option<&str> {
    let object = payload.as_object()?;
    for (key, value) in object {
        if key.eq_ignore_ascii_case("authorization") || key == "token" || key == "authToken" {
            return value.as_str();
        }
    }
    let headers = object.get("headers")?.as_object()?;
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_needs_an_id_and_a_query() {
        let p = Protocol::TransportWs;
        assert!(matches!(
            parse(
                p,
                r#"{"type":"subscribe","id":"1","payload":{"query":"{ counts { unread } }"}}"#
            ),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(parse(p, r#"{"type":"subscribe","payload":{"query":"{ a }"}}"#).is_err());
        assert!(parse(p, r#"{"type":"subscribe","id":"1","payload":{}}"#).is_err());
        assert!(parse(
            p,
            r#"{"type":"start","id":"1","payload":{"query":"{ a }"}}"#
        )
        .is_err());
        assert!(parse(p, "not json").is_err());
    }

    #[test]
    fn the_legacy_protocol_has_its_own_names() {
        let p = Protocol::Legacy;
        assert!(matches!(
            parse(
                p,
                r#"{"type":"start","id":"a","payload":{"query":"{ a }"}}"#
            ),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(matches!(
            parse(p, r#"{"type":"stop","id":"a"}"#),
            Ok(ClientMessage::Complete { .. })
        ));
        assert!(matches!(
            parse(p, r#"{"type":"connection_terminate"}"#),
            Ok(ClientMessage::Terminate)
        ));
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close::reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close::reason(&long);
        assert!(cut.len() <= close::MAX_REASON && long.starts_with(&cut));
        assert_eq!(cut.chars().count(), 61);
    }

    #[test]
    fn credentials_are_found_where_clients_put_them() {
        assert_eq!(
            credential(&json!({"Authorization": "Bearer x"})),
            Some("Bearer x")
        );
        assert_eq!(credential(&json!({"token": "y"})), Some("y"));
        assert_eq!(
            credential(&json!({"headers": {"authorization": "Bearer z"}})),
            Some("Bearer z")
        );
        assert_eq!(credential(&json!({"other": 1})), None);
    }
}
