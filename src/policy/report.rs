//! The text `auger policy check` prints.

use super::diagnostic::PolicyErrors;
use super::set::PolicySet;

/// Every error line, then every warning line, then a summary such as
/// `2 policies, 3 errors, 1 warning`; with the exit status: 0 without errors, 1 with.
pub fn policy_check_report(result: &Result<PolicySet, PolicyErrors>) -> (String, i32) {
    let (errors, warnings, files) = match result {
        Ok(set) => (&[][..], set.warnings(), set.len()),
        Err(e) => (&e.errors[..], &e.warnings[..], e.files),
    };
    let mut out = String::new();
    for e in errors {
        out.push_str(&format!("error: {e}\n"));
    }
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(&format!(
        "{}, {}, {}\n",
        count(files, "policy", "policies"),
        count(errors.len(), "error", "errors"),
        count(warnings.len(), "warning", "warnings"),
    ));
    (out, if errors.is_empty() { 0 } else { 1 })
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
