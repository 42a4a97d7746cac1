//! Jupyter credentials, made in Rust so no password ever reaches an instance in clear.
//!
//! Two hash formats are understood by jupyter_server 2.x (`PasswordIdentityProvider`):
//! - `argon2:<PHC string>`, Jupyter's current default, which nbfleet makes;
//! - `sha1:<12 hex salt>:<40 hex>`, the tutorial's `IPython.lib.passwd()` format, which users
//!   may still bring as a ready-made hash.
//!
//! Randomness (salts, tokens) is passed in by the caller: this crate does no I/O.

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use sha1::{Digest, Sha1};
use std::fmt;
use std::sync::LazyLock;

/// A string that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself, for the one place that must store or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Hashes `password` as `argon2:$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
pub fn hash_argon2(password: &str, salt: &[u8; 16]) -> Secret {
    let phc = argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt)
        .expect("a 16-byte salt and default parameters are always valid");
    Secret(format!("argon2:{phc}"))
}

/// Hashes `password` in the tutorial's format: `sha1:<salt>:<hex sha1(password + salt)>`.
pub fn hash_sha1(password: &str, salt: &[u8; 6]) -> Secret {
    Secret(sha1_with_salt(password, &hex::encode(salt)))
}

fn sha1_with_salt(password: &str, salt_hex: &str) -> String {
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(salt_hex.as_bytes());
    format!("sha1:{salt_hex}:{}", hex::encode(h.finalize()))
}

/// A Jupyter token: 48 lowercase hex characters from 24 random bytes.
pub fn token(random: &[u8; 24]) -> Secret {
    Secret(hex::encode(random))
}

static SHA1_HASH: LazyLock<regex_lite::Regex> =
    LazyLock::new(|| regex_lite::Regex::new(r"^sha1:[0-9a-f]{12}:[0-9a-f]{40}$").unwrap());
static ARGON2_HASH: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
    regex_lite::Regex::new(
        r"^argon2:\$argon2(id|i|d)\$v=19\$m=[0-9]{1,7},t=[0-9]{1,3},p=[0-9]{1,3}\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}$",
    )
    .unwrap()
});

/// Whether `hash` is a well-formed Jupyter hash that jupyter_server will accept.
///
/// A malformed argon2 hash lets Jupyter start but makes every login answer 500, so a
/// user-supplied hash is checked here, including that its PHC string parses.
pub fn is_valid_hash(hash: &str) -> bool {
    check_hash(hash).is_ok()
}

/// The argon2 parameters a supplied hash may have: at most 256 MiB, 10 passes and 8 lanes (so
/// that a login cannot exhaust the instance), and no weaker than OWASP's minimum (19 MiB with
/// 2 passes, or a trade of memory for passes down to 7 MiB with 5: memory × passes at least
/// 35,840 KiB).
const ARGON2_MAX_M_KIB: u32 = 256 * 1024;
const ARGON2_MAX_T: u32 = 10;
const ARGON2_MAX_P: u32 = 8;
const ARGON2_MIN_M_KIB: u32 = 7 * 1024;
const ARGON2_MIN_M_TIMES_T: u32 = 35_840;

/// [`is_valid_hash`], with why not.
pub fn check_hash(hash: &str) -> std::result::Result<(), String> {
    if SHA1_HASH.is_match(hash) {
        return Ok(());
    }
    let shape = || "must be a Jupyter hash: argon2:$argon2id$… or sha1:<12 hex salt>:<40 hex>".to_string();
    if !ARGON2_HASH.is_match(hash) {
        return Err(shape());
    }
    let phc = PasswordHash::new(&hash["argon2:".len()..]).map_err(|_| shape())?;
    let param = |name: &str| phc.params.get_decimal(name).unwrap_or(0);
    let (m, t, p) = (param("m"), param("t"), param("p"));
    if m > ARGON2_MAX_M_KIB || t > ARGON2_MAX_T || p > ARGON2_MAX_P || p == 0 {
        return Err(format!(
            "asks argon2 for m={m},t={t},p={p}: at most m={ARGON2_MAX_M_KIB} (256 MiB), \
             t={ARGON2_MAX_T}, p={ARGON2_MAX_P}, so that a login cannot exhaust the instance"
        ));
    }
    if m < ARGON2_MIN_M_KIB || m.saturating_mul(t) < ARGON2_MIN_M_TIMES_T {
        return Err(format!(
            "asks argon2 for m={m},t={t}, weaker than OWASP's minimum \
             (m=19456,t=2, or memory × passes at least {ARGON2_MIN_M_TIMES_T} with m at least {ARGON2_MIN_M_KIB})"
        ));
    }
    Ok(())
}

