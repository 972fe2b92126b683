//! `docker build` cannot run here, so the deployment files are checked against the code: the
//! binary the Dockerfile builds and runs, the port it exposes and the config listens on, the
//! health path and volume fly.toml uses, the events the GitHub App manifest subscribes to.

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn dockerfile_fly_toml_and_the_app_manifest_agree_with_the_code() {
    let binary = Path::new(env!("CARGO_BIN_EXE_auger"))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("--bin {binary}")),
        "the Dockerfile builds {binary}"
    );
    // It ships the `dist` profile, which Cargo.toml defines on top of release.
    assert!(dockerfile.contains("cargo build --profile dist "));
    assert!(dockerfile.contains(&format!("target/dist/{binary}")));
    let cargo: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml parses");
    let dist = &cargo["profile"]["dist"];
    assert_eq!(dist["inherits"].as_str(), Some("release"));
    assert_eq!(dist["lto"].as_str(), Some("fat"));
    assert!(dockerfile.contains(&format!("ENTRYPOINT [\"{binary}\"]")));

    // The image's config is a valid auger config; its port is the one exposed.
    let config =
        auger::config::Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/auger.toml"))
            .unwrap_or_else(|e| panic!("deploy/auger.toml: {e}"));
    let port = config.server.listen.port();
    assert!(dockerfile.contains(&format!("EXPOSE {port}")), "EXPOSE {port}");
    assert!(dockerfile.contains("CMD [\"serve\", \"--config\", \"/app/auger.toml\"]"));
    assert!(dockerfile.contains("COPY deploy/auger.toml /app/auger.toml"));

    // fly.toml parses and agrees: port, health path, the volume at data_dir, one machine kept up.
    let fly: toml::Value = toml::from_str(&read("fly.toml")).expect("fly.toml parses");
    let service = &fly["http_service"];
    assert_eq!(service["internal_port"].as_integer(), Some(i64::from(port)));
    assert_eq!(service["auto_stop_machines"].as_str(), Some("off"));
    assert_checks_health(service);
    let mounts = fly["mounts"].as_array().expect("[[mounts]]");
    assert_eq!(
        mounts[0]["destination"].as_str().map(Path::new),
        Some(config.server.data_dir.as_path())
    );

    // The App manifest sends webhooks to the route auger serves, and only events it reads.
    let manifest = read("github-app.yml");
    assert!(manifest.contains("/webhooks/github"));
    let events: Vec<&str> = manifest
        .split("default_events:")
        .nth(1)
        .unwrap()
        .lines()
        .map(str::trim)
        .take_while(|l| l.is_empty() || l.starts_with('-') || l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("- "))
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert!(events.len() >= 9, "{events:?}");
    for event in events {
        let parsed = auger::webhook::parse_event(event, b"{}");
        let known = !matches!(parsed, Ok(auger::webhook::Event::Unknown { .. }));
        assert!(
            known,
            "the manifest subscribes to {event}, which auger does not read"
        );
    }
}

/// One scalar of the document of `kind` in a multi-document manifest.
fn manifest_value(text: &str, kind: &str, path: &str) -> String {
    let select = auger_yaml_edit::DocSelector {
        kind: Some(kind.into()),
        name: None,
    };
    let path = auger_yaml_edit::YamlPath::parse(path).unwrap();
    auger_yaml_edit::get_scalar(text, &path, Some(&select)).unwrap_or_else(|e| panic!("{kind} {path:?}: {e}"))
}

