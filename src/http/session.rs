//! The dashboard's session (design §17): a cookie holding who logged in through GitHub, signed
//! with HMAC-SHA256 so the browser can carry it but not change it, and the per-session CSRF
//! token every action form sends back.
//!
//! Nothing is kept on the server: a session is valid while its signature checks and it has not
//! expired. The key comes from `[dashboard] session_key_env`, or is drawn at start, which ends
//! every session when auger restarts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "auger_session";
/// The cookie binding an OAuth `state` to the browser that started the login.
pub const STATE_COOKIE: &str = "auger_oauth_state";
/// How long a login lasts.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(12);
/// How long a started login may take to come back from GitHub.
pub const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// Who is logged in: the GitHub account, re-read from GitHub at login, and the session's CSRF
/// token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub login: String,
    /// The account's numeric id: a `user:` principal must resolve to it (a renamed login
    /// cannot inherit a right).
    pub id: u64,
    pub csrf: String,
    /// Unix seconds after which the session is void.
    pub exp: i64,
}

impl Session {
    /// A new session for `login` with a fresh CSRF token.
    pub fn new(login: &str, id: u64, now: DateTime<Utc>) -> std::io::Result<Session> {
        Ok(Session {
            login: login.to_owned(),
            id,
            csrf: random_token()?,
            exp: (now + SESSION_LIFETIME).timestamp(),
        })
    }