/// Whether `password` matches `hash` (either format), as Jupyter would check it.
pub fn verify(password: &str, hash: &str) -> bool {
    if let Some(rest) = hash.strip_prefix("argon2:") {
        return PasswordHash::new(rest).is_ok_and(|phc| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &phc)
                .is_ok()
        });
    }
    match hash.split(':').collect::<Vec<_>>()[..] {
        ["sha1", salt, _] => sha1_with_salt(password, salt) == hash,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_the_jupyter_server_test_vector() {
        assert_eq!(
            sha1_with_salt("mypassword", "0e112c3ddfce"),
            "sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a"
        );
        let salt = [0x0e, 0x11, 0x2c, 0x3d, 0xdf, 0xce];
        assert_eq!(
            hash_sha1("mypassword", &salt).expose(),
            "sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a"
        );
    }

    #[test]
    fn argon2_hash_has_jupyters_prefix_and_verifies() {
        let hash = hash_argon2("correct horse", &[7; 16]);
        assert!(
            hash.expose()
                .starts_with("argon2:$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash:?}"
        );
        assert!(is_valid_hash(hash.expose()));
        assert!(verify("correct horse", hash.expose()));
        assert!(!verify("wrong horse", hash.expose()));
    }

    #[test]
    fn different_salts_give_different_hashes() {
        assert_ne!(
            hash_argon2("pw-pw-pw", &[1; 16]),
            hash_argon2("pw-pw-pw", &[2; 16])
        );
        assert_ne!(hash_sha1("pw-pw-pw", &[1; 6]), hash_sha1("pw-pw-pw", &[2; 6]));
    }

    #[test]
    fn sha1_hash_verifies() {
        let hash = hash_sha1("tutorial pw", &[9; 6]);
        assert!(is_valid_hash(hash.expose()));
        assert!(verify("tutorial pw", hash.expose()));
        assert!(!verify("other", hash.expose()));
    }

    #[test]
    fn the_hash_of_a_hostile_password_contains_none_of_it() {
        let pw = "a'b\"c$(rm -rf /)`x`";
        for hash in [hash_argon2(pw, &[3; 16]), hash_sha1(pw, &[3; 6])] {
            let h = hash.expose();
            assert!(
                !h.contains('\'') && !h.contains('"') && !h.contains('`') && !h.contains('('),
                "{h}"
            );
        }
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "",
            "sha1:0e112c3ddfce",
            "sha1:0E112C3DDFCE:a68df677475c2b47b6e86d0467eec97ac5f4b85a",
            "sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a\n",
            "argon2:$argon2id$v=19$m=19456,t=2,p=1$short$x",
            "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "plain:password",
        ] {
            assert!(!is_valid_hash(bad), "{bad:?}");
        }
    }

    #[test]
    fn supplied_argon2_hashes_are_bounded_both_ways() {
        let with = |params: &str| {
            format!(
                "argon2:$argon2id$v=19${params}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
        };
        for ok in [
            "m=19456,t=2,p=1",
            "m=47104,t=1,p=1",
            "m=7168,t=5,p=1",
            "m=262144,t=10,p=8",
        ] {
            assert_eq!(check_hash(&with(ok)), Ok(()), "{ok}");
        }
        for (too_much, says) in [
            ("m=4194304,t=2,p=1", "at most"),
            ("m=19456,t=100,p=1", "at most"),
            ("m=19456,t=2,p=64", "at most"),
            ("m=8,t=1,p=1", "OWASP"),
            ("m=19456,t=1,p=1", "OWASP"),
            ("m=4096,t=10,p=1", "OWASP"),
        ] {
            let err = check_hash(&with(too_much)).unwrap_err();
            assert!(err.contains(says), "{too_much}: {err}");
        }
    }

    #[test]
    fn tokens_are_48_hex_characters() {
        let t = token(&[0xab; 24]);
        assert_eq!(t.expose(), "ab".repeat(24));
        let t = token(&[
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 255,
        ]);
        assert_eq!(t.expose(), "000102030405060708090a0b0c0d0e0f10111213141516ff");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }
}
