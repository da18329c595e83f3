//! The API's one error type, mapped to GraphQL `extensions.code`. Internal causes are logged
//! once, where they are turned into [`ApiError::Internal`], and never sent to clients.

use async_graphql::ErrorExtensions;

use super::request_id::RequestId;
use crate::auth::AuthError;
use crate::domain::{DomainError, InputError};
use crate::engine::CommandError;

/// Every code a client can see in `extensions.code`.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The database (or another part the server needs) is unreachable: retry shortly.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const INTERNAL: &str = "INTERNAL";
}

const UNREACHABLE: &str = "the database is unreachable; retry shortly";

/// An error as a client sees it. Deliberately not `Display`: async-graphql converts any
/// `Display` type into an error without a code, so this type converts only through its own
/// `From`, which always sets `extensions.code`.
#[derive(Debug, Clone)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadInput {
        field: Option<String>,
        message: String,
    },
    Conflict(String),
    RateLimited {
        message: String,
        /// A machine-readable reason, e.g. `SLOW_SUBSCRIBER`.
        reason: &'static str,
    },
    /// An infrastructure failure worth retrying: HTTP 503 with `Retry-After`.
    Unavailable(&'static str),
    Internal(&'static str),
}

impl ApiError {
    /// The message shown to the client.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m) => m.clone(),
            ApiError::BadInput { message, .. } | ApiError::RateLimited { message, .. } => {
                message.clone()
            }
            ApiError::Unavailable(m) | ApiError::Internal(m) => (*m).to_owned(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => code::UNAUTHENTICATED,
            ApiError::Forbidden(_) => code::FORBIDDEN,
            ApiError::NotFound(_) => code::NOT_FOUND,
            ApiError::BadInput { .. } => code::BAD_USER_INPUT,
            ApiError::Conflict(_) => code::CONFLICT,
            ApiError::RateLimited { .. } => code::RATE_LIMITED,
            ApiError::Unavailable(_) => code::UNAVAILABLE,
            ApiError::Internal(_) => code::INTERNAL,
        }
    }

    /// Logs an infrastructure failure with its whole chain and returns the opaque error:
    /// [`ApiError::Unavailable`] when the database could not be reached.
    pub fn internal(error: anyhow::Error) -> ApiError {
        if crate::eventlog::db::is_unreachable(&error) {
            tracing::warn!(
                error = format!("{error:#}"),
                "request failed: database unreachable"
            );
            return ApiError::Unavailable(UNREACHABLE);
        }
        tracing::error!(error = format!("{error:#}"), "request failed");
        ApiError::Internal("internal error")
    }

    pub fn bad_input(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadInput {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::BadInput {
            message: e.to_string(),
            field: Some(e.field.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable => {
                ApiError::Unavailable("credentials could not be checked right now; retry shortly")
            }
            other => ApiError::Unauthenticated(other.to_string()),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Rejected(DomainError::NotificationNotFound(id)) => {
                ApiError::NotFound(format!("notification {id} not found"))
            }
            CommandError::Rejected(DomainError::DeliveryNotFound(id)) => {
                ApiError::NotFound(format!("delivery {id} not found"))
            }
            CommandError::Rejected(e @ DomainError::DeliveryNotFailed(_)) => {
                ApiError::Conflict(e.to_string())
            }
            CommandError::Rejected(e @ DomainError::ScheduleNotFound(_)) => {
                ApiError::NotFound(e.to_string())
            }
            CommandError::Rejected(e @ DomainError::SchedulePublished(_)) => {
                ApiError::Conflict(e.to_string())
            }
            CommandError::Rejected(e @ DomainError::IdempotencyConflict(_)) => {
                ApiError::Conflict(e.to_string())
            }
            CommandError::ShuttingDown => {
                ApiError::Unavailable("the server is shutting down; retry on another node")
            }
            CommandError::Unavailable => ApiError::Unavailable(UNREACHABLE),
            // The appender logged the cause.
            CommandError::Internal => ApiError::Internal("internal error"),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", code);
            match &e {
                ApiError::BadInput {
                    field: Some(field), ..
                } => ext.set("field", field.as_str()),
                ApiError::RateLimited { reason, .. } => ext.set("reason", *reason),
                _ => {}
            }
        })
    }
}

/// One error object as a client sees it, for failures outside GraphQL execution (auth, body
/// size, a socket's limits): message, `extensions.code` (and `field` or `reason` where the
/// error has one) and `extensions.requestId`.
pub fn error_object(error: &ApiError, request: &RequestId) -> serde_json::Value {
    let mut extensions = serde_json::json!({ "code": error.code(), "requestId": request.as_str() });
    match error {
        ApiError::BadInput {
            field: Some(field), ..
        } => extensions["field"] = field.as_str().into(),
        ApiError::RateLimited { reason, .. } => extensions["reason"] = (*reason).into(),
        _ => {}
    }
    serde_json::json!({ "message": error.message(), "extensions": extensions })
}

/// A complete GraphQL error response body, for failures before execution (auth, body size).
pub fn error_body(error: &ApiError, request: &RequestId) -> serde_json::Value {
    serde_json::json!({ "errors": [error_object(error, request)] })
}
