//! Who a caller is, and whom what they launch belongs to.
//!
//! API Gateway hands over what SigV4 verified: the caller's ARN (`userArn`) and IAM's unique id
//! for them (`userId`, which IAM policies know as `aws:userid`). The unique id is what ownership
//! compares: unlike an ARN, it is never reused when a user or role is deleted and made again.
//!
//! For an assumed role, both end in the role session name, and whoever assumes the role chooses
//! it. So on a role that several people share, the session name tells people apart only where
//! something pins it: IAM Identity Center sets it to the signed-in user, and a trust policy can
//! require `sts:RoleSessionName` to equal `${aws:username}` (or `sts:SourceIdentity`). Where
//! nothing does, anyone who may assume the role can call their session "alice"; the operator
//! then chooses [`OwnerMode::Role`], under which every session of a role is one owner (team
//! ownership) and the session name no longer matters. SECURITY.md says the same.
//!
//! When nobody chooses a session name, the SDK makes one up from the clock, so the same person
//! would be a new owner on every run and locked out of their own notebooks: in person mode
//! such requests are refused with a 401 that says how to set a name.

use crate::error::{Error, Result};

/// Whom a notebook belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OwnerMode {
    /// Each caller: an IAM user, or one session name of a role (the default).
    #[default]
    Person,
    /// Each role: every session of an assumed role owns what any of them launched.
    Role,
}

impl std::str::FromStr for OwnerMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "person" => Ok(OwnerMode::Person),
            "role" => Ok(OwnerMode::Role),
            other => Err(format!("{other:?} is neither \"person\" nor \"role\"")),
        }
    }
}

/// A caller as nbfleet acts for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What ownership compares: IAM's unique id (`aws:userid`) in person mode, the role's unique
    /// id in role mode; a Slack user's mapped id; locally, the user's name.
    pub id: String,
    /// Who that is, for people: an ARN (the role's, in role mode), or `slack:TEAM:USER`.
    pub name: String,
    /// Whether the operator made them an admin (they may act on any notebook).
    pub admin: bool,
}

impl Principal {
    /// A caller without an IAM identity of their own (a Slack user nobody mapped, the local
    /// stack's users): their name is their id.
    pub fn named(name: &str) -> Principal {
        Principal {
            id: name.to_string(),
            name: name.to_string(),
            admin: false,
        }
    }
}

/// An admin, as the operator names one (`NBFLEET_ADMINS`), checked when the configuration loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// `arn:aws:iam::123456789012:role/Name` (a path is allowed): any session of the role.
    Role { account: String, name: String },
    /// `arn:aws:sts::123456789012:assumed-role/Name/session`: that session name of the role.
    RoleSession {
        account: String,
        role: String,
        session: String,
    },
    /// `arn:aws:iam::123456789012:user/name` (a path is allowed).
    User { account: String, name: String },
}

impl std::str::FromStr for Admin {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let shape = || {
            format!(
                "{s:?} is not an admin nbfleet can check: give a role \
                 (arn:aws:iam::ACCOUNT:role/NAME), a role session \
                 (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION) or a user \
                 (arn:aws:iam::ACCOUNT:user/NAME)"
            )
        };
        let arn = Arn::parse(s).ok_or_else(shape)?;
        let account = arn.account.to_string();
        match (arn.service, arn.resource.split_once('/')) {
            ("iam", Some(("role", path))) => Ok(Admin::Role {
                account,
                name: last(path).ok_or_else(shape)?,
            }),
            ("iam", Some(("user", path))) => Ok(Admin::User {
                account,
                name: last(path).ok_or_else(shape)?,
            }),
            ("sts", Some(("assumed-role", rest))) => match rest.split_once('/') {
                Some((role, session))
                    if !role.is_empty() && !session.is_empty() && !session.contains('/') =>
                {
                    Ok(Admin::RoleSession {
                        account,
                        role: role.to_string(),
                        session: session.to_string(),
                    })
                }
                _ => Err(shape()),
            },
            _ => Err(shape()),
        }
    }
}

impl Admin {
    /// Whether the caller with this verified ARN is this admin.
    pub fn covers(&self, caller_arn: &str) -> bool {
        let Some(arn) = Arn::parse(caller_arn) else {
            return false;
        };
        let resource = arn.resource.split_once('/');
        match (self, arn.service, resource) {
            (Admin::Role { account, name }, "sts", Some(("assumed-role", rest))) => {
                account == arn.account && rest.split_once('/').is_some_and(|(role, _)| role == name)
            }
            (
                Admin::RoleSession {
                    account,
                    role,
                    session,
                },
                "sts",
                Some(("assumed-role", rest)),
            ) => account == arn.account && rest.split_once('/') == Some((role.as_str(), session.as_str())),
            (Admin::User { account, name }, "iam", Some(("user", path))) => {
                account == arn.account && last(path).as_deref() == Some(name.as_str())
            }
            _ => false,
        }
    }
}

