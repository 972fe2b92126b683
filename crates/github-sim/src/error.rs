//! GitHub-shaped API errors: `{"message": …, "documentation_url": …}` with the right status.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// GitHub's `errors` array on 422 validation failures.
    pub errors: Option<Value>,
    /// The answering operation's documentation page (GitHub's generic REST page when unset).
    pub documentation_url: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            errors: None,
            documentation_url: None,
        }
    }

    pub fn not_found() -> Self {
        ApiError::new(404, "Not Found")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    /// 422 "Validation Failed" with one custom error, as GitHub words most of them.
    pub fn validation(resource: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: 422,
            message: "Validation Failed".into(),
            errors: Some(json!([{"resource": resource, "code": "custom", "message": message.into()}])),
            documentation_url: None,
        }
    }

    /// 422 for a body that breaks the operation's schema, worded as GitHub's schema validator
    /// does: `Invalid request.` and one line per violation.
    pub fn invalid_request(violations: &[String], documentation_url: &str) -> Self {
        ApiError {
            status: 422,
            message: format!("Invalid request.\n\n{}", violations.join("\n")),
            errors: None,
            documentation_url: Some(documentation_url.to_string()),
        }
    }

    /// Points the error at the operation that answered it, unless it already names a page.
    pub fn documented(mut self, documentation_url: &str) -> Self {
        self.documentation_url
            .get_or_insert_with(|| documentation_url.to_string());
        self
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::new(422, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, message)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError::new(500, format!("github-sim internal error: {err}"))
    }

    pub fn body(&self) -> Value {
        let mut v = json!({
            "message": self.message,
            "documentation_url": self.documentation_url.as_deref().unwrap_or("https://docs.github.com/rest"),
            "status": self.status.to_string(),
        });
        if let (Some(errors), Some(obj)) = (&self.errors, v.as_object_mut()) {
            obj.insert("errors".into(), errors.clone());
        }
        v
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status).json(self.body())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)?;
        if let Some(errors) = &self.errors {
            write!(f, " {errors}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
