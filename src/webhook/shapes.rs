//! Which members of each payload the typed events read, for [`skim`](super::skim): the edge
//! keeps these and drops the rest before serde sees the body.
//!
//! A shape lists a struct's serde field names (after renames). The test below checks every
//! shape against the field list serde itself derives, so a field added to an event struct
//! without its shape fails the build's tests instead of silently parsing as its default.
//! [`EVENTS`] gives each event's shape by name: the paths auger reads of each payload, which
//! `tests/it/webhook_nulls.rs` holds against GitHub's webhook schema.

use super::events::*;
use super::skim::{Shape, Shaped, each, object, whole};

/// `shaped! { Type => [members] + common; }`: `+ common` appends `repository`, `sender` and
/// `installation`, which almost every event carries.
macro_rules! shaped {
    ($($t:ty => [$($m:expr),* $(,)?] $(+ $common:ident)?;)+) => {
        $(shaped!(@one $t, [$($m),*] $(, $common)?);)+
    };
    (@one $t:ty, [$($m:expr),*], common) => {
        shaped!(@one $t, [
            $($m,)*
            object("repository", Repository::SHAPE),
            object("sender", Account::SHAPE),
            object("installation", InstallationRef::SHAPE)
        ]);
    };
    (@one $t:ty, [$($m:expr),*]) => {
        impl Shaped for $t {
            const SHAPE: Shape = &[$($m),*];
        }
    };
}

