//! Maps AWS SDK errors to core errors by their error code, in one place.
//!
//! Matching on the code (not the modeled variant) also covers errors that the SDK reports as
//! generic, such as those mocked without a modeled shape (aws-smithy-mocks reports `.code()` only
//! on errors built with error metadata).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use nbfleet_core::Error;
use std::fmt::Debug;

/// Error codes AWS uses for throttling, across EC2, SSM and DynamoDB.
const THROTTLING: [&str; 6] = [
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "TooManyUpdates",
];

/// The error code of an SDK error, if the service gave one.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// A core error for an SDK failure that the caller has no specific answer for.
/// `what` says what was being done, for the log; the user sees a plain sentence.
pub fn map<E: ProvideErrorMetadata + Debug, R: Debug>(err: SdkError<E, R>, what: &str) -> Error {
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            tracing::warn!(error = ?err, "{what}: AWS unreachable");
            Error::Unavailable(format!(
                "AWS did not answer while trying to {what}; retry shortly"
            ))
        }
        _ => match code(&err) {
            Some(c) if THROTTLING.contains(&c) => {
                tracing::warn!(code = c, "{what}: throttled");
                Error::Throttled(format!("AWS is throttling requests to {what}; retry shortly"))
            }
            _ => {
                tracing::error!(error = ?err, "{what} failed");
                Error::internal(format!("{what}: {err:?}"))
            }
        },
    }
}
