//! GitHub webhooks: signature verification, delivery headers and the typed events auger reads.
//! Pure: the HTTP edge (`crate::http::webhook`) verifies with [`WebhookSecrets::verify`],
//! checks the headers with [`Delivery::from_headers`], parses with [`Delivery::parse_kept`] and
//! classifies the event into [`crate::work::Work`].

pub mod events;
pub mod shapes;
pub mod signature;
pub mod skim;

use serde::{Deserialize, Serialize};

pub use events::{Event, EventError, parse_event, parse_event_kept};
pub use signature::{
    Algorithm, FLUX, GITHUB, SIGNATURE_HEADER, Scheme, SecretsError, SignatureError, WebhookSecrets, sign,
    sign_as,
};

/// Header naming the event type.
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// Header carrying the unique delivery id (the same on redelivery).
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// The longest delivery id or event name accepted. GitHub sends UUIDs and short snake_case
/// names; the cap keeps a hostile value from bloating the dedupe index.
const MAX_HEADER_LEN: usize = 100;

/// Why the delivery headers were refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("invalid {header} header: {rule}")]
    Invalid {
        header: &'static str,
        rule: &'static str,
    },
}

/// Identity of one delivery: its id (the inbox's dedupe key, design §10) and event name.
///
/// Both are checked to be 1–100 printable ASCII characters without spaces, since they are
/// written into inbox records and logs verbatim. They may still contain `/`: do not use them
/// as file names unencoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawDelivery")]
pub struct Delivery {
    id: String,
    event: String,
}

#[derive(Deserialize)]
struct RawDelivery {
    id: String,
    event: String,
}

impl TryFrom<RawDelivery> for Delivery {
    type Error = DeliveryError;
    fn try_from(raw: RawDelivery) -> Result<Self, DeliveryError> {
        Self::new(raw.id, raw.event)
    }
}

impl Delivery {
    pub fn new(id: impl Into<String>, event: impl Into<String>) -> Result<Self, DeliveryError> {
        let (id, event) = (id.into(), event.into());
        check_header_value(DELIVERY_HEADER, &id)?;
        check_header_value(EVENT_HEADER, &event)?;
        Ok(Self { id, event })
    }

    /// From the `X-GitHub-Delivery` and `X-GitHub-Event` header values (None when absent).
    pub fn from_headers(id: Option<&str>, event: Option<&str>) -> Result<Self, DeliveryError> {
        let id = id.ok_or(DeliveryError::Missing(DELIVERY_HEADER))?;
        let event = event.ok_or(DeliveryError::Missing(EVENT_HEADER))?;
        Self::new(id, event)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn event(&self) -> &str {
        &self.event
    }

    /// Parses `body` as this delivery's event.
    pub fn parse(&self, body: &[u8]) -> Result<Event, EventError> {
        parse_event(&self.event, body)
    }

    /// [`Delivery::parse`], with what the inbox keeps of it (see [`parse_event_kept`]).
    pub fn parse_kept(&self, body: &[u8]) -> Result<(Event, Option<Vec<u8>>), EventError> {
        parse_event_kept(&self.event, body)
    }
}

fn check_header_value(header: &'static str, value: &str) -> Result<(), DeliveryError> {
    if value.is_empty() {
        return Err(DeliveryError::Missing(header));
    }
    let rule = if value.len() > MAX_HEADER_LEN {
        "longer than 100 characters"
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        "only printable ASCII without spaces is allowed"
    } else {
        return Ok(());
    };
    Err(DeliveryError::Invalid { header, rule })
}

/// Records the event's repository and pull request in `span`'s `repo` and `pr` fields (the
/// span must declare them, empty, to take them).
pub fn record_in_span(span: &tracing::Span, event: &Event) {
    if let Some(repo) = event.repo() {
        span.record("repo", repo.as_str());
    }
    if let Some(pr) = event.pull_number() {
        span.record("pr", pr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_accepts_github_ids() {
        let d = Delivery::from_headers(Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"), Some("pull_request"))
            .unwrap();
        assert_eq!(d.id(), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(d.event(), "pull_request");
        assert!(Delivery::new("x".repeat(100), "ping").is_ok());
    }

    #[test]
    fn delivery_refuses_odd_values() {
        assert_eq!(
            Delivery::from_headers(None, Some("ping")),
            Err(DeliveryError::Missing(DELIVERY_HEADER))
        );
        assert_eq!(
            Delivery::from_headers(Some("abc"), None),
            Err(DeliveryError::Missing(EVENT_HEADER))
        );
        assert_eq!(
            Delivery::new("", "ping"),
            Err(DeliveryError::Missing(DELIVERY_HEADER))
        );
        for bad in [
            "x".repeat(101),
            "a b".into(),
            "a\nb".into(),
            "a\0".into(),
            "é".into(),
            "\t".into(),
        ] {
            assert!(
                matches!(
                    Delivery::new(bad.clone(), "ping"),
                    Err(DeliveryError::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(Delivery::new("abc", "pull request").is_err());
    }

    #[test]
    fn delivery_round_trips_through_serde_with_validation() {
        let d = Delivery::new("abc-1", "push").unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, r#"{"id":"abc-1","event":"push"}"#);
        assert_eq!(serde_json::from_str::<Delivery>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Delivery>(r#"{"id":"a b","event":"push"}"#).is_err());
    }

    #[test]
    fn delivery_parses_its_body() {
        let d = Delivery::new("abc", "zen_garden").unwrap();
        assert_eq!(
            d.parse(b"{}").unwrap(),
            Event::Unknown {
                event: "zen_garden".into()
            }
        );
    }
}