shaped! {
    Account => [whole("login"), whole("id"), whole("type")];
    PartialAccount => [whole("login"), whole("id"), whole("type")];
    Repository => [
        whole("id"), whole("full_name"), whole("clone_url"), whole("html_url"),
        whole("default_branch"), whole("private"), object("owner", Account::SHAPE),
    ];
    InstallationRef => [whole("id")];
    GitIdentity => [whole("name"), whole("email"), whole("username"), whole("date")];

    StatusEvent => [
        whole("id"), whole("sha"), whole("context"), whole("state"), whole("description"),
        whole("target_url"), object("commit", StatusCommit::SHAPE), each("branches", StatusBranch::SHAPE),
    ] + common;
    StatusCommit => [
        whole("sha"), whole("html_url"), object("commit", CommitDetails::SHAPE),
        object("author", PartialAccount::SHAPE),
    ];
    CommitDetails => [
        whole("message"), object("author", GitIdentity::SHAPE), object("committer", GitIdentity::SHAPE),
    ];
    StatusBranch => [whole("name"), object("commit", ShaRef::SHAPE)];
    ShaRef => [whole("sha")];

    CheckRunEvent => [whole("action"), object("check_run", CheckRun::SHAPE)] + common;
    CheckRun => [
        whole("id"), whole("name"), whole("head_sha"), whole("status"), whole("conclusion"),
        whole("html_url"), whole("details_url"), object("check_suite", CheckSuite::SHAPE),
        each("pull_requests", PullRequestRef::SHAPE),
    ];
    CheckSuite => [whole("id"), whole("head_branch")];
    PullRequestRef => [
        whole("id"), whole("number"), object("head", RunPullRequestBranch::SHAPE),
        object("base", RunPullRequestBranch::SHAPE),
    ];
    RunPullRequestBranch => [whole("ref"), whole("sha"), object("repo", ShortRepository::SHAPE)];
    ShortRepository => [whole("id"), whole("name")];

    WorkflowRunEvent => [
        whole("action"), object("workflow", Workflow::SHAPE), object("workflow_run", WorkflowRun::SHAPE),
    ] + common;
    Workflow => [whole("id"), whole("name"), whole("path")];
    WorkflowRun => [
        whole("id"), whole("name"), whole("head_sha"), whole("head_branch"), whole("event"),
        whole("status"), whole("conclusion"), whole("html_url"), whole("run_number"),
        whole("run_attempt"), whole("workflow_id"), each("pull_requests", PullRequestRef::SHAPE),
        object("head_repository", RunRepository::SHAPE), object("head_commit", RunHeadCommit::SHAPE),
    ];
    RunRepository => [whole("id"), whole("full_name")];
    RunHeadCommit => [whole("timestamp")];

    PushEvent => [
        whole("ref"), whole("before"), whole("after"), whole("created"), whole("deleted"),
        whole("forced"), object("head_commit", PushCommit::SHAPE), object("pusher", Pusher::SHAPE),
    ] + common;
    PushCommit => [whole("id"), whole("message"), whole("url"), object("author", GitIdentity::SHAPE)];
    Pusher => [whole("name"), whole("email")];
    RefEvent => [whole("ref"), whole("ref_type")] + common;

    PullRequestEvent => [
        whole("action"), whole("number"), object("pull_request", PullRequest::SHAPE),
    ] + common;
    PullRequest => [
        whole("id"), whole("number"), whole("state"), whole("title"), whole("body"),
        whole("html_url"), object("user", Account::SHAPE), whole("draft"), whole("merged"),
        whole("merged_at"), whole("merge_commit_sha"), object("head", PullRequestBranch::SHAPE),
        object("base", PullRequestBranch::SHAPE), whole("updated_at"),
    ];
    PullRequestBranch => [whole("ref"), whole("sha"), object("repo", Repository::SHAPE)];
    PullRequestReviewEvent => [
        whole("action"), object("review", Review::SHAPE), object("pull_request", PullRequest::SHAPE),
    ] + common;
    Review => [
        whole("id"), object("user", Account::SHAPE), whole("body"), whole("commit_id"),
        whole("state"), whole("submitted_at"),
    ];

    IssueCommentEvent => [
        whole("action"), object("issue", Issue::SHAPE), object("comment", Comment::SHAPE),
    ] + common;
    Issue => [
        whole("number"), whole("title"), object("user", Account::SHAPE), whole("html_url"),
        object("pull_request", IssuePullRequestLinks::SHAPE),
    ];
    IssuePullRequestLinks => [whole("url"), whole("html_url")];
    Comment => [
        whole("id"), whole("body"), object("user", Account::SHAPE), whole("html_url"), whole("created_at"),
    ];

    InstallationEvent => [
        whole("action"), object("installation", Installation::SHAPE),
        each("repositories", InstallationRepository::SHAPE), object("sender", Account::SHAPE),
    ];
    InstallationRepositoriesEvent => [
        whole("action"), object("installation", Installation::SHAPE), object("sender", Account::SHAPE),
    ];
    Installation => [whole("id"), object("account", PartialAccount::SHAPE), whole("app_id")];
    InstallationRepository => [whole("id"), whole("full_name"), whole("private")];
    PingEvent => [
        whole("zen"), whole("hook_id"), object("repository", Repository::SHAPE), object("sender", Account::SHAPE),
    ];
}

/// Every event auger parses into a typed [`Event`], by its `X-GitHub-Event` name, with the
/// shape of its payload (any other name is [`Event::Unknown`]).
pub const EVENTS: &[(&str, Shape)] = &[
    ("status", StatusEvent::SHAPE),
    ("check_run", CheckRunEvent::SHAPE),
    ("workflow_run", WorkflowRunEvent::SHAPE),
    ("push", PushEvent::SHAPE),
    ("create", RefEvent::SHAPE),
    ("delete", RefEvent::SHAPE),
    ("pull_request", PullRequestEvent::SHAPE),
    ("pull_request_review", PullRequestReviewEvent::SHAPE),
    ("issue_comment", IssueCommentEvent::SHAPE),
    ("installation", InstallationEvent::SHAPE),
    ("installation_repositories", InstallationRepositoriesEvent::SHAPE),
    ("ping", PingEvent::SHAPE),
];

