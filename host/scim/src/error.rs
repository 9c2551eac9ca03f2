//! The one error shape every SCIM response uses (RFC 7644 §3.12).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::repository::RepositoryError;

/// The schema URN of a SCIM error message.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` values RFC 7644 §3.12 defines, for 400 and 409 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    /// The keyword as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }
}

/// What went wrong while answering a SCIM request; every variant renders as a
/// SCIM error message with its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    /// The request was understood but is wrong; `scim_type` says how.
    #[error("{detail}")]
    BadRequest {
        scim_type: Option<ScimType>,
        detail: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Stored changes could not be handed over: the sink takes nothing at
    /// the moment.
    #[error("{0}")]
    Unavailable(String),
    #[error("storage failed")]
    Repository(#[from] RepositoryError),
}

impl ScimError {
    pub(crate) fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }

    pub(crate) fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Repository(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn scim_type(&self) -> Option<ScimType> {
        match self {
            Self::BadRequest { scim_type, .. } => *scim_type,
            Self::Conflict(_) => Some(ScimType::Uniqueness),
            _ => None,
        }
    }

    /// The error as a SCIM error message body.
    pub fn to_body(&self) -> serde_json::Value {
        let detail = match self {
            // Storage internals stay in the log.
            Self::Repository(_) => "the resource store failed; try again later".to_owned(),
            other => other.to_string(),
        };
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status().as_u16().to_string(),
            "detail": detail,
        });
        if let (Some(kind), Some(map)) = (self.scim_type(), body.as_object_mut()) {
            map.insert("scimType".into(), kind.as_str().into());
        }
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        match &self {
            Self::Repository(source) => {
                tracing::error!(error = %source, "SCIM resource store failed");
            }
            other => {
                tracing::debug!(status = %other.status(), detail = %other, "SCIM request refused")
            }
        }
        let status = self.status();
        let mut response = crate::http::scim_json(status, &self.to_body());
        if status == StatusCode::UNAUTHORIZED
            && let Ok(value) = axum::http::HeaderValue::from_str("Bearer realm=\"org-mesh\"")
        {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