/// The principal a request acts as, from what API Gateway verified: the caller's ARN and IAM's
/// unique id for them. Refused (401) when either is missing, when they disagree, or, in person
/// mode, when the role session name is one an SDK made up.
pub fn principal(arn: &str, user_id: &str, mode: OwnerMode, admins: &[Admin]) -> Result<Principal> {
    if arn.is_empty() || user_id.is_empty() {
        return Err(Error::Unauthorized(
            "the request carries no IAM identity; sign it with SigV4".into(),
        ));
    }
    let admin = admins.iter().any(|a| a.covers(arn));
    let assumed = Arn::parse(arn).and_then(|a| {
        let rest = a.resource.strip_prefix("assumed-role/")?;
        let (role, session) = rest.split_once('/')?;
        Some((a, role, session))
    });
    let Some((parsed, role, session)) = assumed else {
        // An IAM user, the account's root, a federated user, or (locally) a name.
        return Ok(Principal {
            id: user_id.to_string(),
            name: arn.to_string(),
            admin,
        });
    };
    let role_id = match user_id.split_once(':') {
        Some((role_id, id_session)) if id_session == session && !role_id.is_empty() => role_id,
        _ => {
            return Err(Error::Unauthorized(format!(
                "the request's identity does not hold together: {arn} with the unique id {user_id:?}"
            )));
        }
    };
    match mode {
        OwnerMode::Person => {
            check_session_name(session)?;
            Ok(Principal {
                id: user_id.to_string(),
                name: arn.to_string(),
                admin,
            })
        }
        OwnerMode::Role => Ok(Principal {
            id: role_id.to_string(),
            name: format!("arn:{}:iam::{}:role/{role}", parsed.partition, parsed.account),
            admin,
        }),
    }
}

/// The unique id IAM would give `arn`, where there is no IAM to ask (the local stack, tests):
/// `AROA-LOCAL-<role>:<session>` for an assumed role, the name itself otherwise.
pub fn local_unique_id(arn: &str) -> String {
    match arn
        .split_once(":assumed-role/")
        .and_then(|(_, r)| r.split_once('/'))
    {
        Some((role, session)) => format!("AROA-LOCAL-{role}:{session}"),
        None => arn.to_string(),
    }
}

/// The session names SDKs make up when none is set, each followed by a timestamp: botocore
/// (the AWS CLI, boto3) and the Rust SDK's assume-role, profile and web-identity providers.
const MADE_UP_SESSION_NAMES: [&str; 4] = [
    "botocore-session-",
    "assume-role-from-profile-",
    "assume-role-provider-",
    "web-identity-token-",
];

/// Refuses a role session name an SDK made up (it changes on every run).
fn check_session_name(session: &str) -> Result<()> {
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

/// The parts of an ARN nbfleet reads.
struct Arn<'a> {
    partition: &'a str,
    service: &'a str,
    account: &'a str,
    resource: &'a str,
}