#[test]
fn the_kubernetes_manifest_runs_two_replicas_on_a_postgres_queue_that_a_drain_cannot_stop() {
    let text = read("deploy/kubernetes/auger.yaml");
    let kinds: Vec<Option<String>> = auger_yaml_edit::documents(&text)
        .expect("the manifest parses")
        .into_iter()
        .map(|d| d.kind)
        .collect();
    for kind in ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"] {
        assert!(kinds.contains(&Some(kind.into())), "{kind} in {kinds:?}");
    }

    // Its auger.toml is a valid configuration for replicas: a postgres queue, a ledger remote.
    let toml = manifest_value(&text, "ConfigMap", r#"data."auger.toml""#);
    let dir = tempfile::tempdir().unwrap();
    let config = auger::config::Config::parse(&dir.path().join("auger.toml"), &toml)
        .unwrap_or_else(|e| panic!("the ConfigMap's auger.toml: {e}"));
    assert!(
        matches!(config.server.queue, auger::config::QueueKind::Postgres { .. }),
        "{:?}",
        config.server.queue
    );
    assert!(config.artifacts.remote.is_some());
    let port = config.server.listen.port();

    // Two replicas, never fewer than one during a rollout or a drain.
    assert_eq!(manifest_value(&text, "Deployment", "spec.replicas"), "2");
    assert_eq!(
        manifest_value(&text, "Deployment", "spec.strategy.rollingUpdate.maxUnavailable"),
        "0"
    );
    assert_eq!(
        manifest_value(&text, "PodDisruptionBudget", "spec.minAvailable"),
        "1"
    );
    // auger stops within 10 s of SIGTERM: Kubernetes waits longer than that before SIGKILL.
    let grace: u64 = manifest_value(
        &text,
        "Deployment",
        "spec.template.spec.terminationGracePeriodSeconds",
    )
    .parse()
    .unwrap();
    assert!(grace > 10, "{grace}");

    // The probes ask the health route on the port the config listens on, which the Service
    // targets; the secrets come from one Secret; the image runs as the Dockerfile's user.
    let container = "spec.template.spec.containers[0]";
    assert_eq!(
        manifest_value(
            &text,
            "Deployment",
            &format!("{container}.ports[0].containerPort")
        ),
        port.to_string()
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            manifest_value(&text, "Deployment", &format!("{container}.{probe}.httpGet.path")),
            auger::http::HEALTH_PATH
        );
    }
    assert_eq!(
        manifest_value(&text, "Service", "spec.ports[0].targetPort"),
        "http"
    );
    assert_eq!(
        manifest_value(&text, "Deployment", &format!("{container}.args[2]")),
        "/app/config/auger.toml"
    );
    assert_eq!(
        manifest_value(
            &text,
            "Deployment",
            "spec.template.spec.securityContext.runAsUser"
        ),
        "10001"
    );
    assert!(read("Dockerfile").contains("10001"));
    // Every variable the config names is in the Secret the pods read.
    let secret_keys = text.split("kubectl -n auger create secret").nth(1).unwrap();
    for var in [
        config.github.webhook_secret_env.as_str(),
        config.api.tokens_env.as_str(),
        "GITHUB_TOKEN",
        "AUGER_QUEUE_URL",
    ] {
        assert!(
            secret_keys.contains(&format!("{var}=")),
            "{var} is not in the Secret"
        );
    }
}

#[test]
fn fly_replicas_run_two_machines_without_a_volume_on_the_replica_config() {
    let fly: toml::Value = toml::from_str(&read("fly.replicas.toml")).expect("it parses");
    assert!(fly.get("mounts").is_none(), "replicas share no volume");
    let service = &fly["http_service"];
    assert_eq!(service["min_machines_running"].as_integer(), Some(2));
    assert_eq!(service["auto_stop_machines"].as_str(), Some("off"));
    assert_checks_health(service);
    // The file it puts over /app/auger.toml is a replica configuration listening on its port.
    let files = fly["files"].as_array().expect("[[files]]");
    assert_eq!(files[0]["guest_path"].as_str(), Some("/app/auger.toml"));
    let local = files[0]["local_path"].as_str().unwrap();
    let config = auger::config::Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(local))
        .unwrap_or_else(|e| panic!("{local}: {e}"));
    assert!(matches!(
        config.server.queue,
        auger::config::QueueKind::Postgres { .. }
    ));
    assert!(config.artifacts.remote.is_some());
    assert_eq!(
        service["internal_port"].as_integer(),
        Some(i64::from(config.server.listen.port()))
    );
    // The Kubernetes ConfigMap carries the same settings (its paths point into the pod).
    let k8s = manifest_value(
        &read("deploy/kubernetes/auger.yaml"),
        "ConfigMap",
        r#"data."auger.toml""#,
    );
    let dir = tempfile::tempdir().unwrap();
    let k8s = auger::config::Config::parse(&dir.path().join("auger.toml"), &k8s).unwrap();
    assert_eq!(
        format!("{:?}", k8s.server.queue),
        format!("{:?}", config.server.queue)
    );
    assert_eq!(k8s.artifacts.remote, config.artifacts.remote);
}

/// A Fly `[http_service]` checks auger's health route.
fn assert_checks_health(service: &toml::Value) {
    let checks = service["checks"].as_array().expect("http_service.checks");
    assert!(
        checks
            .iter()
            .any(|c| c["path"].as_str() == Some(auger::http::HEALTH_PATH))
    );
}
