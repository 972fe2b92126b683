//! Writes the simulator's contract subset from GitHub's full OpenAPI description.
//!
//! ```text
//! spec-subset <api.github.com.json> <output>
//! ```
//!
//! `scripts/spec-subset` runs it on the pinned description that `scripts/fetch-specs` fetched;
//! the package and version are read from the `VERSION` file next to the description.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [full, output] = args.as_slice() else {
        bail!("usage: spec-subset <api.github.com.json> <output>");
    };
    let full = Path::new(full);
    let text = std::fs::read_to_string(full)
        .with_context(|| format!("reading {} (scripts/fetch-specs fetches it)", full.display()))?;
    let spec: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", full.display()))?;
    let version_file = full.with_file_name("VERSION");
    let version = std::fs::read_to_string(&version_file)
        .with_context(|| format!("reading {}", version_file.display()))?;
    let source = format!("@octokit/openapi {}", version.trim());
    let subset = github_sim::contract::generate_subset(&spec, &source, &github_sim::served_routes())?;
    // Written aside and renamed, so an interrupted run leaves the old subset whole.
    let output = PathBuf::from(output);
    let tmp = output.with_extension("json.tmp");
    std::fs::write(&tmp, &subset).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &output).with_context(|| format!("replacing {}", output.display()))?;
    println!(
        "wrote {} ({} bytes) from {source}",
        output.display(),
        subset.len()
    );
    Ok(())
}