/// The shape of the event named `event`, if auger reads that event.
pub fn shape_of(event: &str) -> Option<Shape> {
    EVENTS
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, shape)| *shape)
}

#[cfg(test)]
mod tests {
    use serde::de::{self, Deserializer, Visitor};

    use super::*;

    /// The field names serde derived for `T`, read by asking `T` to deserialize itself from a
    /// deserializer that only records what `deserialize_struct` is told.
    fn serde_fields<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
        struct Probe<'a>(&'a mut Vec<&'static str>);
        impl<'de> Deserializer<'de> for Probe<'_> {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.extend_from_slice(fields);
                Err(de::Error::custom("probed"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
                option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
                ignored_any
            }
        }
        let mut fields = Vec::new();
        assert!(T::deserialize(Probe(&mut fields)).is_err());
        fields
    }

    fn assert_shape_is_serdes<T: Shaped + serde::de::DeserializeOwned>() {
        let mut shape: Vec<&str> = T::SHAPE.iter().map(|m| m.key).collect();
        let mut fields = serde_fields::<T>();
        shape.sort_unstable();
        fields.sort_unstable();
        assert_eq!(shape, fields, "shape of {}", std::any::type_name::<T>());
    }

    #[test]
    fn every_shape_names_exactly_the_fields_serde_reads() {
        macro_rules! check {
            ($($t:ty),+ $(,)?) => { $(assert_shape_is_serdes::<$t>();)+ };
        }
        check!(
            Account,
            PartialAccount,
            Repository,
            InstallationRef,
            GitIdentity,
            StatusEvent,
            StatusCommit,
            CommitDetails,
            StatusBranch,
            ShaRef,
            CheckRunEvent,
            CheckRun,
            CheckSuite,
            PullRequestRef,
            RunPullRequestBranch,
            ShortRepository,
            WorkflowRunEvent,
            Workflow,
            WorkflowRun,
            RunRepository,
            RunHeadCommit,
            PushEvent,
            PushCommit,
            Pusher,
            RefEvent,
            PullRequestEvent,
            PullRequest,
            PullRequestBranch,
            PullRequestReviewEvent,
            Review,
            IssueCommentEvent,
            Issue,
            IssuePullRequestLinks,
            Comment,
            InstallationEvent,
            InstallationRepositoriesEvent,
            Installation,
            InstallationRepository,
            PingEvent,
        );
    }

    /// [`EVENTS`] names exactly the events the parser types, each with the shape the edge skims
    /// it with: what the skimming parse keeps of every fixture is what its shape keeps.
    #[test]
    fn events_are_the_parsers_events_with_their_shapes() {
        for (name, _) in EVENTS {
            let parsed = crate::webhook::parse_event(name, b"{}");
            assert!(
                !matches!(parsed, Ok(Event::Unknown { .. })),
                "{name} parses as an unknown event"
            );
        }
        assert!(matches!(
            crate::webhook::parse_event("sponsorship", b"{}"),
            Ok(Event::Unknown { .. })
        ));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks");
        let mut checked = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".json").and_then(|f| f.split('.').next()) else {
                continue;
            };
            let body = std::fs::read(&path).unwrap();
            let shape = shape_of(name).unwrap_or_else(|| panic!("{file}: no shape for {name}"));
            let (event, kept) = crate::webhook::parse_event_kept(name, &body).unwrap();
            assert_eq!(event.name(), name);
            if name != "ping" {
                assert_eq!(kept, crate::webhook::skim::prune(&body, shape), "{file}");
            }
            checked.insert(name.to_owned());
        }
        let all: std::collections::BTreeSet<String> = EVENTS.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(checked, all, "a fixture for every event auger reads");
    }

    #[test]
    fn the_probe_sees_renamed_fields_by_their_json_names() {
        assert_eq!(serde_fields::<Account>(), ["login", "id", "type"]);
        assert!(serde_fields::<PushEvent>().contains(&"ref"));
    }
}
