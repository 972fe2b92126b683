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
    let checks = service["checks"].as_array().expect("http_service.checks");
    assert!(
        checks
            .iter()
            .any(|c| c["path"].as_str() == Some(auger::http::HEALTH_PATH))
    );
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
