//! auger's integration tests, one binary: each module is a group of scenarios against real
//! git repositories, the real server and the GitHub simulator. One binary rather than one per
//! file keeps the link count (and the disk a clean CI build needs) small. What builds the world
//! the scenarios run in (server, simulator, signed deliveries, git) is in `support/`; reply and
//! pull request texts are compared with the snapshots in `snapshots/` (insta: a changed text
//! fails, `INSTA_UPDATE=always` rewrites them for review, and CI never does).

mod support;

mod api_bounds;
mod api_tokens;
mod branch_protection;
mod changelog;
mod ci_action;
mod cli;
mod commands;
mod dashboard;
mod demo;
mod deploy_files;
mod dora;
mod forge;
mod freezes;
mod github_app;
mod gitops;
mod gitops_edit;
mod history;
mod init;
mod multirepo;
mod notify;
mod policy_check;
mod policy_reload;
mod previews;
mod queue_pg;
mod recovery;
mod rejects;
mod release;
mod release_edit;
mod release_loop;
mod replicas;
mod reports;
mod rest_budget;
mod serve;
mod serve_with_github;
mod starters;
mod verify;
mod webhook_nulls;
