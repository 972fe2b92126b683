//! Repository reads: metadata, contents, commits, branches, compare.

use actix_web::HttpResponse;
use base64::Engine;
use serde_json::{Value, json};

use super::{Ctx, ok};
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::{Repo, State};

pub(crate) fn get(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let login = ctx.login().ok();
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let mut v = render::repo(&st, &ctx.inner.urls, r);
    let rank = login.and_then(|l| st.role(r, &l)).map(|r| r as u8);
    let has = |min: u8| rank.is_some_and(|r| r >= min);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "permissions".into(),
            json!({"admin": has(4), "maintain": has(3), "push": has(2), "triage": has(1), "pull": true}),
        );
        // What GitHub's full repository adds to the one embedded in other objects.
        // Counts are 0 as `forks_count` and `watchers_count` are: the sim keeps no such counts.
        obj.insert("network_count".into(), json!(0));
        obj.insert("subscribers_count".into(), json!(0));
    }
    ok(v)
}

/// Resolves a branch, tag, full ref, `heads/…`/`tags/…` (octocrab's typed references) or sha
/// to a commit.
pub(crate) fn resolve(r: &Repo, git_ref: &str) -> Option<String> {
    let mut candidates = vec![format!("refs/heads/{git_ref}"), format!("refs/tags/{git_ref}")];
    if git_ref.starts_with("refs/") {
        candidates.push(git_ref.to_string());
    }
    if git_ref.starts_with("heads/") || git_ref.starts_with("tags/") {
        candidates.push(format!("refs/{git_ref}"));
    }
    if !git_ref.is_empty() && git_ref.len() <= 40 && git_ref.chars().all(|c| c.is_ascii_hexdigit()) {
        candidates.push(git_ref.to_string());
    }
    candidates.iter().find_map(|c| r.git.resolve(c))
}

fn content_entry(
    ctx: &Ctx,
    r: &Repo,
    git_ref: &str,
    path: &str,
    kind: &str,
    sha: &str,
    size: usize,
) -> Value {
    let full = r.full_name();
    let url = format!("{}/repos/{full}/contents/{path}?ref={git_ref}", ctx.api());
    let git_url = match kind {
        "dir" => format!("{}/repos/{full}/git/trees/{sha}", ctx.api()),
        _ => format!("{}/repos/{full}/git/blobs/{sha}", ctx.api()),
    };
    let html_url = format!(
        "{}/{full}/{}/{git_ref}/{path}",
        ctx.api(),
        if kind == "dir" { "tree" } else { "blob" }
    );
    let name = path.rsplit('/').next().unwrap_or(path);
    json!({
        "type": kind,
        "size": size,
        "name": name,
        "path": path,
        "sha": sha,
        "url": url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": if kind == "file" { Value::String(format!("{}/{full}/raw/{git_ref}/{path}", ctx.api())) } else { Value::Null },
        "_links": {"self": url, "git": git_url, "html": html_url},
    })
}

/// `GET /contents/{path}`: a file (base64, wrapped at 60 columns like GitHub) or a directory list.
pub(crate) fn contents(ctx: &Ctx, repo: &str, path: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let git_ref = ctx
        .q("ref")
        .map(str::to_string)
        .unwrap_or_else(|| r.default_branch.clone());
    let commit = resolve(r, &git_ref).ok_or_else(ApiError::not_found)?;
    let path = path.trim_matches('/');
    let spec = if path.is_empty() {
        format!("{commit}^{{tree}}")
    } else {
        format!("{commit}:{path}")
    };
    let kind = r.git.object_type(&spec).ok_or_else(ApiError::not_found)?;
    let sha = r.git.object_sha(&spec).ok_or_else(ApiError::not_found)?;
    if kind == "tree" {
        let mut items = Vec::new();
        for (_mode, typ, sha, name) in r.git.ls_tree(&sha)? {
            let child = if path.is_empty() {
                name
            } else {
                format!("{path}/{name}")
            };
            let (kind, size) = match typ.as_str() {
                "tree" => ("dir", 0),
                _ => ("file", r.git.blob(&sha).map(|b| b.len()).unwrap_or(0)),
            };
            items.push(content_entry(ctx, r, &git_ref, &child, kind, &sha, size));
        }
        return ok(Value::Array(items));
    }
    let bytes = r.git.blob(&sha)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let mut v = content_entry(ctx, r, &git_ref, path, "file", &sha, bytes.len());
    if let Some(obj) = v.as_object_mut() {
        obj.insert("encoding".into(), json!("base64"));
        obj.insert("content".into(), json!(wrapped.join("\n") + "\n"));
    }
    ok(v)
}

fn files_json(ctx: &Ctx, r: &Repo, from: Option<&str>, to: &str) -> ApiResult<Vec<Value>> {
    let full = r.full_name();
    Ok(r.git
        .diff_files(from, to)?
        .into_iter()
        .map(|f| {
            json!({
                "sha": r.git.object_sha(&format!("{to}:{}", f.path)),
                "filename": f.path,
                "status": f.status,
                "additions": 0,
                "deletions": 0,
                "changes": 0,
                "blob_url": format!("{}/{full}/blob/{to}/{}", ctx.api(), f.path),
                "raw_url": format!("{}/{full}/raw/{to}/{}", ctx.api(), f.path),
                "contents_url": format!("{}/repos/{full}/contents/{}?ref={to}", ctx.api(), f.path),
            })
        })
        .collect())
}