impl<'a> Arn<'a> {
    fn parse(s: &'a str) -> Option<Arn<'a>> {
        let mut parts = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        (arn == "arn"
            && partition.starts_with("aws")
            && region.is_empty()
            && account_ok
            && !resource.is_empty())
        .then_some(Arn {
            partition,
            service,
            account,
            resource,
        })
    }
}

/// The last segment of an IAM path (`path/to/Name` → `Name`).
fn last(path: &str) -> Option<String> {
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/Team/alice";
    const ALICE_ID: &str = "AROAEXAMPLETEAM:alice";

    fn person(arn: &str, id: &str) -> Result<Principal> {
        principal(arn, id, OwnerMode::Person, &[])
    }

    #[test]
    fn a_session_name_an_sdk_made_up_is_refused_with_how_to_set_one() {
        for session in [
            "botocore-session-1733400000",
            "assume-role-from-profile-1733400000123",
            "assume-role-provider-1733400000123",
            "web-identity-token-1733400000123",
        ] {
            let arn = format!("arn:aws:sts::123456789012:assumed-role/Team/{session}");
            let err = person(&arn, &format!("AROAEXAMPLETEAM:{session}")).unwrap_err();
            assert_eq!(err.status(), 401, "{arn}");
            assert!(err.to_string().contains("role_session_name"), "{err}");
            // In role mode the session name does not matter: the role owns.
            let p = principal(&arn, &format!("AROAEXAMPLETEAM:{session}"), OwnerMode::Role, &[]).unwrap();
            assert_eq!(p.id, "AROAEXAMPLETEAM");
        }
    }

    #[test]
    fn the_owner_is_iams_unique_id_and_the_arn_only_names_it() {
        let p = person(ALICE_ARN, ALICE_ID).unwrap();
        assert_eq!(
            p,
            Principal {
                id: ALICE_ID.into(),
                name: ALICE_ARN.into(),
                admin: false
            }
        );
        // A role made again under the same name has a new unique id: not the old owner.
        let again = person(ALICE_ARN, "AROANEWROLEID:alice").unwrap();
        assert_ne!(again.id, p.id);
        let user = person("arn:aws:iam::123456789012:user/bob", "AIDAEXAMPLEBOB").unwrap();
        assert_eq!(
            (user.id.as_str(), user.name.as_str()),
            ("AIDAEXAMPLEBOB", "arn:aws:iam::123456789012:user/bob")
        );
        // Chosen session names that only look like an SDK's pass.
        assert!(
            person(
                "arn:aws:sts::123456789012:assumed-role/Team/botocore-session-alice",
                "AROAEXAMPLETEAM:botocore-session-alice"
            )
            .is_ok()
        );
    }

    #[test]
    fn in_role_mode_every_session_of_a_role_is_one_owner() {
        let alice = principal(ALICE_ARN, ALICE_ID, OwnerMode::Role, &[]).unwrap();
        let bob = principal(
            "arn:aws:sts::123456789012:assumed-role/Team/bob",
            "AROAEXAMPLETEAM:bob",
            OwnerMode::Role,
            &[],
        )
        .unwrap();
        assert_eq!(alice.id, bob.id);
        assert_eq!(alice.name, "arn:aws:iam::123456789012:role/Team");
        // Another role is another owner.
        let other = principal(
            "arn:aws:sts::123456789012:assumed-role/Other/alice",
            "AROAEXAMPLEOTHER:alice",
            OwnerMode::Role,
            &[],
        )
        .unwrap();
        assert_ne!(other.id, alice.id);
    }

    #[test]
    fn an_identity_that_does_not_hold_together_or_is_missing_is_refused() {
        for (arn, id) in [
            (ALICE_ARN, "AROAEXAMPLETEAM:bob"),
            (ALICE_ARN, "AROAEXAMPLETEAM"),
            (ALICE_ARN, ":alice"),
            (ALICE_ARN, ""),
            ("", ALICE_ID),
        ] {
            let err = person(arn, id).unwrap_err();
            assert_eq!(err.status(), 401, "{arn} {id}");
        }
    }

    #[test]
    fn admins_are_checked_when_read_and_cover_what_they_name() {
        let role: Admin = "arn:aws:iam::123456789012:role/ops/Platform".parse().unwrap();
        let session: Admin = "arn:aws:sts::123456789012:assumed-role/Team/carol"
            .parse()
            .unwrap();
        let user: Admin = "arn:aws:iam::123456789012:user/people/dave".parse().unwrap();
        assert!(role.covers("arn:aws:sts::123456789012:assumed-role/Platform/anyone"));
        assert!(!role.covers("arn:aws:sts::210987654321:assumed-role/Platform/anyone"));
        assert!(!role.covers("arn:aws:sts::123456789012:assumed-role/Team/anyone"));
        assert!(session.covers("arn:aws:sts::123456789012:assumed-role/Team/carol"));
        assert!(!session.covers("arn:aws:sts::123456789012:assumed-role/Team/carolyn"));
        assert!(user.covers("arn:aws:iam::123456789012:user/people/dave"));
        assert!(user.covers("arn:aws:iam::123456789012:user/dave"));
        assert!(!user.covers("arn:aws:sts::123456789012:assumed-role/dave/dave"));
        let p = principal(
            "arn:aws:sts::123456789012:assumed-role/Platform/erin",
            "AROAPLATFORM:erin",
            OwnerMode::Person,
            &[role],
        )
        .unwrap();
        assert!(p.admin);
        for bad in [
            "alice",
            "arn:aws:iam::123456789012:group/admins",
            "arn:aws:iam::12345:role/Platform",
            "arn:aws:sts::123456789012:assumed-role/Team",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:sts::123456789012:assumed-role/Team/carol/extra",
        ] {
            let err = bad.parse::<Admin>().unwrap_err();
            assert!(err.contains("arn:aws:iam::ACCOUNT:role/NAME"), "{bad}: {err}");
        }
    }

    #[test]
    fn owner_modes_are_read_by_name() {
        assert_eq!("person".parse::<OwnerMode>(), Ok(OwnerMode::Person));
        assert_eq!("role".parse::<OwnerMode>(), Ok(OwnerMode::Role));
        assert!("team".parse::<OwnerMode>().is_err());
    }
}
