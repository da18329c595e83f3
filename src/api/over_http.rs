//! GraphQL over HTTP, as its spec (graphql.github.io/graphql-over-http) has it: which requests
//! are well-formed (a JSON body POSTed as `application/json`, or a query's parameters in the
//! URL of a GET), which media type answers (`Accept`), and which status each outcome gets.
//!
//! | outcome | `application/graphql-response+json` | `application/json` |
//! |---|---|---|
//! | executed (data, perhaps with field errors) | 200 | 200 |
//! | not executed: parse, validation or variable errors (no `data`) | 400 | 200 |
//! | not a GraphQL request: bad JSON, no `query`, wrong parameter types | 400 | 400 |
//! | a bad token, or no token where one is needed | 401 | 401 |
//! | a mutation sent with GET | 405 | 405 |
//! | no acceptable media type in `Accept` | 406 | 406 |
//! | a body that is not `application/json` (or has no `Content-Type`) | 415 | 415 |
//! | the database is unreachable | 503 + `Retry-After` | 503 + `Retry-After` |

use std::collections::BTreeMap;

use async_graphql::{Response as GraphqlResponse, ServerError};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{code, error_body, ApiError};
use super::request_id::RequestId;

/// The media types a response can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/graphql-response+json`: the status tells whether the request was executed.
    GraphqlResponse,
    /// `application/json`: what clients written before the spec expect, and the default.
    Json,
}

impl MediaType {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        })
    }

    /// The media type `Accept` prefers (by `q`, then by order), `application/json` when there
    /// is no `Accept` or it accepts anything; `None` when it names nothing this server speaks.
    pub fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
        let mut any = false;
        let mut best: Option<(f32, MediaType)> = None;
        for value in headers.get_all(header::ACCEPT) {
            any = true;
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let mut parts = range.split(';');
                let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                    .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok());
                let Some(q) = q.filter(|q| *q > 0.0) else {
                    continue;
                };
                let media = match essence.as_str() {
                    "application/graphql-response+json" => MediaType::GraphqlResponse,
                    "application/json" | "application/*" | "*/*" => MediaType::Json,
                    _ => continue,
                };
                if best.is_none_or(|(top, _)| q > top) {
                    best = Some((q, media));
                }
            }
        }
        match best {
            Some((_, media)) => Some(media),
            None if !any => Some(MediaType::Json),
            None => None,
        }
    }
}

/// `Content-Type` of a POSTed request: JSON in UTF-8, or a 415 that says what to send.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::bad_input(
            "Content-Type",
            "the request has no Content-Type: send the GraphQL request as application/json",
        ));
    };
    let value = value.to_str().unwrap_or("");
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"'));
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_input(
            "Content-Type",
            format!("Content-Type {value:?} is not supported: send the GraphQL request as application/json"),
        ));
    }
    if charset.is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
        return Err(ApiError::bad_input(
            "Content-Type",
            format!("Content-Type {value:?} is not supported: the body must be UTF-8"),
        ));
    }
    Ok(())
}

/// Seconds a client is asked to wait before retrying a request the server could not serve.
const RETRY_AFTER_SECS: &str = "1";

/// A refusal before the request reached GraphQL: `status` and the error, in `media`.
pub fn refuse(media: MediaType, status: StatusCode, error: &ApiError, id: &RequestId) -> Response {
    let mut response = body(media, status, &error_body(error, id));
    match error {
        ApiError::Unavailable(_) => retry_later(&mut response),
        ApiError::Unauthenticated(_) => challenge(&mut response),
        _ => {}
    }
    response
}

/// A credential that could not be checked is the server's failure, not the client's: 503
/// with `Retry-After`, never a 401 that tells a client its key is bad.
pub fn refuse_credentials(media: MediaType, error: &ApiError, id: &RequestId) -> Response {
    let status = match error {
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    refuse(media, status, error, id)
}

/// The response to an executed (or refused) GraphQL request. `executed` says whether
/// execution began: when it did not, the result has no `data` entry. `anonymous` callers
/// whose request needed a token get 401, as a bad token does.
pub fn answer(
    media: MediaType,
    response: &GraphqlResponse,
    executed: bool,
    anonymous: bool,
) -> Response {
    let has = |wanted: &str| {
        response.errors.iter().any(|e| {
            e.extensions.as_ref().and_then(|x| x.get("code"))
                == Some(&async_graphql::Value::from(wanted))
        })
    };
    if has(code::UNAVAILABLE) {
        let mut http = body(media, StatusCode::SERVICE_UNAVAILABLE, response);
        retry_later(&mut http);
        return http;
    }
    if anonymous && has(code::UNAUTHENTICATED) {
        let mut http = body(media, StatusCode::UNAUTHORIZED, &errors_only(response));
        challenge(&mut http);
        return http;
    }
    if !executed {
        let status = match media {
            MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
            MediaType::Json => StatusCode::OK,
        };
        return body(media, status, &errors_only(response));
    }
    body(media, StatusCode::OK, response)
}

/// A result without `data`: what the GraphQL spec has for errors raised before execution.
#[derive(Serialize)]
struct ErrorsOnly<'a> {
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, async_graphql::Value>,
}

fn errors_only(response: &GraphqlResponse) -> ErrorsOnly<'_> {
    ErrorsOnly {
        errors: &response.errors,
        extensions: &response.extensions,
    }
}

fn body(media: MediaType, status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, media.content_type())],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn retry_later(response: &mut Response) {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
}

/// RFC 6750's challenge on a 401: the API takes bearer tokens (a JWT or an API key).
fn challenge(response: &mut Response) {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"belfry\""),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> Option<MediaType> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        MediaType::negotiate(&headers)
    }

    #[test]
    fn accept_picks_the_preferred_media_type() {
        use MediaType::*;
        assert_eq!(accept(&[]), Some(Json));
        assert_eq!(accept(&["*/*"]), Some(Json));
        assert_eq!(accept(&["application/json"]), Some(Json));
        assert_eq!(
            accept(&["application/graphql-response+json"]),
            Some(GraphqlResponse)
        );
        assert_eq!(
            accept(&["application/graphql-response+json, application/json;q=0.9"]),
            Some(GraphqlResponse)
        );
        assert_eq!(
            accept(&["application/json, application/graphql-response+json"]),
            Some(Json)
        );
        assert_eq!(
            accept(&[
                "application/json;q=0.5",
                "application/graphql-response+json"
            ]),
            Some(GraphqlResponse)
        );
        assert_eq!(
            accept(&["application/graphql-response+json;q=0, application/json"]),
            Some(Json)
        );
        assert_eq!(accept(&["text/html"]), None);
        assert_eq!(accept(&["application/graphql-response+json;q=0"]), None);
    }

    fn content_type(value: Option<&str>) -> Result<(), ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(v) = value {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        }
        check_content_type(&headers)
    }

    #[test]
    fn only_json_in_utf8_is_a_request() {
        assert!(content_type(Some("application/json")).is_ok());
        assert!(content_type(Some("Application/JSON; charset=UTF-8")).is_ok());
        assert!(content_type(Some("application/json; charset=\"utf-8\"")).is_ok());
        assert!(content_type(None).is_err());
        assert!(content_type(Some("text/plain")).is_err());
        assert!(content_type(Some("application/graphql")).is_err());
        assert!(content_type(Some("application/json; charset=utf-16")).is_err());
    }
}