    /// Whether `presented` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        // Equal lengths first is no leak: every token has the same length.
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// 32 random bytes, hex: OAuth states and CSRF tokens.
pub fn random_token() -> std::io::Result<String> {
    os_random(32).map(hex::encode)
}

/// `n` bytes of the operating system's randomness (`fastrand` is not meant for secrets).
fn os_random(n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// The key sessions and OAuth states are signed with.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

impl SessionKey {
    /// A key from configuration (at least 32 bytes, checked by the config).
    pub fn new(bytes: Vec<u8>) -> SessionKey {
        SessionKey(bytes)
    }

    /// A key drawn now: sessions end when the process does.
    pub fn random() -> std::io::Result<SessionKey> {
        os_random(32).map(SessionKey)
    }

    fn mac(&self, purpose: &str, payload: &str) -> Vec<u8> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        // The purpose keeps a value signed as one thing from being accepted as another.
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn sign(&self, purpose: &str, payload: &str) -> String {
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(self.mac(purpose, payload)))
    }

    /// The payload of `signed` if its signature is ours for `purpose` (checked in constant
    /// time).
    fn verify<'a>(&self, purpose: &str, signed: &'a str) -> Option<&'a str> {
        let (payload, sig) = signed.rsplit_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let expected = self.mac(purpose, payload);
        bool::from(expected.ct_eq(&sig)).then_some(payload)
    }

    /// The cookie value for `session`.
    pub fn seal(&self, session: &Session) -> String {
        let json = serde_json::to_vec(session).unwrap_or_default();
        self.sign("session", &URL_SAFE_NO_PAD.encode(json))
    }

    /// The session a cookie value holds, if it is ours and not expired at `now`.
    pub fn open(&self, cookie: &str, now: DateTime<Utc>) -> Option<Session> {
        let payload = self.verify("session", cookie)?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        (session.exp > now.timestamp()).then_some(session)
    }

    /// The `state` cookie for a login started now: the state sent to GitHub, its expiry and
    /// the page to return to, signed.
    pub fn seal_state(&self, state: &str, next: &str, now: DateTime<Utc>) -> String {
        let exp = (now + STATE_LIFETIME).timestamp();
        let payload = URL_SAFE_NO_PAD.encode(format!("{state}\n{exp}\n{next}"));
        self.sign("oauth-state", &payload)
    }

    /// Where to go after the login, if `cookie` is a live state cookie and `returned` (the
    /// `state` GitHub sent back) is its state.
    pub fn open_state(&self, cookie: &str, returned: &str, now: DateTime<Utc>) -> Option<String> {
        let payload = self.verify("oauth-state", cookie)?;
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let mut parts = text.splitn(3, '\n');
        let (state, exp, next) = (parts.next()?, parts.next()?, parts.next()?);
        let live = exp.parse::<i64>().ok()? > now.timestamp();
        let same = bool::from(state.as_bytes().ct_eq(returned.as_bytes()));
        (live && same).then(|| next.to_owned())
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, Secure when served over https.
/// `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: chrono::Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.num_seconds().max(0)
    )
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_sealed_session_opens_with_the_same_key_only() {
        let key = SessionKey::random().unwrap();
        let s = Session::new("alice", 7, now()).unwrap();
        let cookie = key.seal(&s);
        assert_eq!(key.open(&cookie, now()), Some(s));
        assert_eq!(SessionKey::random().unwrap().open(&cookie, now()), None);
    }

    #[test]
    fn a_changed_session_or_signature_is_refused() {
        let key = SessionKey::new(b"k".repeat(32));
        let s = Session::new("mallory", 9, now()).unwrap();
        let cookie = key.seal(&s);
        let (payload, sig) = cookie.rsplit_once('.').unwrap();
        // The same session claiming another login, with the old signature.
        let forged = Session {
            login: "alice".into(),
            ..s.clone()
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(key.open(&format!("{forged_payload}.{sig}"), now()), None);
        // A flipped signature byte, a missing signature, garbage.
        let mut bad = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bad[0] ^= 1;
        assert_eq!(
            key.open(&format!("{payload}.{}", URL_SAFE_NO_PAD.encode(bad)), now()),
            None
        );
        assert_eq!(key.open(payload, now()), None);
        assert_eq!(key.open("not a cookie", now()), None);
    }

    #[test]
    fn a_session_expires() {
        let key = SessionKey::random().unwrap();
        let cookie = key.seal(&Session::new("alice", 7, now()).unwrap());
        let later = now() + SESSION_LIFETIME;
        assert!(key.open(&cookie, later - chrono::Duration::seconds(1)).is_some());
        assert_eq!(key.open(&cookie, later), None);
    }

    #[test]
    fn a_state_cookie_is_not_a_session_cookie_and_vice_versa() {
        let key = SessionKey::random().unwrap();
        let session = key.seal(&Session::new("alice", 7, now()).unwrap());
        assert_eq!(key.open_state(&session, "x", now()), None);
        let state = key.seal_state("abc", "/", now());
        assert_eq!(key.open(&state, now()), None);
    }

    #[test]
    fn the_oauth_state_must_come_back_unchanged_and_in_time() {
        let key = SessionKey::random().unwrap();
        let cookie = key.seal_state("abc123", "/artifacts/web@1", now());
        assert_eq!(
            key.open_state(&cookie, "abc123", now()).as_deref(),
            Some("/artifacts/web@1")
        );
        assert_eq!(key.open_state(&cookie, "abc124", now()), None);
        assert_eq!(key.open_state(&cookie, "", now()), None);
        assert_eq!(key.open_state(&cookie, "abc123", now() + STATE_LIFETIME), None);
    }

    #[test]
    fn csrf_tokens_are_per_session_and_compared_whole() {
        let a = Session::new("alice", 7, now()).unwrap();
        let b = Session::new("alice", 7, now()).unwrap();
        assert_ne!(a.csrf, b.csrf, "every session gets its own token");
        assert_eq!(a.csrf.len(), 64);
        assert!(a.csrf_matches(&a.csrf.clone()));
        assert!(!a.csrf_matches(&b.csrf));
        assert!(!a.csrf_matches(""));
        assert!(!a.csrf_matches(&a.csrf[..63]), "a prefix is not the token");
        assert!(!a.csrf_matches(&format!("{}0", a.csrf)));
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_over_https() {
        let c = set_cookie(SESSION_COOKIE, "v", SESSION_LIFETIME, true);
        assert_eq!(
            c,
            "auger_session=v; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!set_cookie(SESSION_COOKIE, "v", SESSION_LIFETIME, false).contains("Secure"));
        assert_eq!(
            cookie_value("a=1; auger_session=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("auger_sessionx=1", SESSION_COOKIE), None);
    }
}