fn commit_json(st: &State, ctx: &Ctx, r: &Repo, sha: &str) -> ApiResult<Value> {
    let info = r.git.commit_info(sha)?;
    Ok(render::commit(st, &ctx.inner.urls, r, &info))
}

/// `GET /commits/{ref}`: the commit with `stats` and `files`.
pub(crate) fn commit(ctx: &Ctx, repo: &str, git_ref: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let sha = resolve(r, git_ref)
        .ok_or_else(|| ApiError::unprocessable(format!("No commit found for SHA: {git_ref}")))?;
    let mut v = commit_json(&st, ctx, r, &sha)?;
    let parent = r.git.commit_info(&sha)?.parents.first().cloned();
    let files = files_json(ctx, r, parent.as_deref(), &sha)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "stats".into(),
            json!({"total": 0, "additions": 0, "deletions": 0}),
        );
        obj.insert("files".into(), Value::Array(files));
    }
    ok(v)
}

pub(crate) fn branch(ctx: &Ctx, repo: &str, name: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let sha = r
        .git
        .resolve(&format!("refs/heads/{name}"))
        .ok_or_else(|| ApiError::new(404, "Branch not found"))?;
    let full = r.full_name();
    ok(json!({
        "name": name,
        "commit": commit_json(&st, ctx, r, &sha)?,
        "_links": {"self": format!("{}/repos/{full}/branches/{name}", ctx.api()), "html": format!("{}/{full}/tree/{name}", ctx.api())},
        "protected": r.protections.contains_key(name),
        "protection": render::branch_protection_summary(r.protections.get(name)),
        "protection_url": format!("{}/repos/{full}/branches/{name}/protection", ctx.api()),
    }))
}

/// `GET /branches/{branch}/protection`: 404 "Branch not found" / "Branch not protected" as
/// GitHub words them.
pub(crate) fn protection(ctx: &Ctx, repo: &str, name: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    if r.git.resolve(&format!("refs/heads/{name}")).is_none() {
        return Err(ApiError::new(404, "Branch not found"));
    }
    let p = r
        .protections
        .get(name)
        .ok_or_else(|| ApiError::new(404, "Branch not protected"))?;
    ok(render::branch_protection(&ctx.inner.urls, r, name, p))
}

/// Commits a compare answers without paging parameters: GitHub's 250, the newest of them.
const COMPARE_UNPAGED: usize = 250;

/// `GET /compare/{base}...{head}` (also `..`): ahead/behind, commits and files. Commits are
/// in chronological order. Without `page`/`per_page` the answer holds the newest 250 of them;
/// with either it is one page from the oldest on, and only page 1 lists files, as on GitHub.
/// `total_commits` counts them all.
pub(crate) fn compare(ctx: &Ctx, repo: &str, spec: &str) -> ApiResult<HttpResponse> {
    let (base, head) = spec
        .split_once("...")
        .or_else(|| spec.split_once(".."))
        .ok_or_else(ApiError::not_found)?;
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let base_sha = resolve(r, base).ok_or_else(ApiError::not_found)?;
    let head_sha = resolve(r, head).ok_or_else(ApiError::not_found)?;
    let merge_base = r
        .git
        .merge_base(&base_sha, &head_sha)
        .ok_or_else(ApiError::not_found)?;
    let ahead = r.git.rev_list(&head_sha, &[&merge_base], 10_000)?;
    let behind = r.git.rev_list(&base_sha, &[&merge_base], 10_000)?;
    let status = match (ahead.is_empty(), behind.is_empty()) {
        (true, true) => "identical",
        (false, true) => "ahead",
        (true, false) => "behind",
        (false, false) => "diverged",
    };
    let paged = ctx.q("page").is_some() || ctx.q("per_page").is_some();
    let (per_page, page) = super::page_params(ctx);
    let shown: Vec<&String> = if paged {
        ahead.iter().skip((page - 1) * per_page).take(per_page).collect()
    } else {
        ahead
            .iter()
            .skip(ahead.len().saturating_sub(COMPARE_UNPAGED))
            .collect()
    };
    let full = r.full_name();
    let mut commits = Vec::new();
    for sha in shown {
        commits.push(commit_json(&st, ctx, r, sha)?);
    }
    let files = if paged && page > 1 {
        Vec::new()
    } else {
        files_json(ctx, r, Some(&merge_base), &head_sha)?
    };
    let html = format!("{}/{full}/compare/{base}...{head}", ctx.inner.urls.html());
    let body = json!({
        "url": format!("{}/repos/{full}/compare/{base}...{head}", ctx.api()),
        "html_url": html,
        "permalink_url": format!("{}/{full}/compare/{base_sha}...{head_sha}", ctx.inner.urls.html()),
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "base_commit": commit_json(&st, ctx, r, &base_sha)?,
        "merge_base_commit": commit_json(&st, ctx, r, &merge_base)?,
        "status": status,
        "ahead_by": ahead.len(),
        "behind_by": behind.len(),
        "total_commits": ahead.len(),
        "commits": commits,
        "files": files,
    });
    let mut resp = HttpResponse::Ok();
    if paged && let Some(link) = super::link_header(ctx, ahead.len(), per_page, page) {
        resp.insert_header(("Link", link));
    }
    Ok(resp.json(body))
}
