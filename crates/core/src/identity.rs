//! Who a caller is. API Gateway hands over the caller's IAM ARN, verified by SigV4, and nbfleet
//! makes it the owner of what the caller launches. For an assumed role the ARN ends in the role
//! session name, which whoever assumes the role chooses; when nobody chooses it, the SDK makes
//! one up from the clock, so the same person is a new owner on every run and is locked out of
//! their own notebooks. Such requests are refused with a 401 that says how to set a name.

use crate::error::{Error, Result};

/// The session names SDKs make up when none is set, each followed by a timestamp: botocore
/// (the AWS CLI, boto3) and the Rust SDK's assume-role, profile and web-identity providers.
const MADE_UP_SESSION_NAMES: [&str; 4] = [
    "botocore-session-",
    "assume-role-from-profile-",
    "assume-role-provider-",
    "web-identity-token-",
];

/// Refuses a caller whose role session name an SDK made up (it changes on every run).
pub fn check_caller(arn: &str) -> Result<()> {
    let Some(session) = arn
        .split_once(":assumed-role/")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, session)| session)
    else {
        return Ok(());
    };
    let made_up = MADE_UP_SESSION_NAMES.iter().any(|prefix| {
        session
            .strip_prefix(prefix)
            .is_some_and(|ts| !ts.is_empty() && ts.chars().all(|c| c.is_ascii_digit()))
    });
    if made_up {
        return Err(Error::Unauthorized(format!(
            "your role session name {session:?} was made up by your SDK and changes on every run, \
             so nbfleet cannot tell that it is you: set role_session_name for the role's profile \
             in ~/.aws/config (your user name, say) and try again"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_name_an_sdk_made_up_is_refused_with_how_to_set_one() {
        for arn in [
            "arn:aws:sts::123456789012:assumed-role/Team/botocore-session-1733400000",
            "arn:aws:sts::123456789012:assumed-role/Team/assume-role-from-profile-1733400000123",
            "arn:aws:sts::123456789012:assumed-role/Team/assume-role-provider-1733400000123",
            "arn:aws:sts::123456789012:assumed-role/Team/web-identity-token-1733400000123",
        ] {
            let err = check_caller(arn).unwrap_err();
            assert_eq!(err.status(), 401, "{arn}");
            assert!(err.to_string().contains("role_session_name"), "{err}");
        }
    }

    #[test]
    fn users_chosen_session_names_and_non_role_callers_pass() {
        for arn in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:sts::123456789012:assumed-role/Team/alice",
            "arn:aws:sts::123456789012:assumed-role/Team/botocore-session-alice",
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_abc/alice@example.com",
            "local",
        ] {
            assert!(check_caller(arn).is_ok(), "{arn}");
        }
    }
}
