//! A validator for the OpenAPI 3.0 schemas of GitHub's request bodies, with GitHub's wording.
//!
//! GitHub names a violation by its place in the innermost schema (`For 'properties/state', …`,
//! `For 'items', …`), prints values the way Ruby inspects them (`nil`, `"bogus"`) and lists
//! every violation on its own line.

use serde_json::Value;

/// The keywords the validator enforces. `format` is carried in the subset but not checked.
/// The contract tests hold every request schema in the subset to these, so a keyword a future
/// description starts using cannot go silently unchecked.
pub const SUPPORTED_KEYWORDS: &[&str] = &[
    "type",
    "nullable",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "format",
];

/// GitHub's name for the root of a request body's schema (a hyper-schema link).
const ROOT: &str = "links/0/schema";

pub(crate) fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, ROOT, &mut out);
    out
}

fn conforms(schema: &Value, value: &Value) -> bool {
    let mut out = Vec::new();
    check(schema, value, ROOT, &mut out);
    out.is_empty()
}

/// How Ruby's `inspect` shows a JSON value, which is how GitHub quotes it.
fn inspect(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        other => other.to_string(),
    }
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// "a string", "an object", "a string or null".
fn describe(types: &[&str]) -> String {
    let named: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "null" => "null".to_string(),
            t if t.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {t}"),
            t => format!("a {t}"),
        })
        .collect();
    named.join(" or ")
}

fn check(schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            out.push(format!("For '{at}', {} is not allowed.", inspect(v)));
        }
        return;
    };
    let nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
    let mut types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        if nullable {
            types.push("null");
        }
        if !types.iter().any(|t| has_type(v, t)) {
            out.push(format!("For '{at}', {} is not {}.", inspect(v), describe(&types)));
            return;
        }
        // `nullable` admits null past every other keyword (OpenAPI 3.0).
        if v.is_null() && nullable {
            return;
        }
    } else if v.is_null() && nullable {
        // Without `type` (a nullable `oneOf`, as a commit's `author` is) null is admitted
        // too: GitHub sends it there, and its description marks it so.
        return;
    }

    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(inspect).collect();
        out.push(format!(
            "For '{at}', {} is not a member of [{}].",
            inspect(v),
            list.join(", ")
        ));
    }

    match v {
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                out.push(format!(
                    "For '{at}', a string of {len} characters is longer than the maximum of {max}."
                ));
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                out.push(format!(
                    "For '{at}', {} is shorter than the minimum of {min} characters.",
                    inspect(v)
                ));
            }
        }
        Value::Number(n) => {
            if let (Some(x), Some(max)) = (n.as_f64(), s.get("maximum").and_then(Value::as_f64))
                && x > max
            {
                out.push(format!("For '{at}', {n} is greater than the maximum of {max}."));
            }
            if let (Some(x), Some(min)) = (n.as_f64(), s.get("minimum").and_then(Value::as_f64))
                && x < min
            {
                out.push(format!("For '{at}', {n} is less than the minimum of {min}."));
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && len > max
            {
                out.push(format!(
                    "For '{at}', an array of {len} items is longer than the maximum of {max}."
                ));
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && len < min
            {
                out.push(format!(
                    "For '{at}', an array of {len} items is shorter than the minimum of {min}."
                ));
            }
            if let Some(item_schema) = s.get("items") {
                for item in items {
                    check(item_schema, item, "items", out);
                }
            }
        }
        Value::Object(fields) => {
            for key in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(key) = key.as_str()
                    && !fields.contains_key(key)
                {
                    out.push(format!("\"{key}\" wasn't supplied."));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (key, value) in fields {
                match props.and_then(|p| p.get(key)) {
                    Some(prop) => check(prop, value, &format!("properties/{key}"), out),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            out.push(format!("\"{key}\" is not a permitted key."));
                        }
                        Some(extra @ Value::Object(_)) => {
                            check(extra, value, "additionalProperties", out);
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }

    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check(sub, v, at, out);
        }
    }
    if let Some(any) = s.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(|sub| conforms(sub, v))
    {
        out.push("No subschema in \"anyOf\" matched.".into());
    }
    if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
        match one.iter().filter(|sub| conforms(sub, v)).count() {
            1 => {}
            0 => out.push("No subschema in \"oneOf\" matched.".into()),
            _ => out.push("More than one subschema in \"oneOf\" matched.".into()),
        }
    }
    if let Some(not) = s.get("not")
        && conforms(not, v)
    {
        out.push(format!(
            "For '{at}', {} matched the schema in \"not\".",
            inspect(v)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment_status() -> Value {
        json!({"type": "object", "required": ["state"], "properties": {
            "state": {"type": "string", "enum": ["error", "failure", "inactive", "in_progress", "queued", "pending", "success"]},
            "environment_url": {"type": "string"},
            "description": {"type": "string", "nullable": true},
            "auto_inactive": {"type": "boolean"}
        }})
    }

    #[test]
    fn null_is_refused_where_only_a_string_is_allowed_and_taken_where_nullable() {
        let s = deployment_status();
        assert_eq!(
            violations(&s, &json!({"state": "success", "environment_url": null})),
            ["For 'properties/environment_url', nil is not a string."]
        );
        assert!(violations(&s, &json!({"state": "success", "description": null})).is_empty());
        assert_eq!(
            violations(&s, &json!({"state": "success", "description": 5})),
            ["For 'properties/description', 5 is not a string or null."]
        );
        assert_eq!(
            violations(&s, &json!({"state": "success", "auto_inactive": "yes"})),
            ["For 'properties/auto_inactive', \"yes\" is not a boolean."]
        );
    }

    #[test]
    fn a_nullable_one_of_takes_null_and_still_checks_its_alternatives() {
        // A commit's `author`: an account, `{}`, or null.
        let s = json!({
            "type": "object",
            "properties": {"author": {"nullable": true, "oneOf": [
                {"type": "object", "properties": {"login": {"type": "string"}}, "required": ["login"]},
                {"type": "object", "properties": {}, "additionalProperties": false},
            ]}},
        });
        assert!(violations(&s, &json!({"author": null})).is_empty());
        assert!(violations(&s, &json!({"author": {"login": "alice"}})).is_empty());
        assert!(violations(&s, &json!({"author": {}})).is_empty());
        assert!(!violations(&s, &json!({"author": 5})).is_empty());
        let strict = json!({"properties": {"author": {"oneOf": [{"type": "object"}]}}});
        assert!(!violations(&strict, &json!({"author": null})).is_empty());
    }

    #[test]
    fn enums_required_keys_and_every_violation_are_reported() {
        let s = deployment_status();
        assert_eq!(
            violations(&s, &json!({"state": "bogus"})),
            [
                "For 'properties/state', \"bogus\" is not a member of [\"error\", \"failure\", \"inactive\", \"in_progress\", \"queued\", \"pending\", \"success\"]."
            ]
        );
        assert_eq!(
            violations(&s, &json!({"environment_url": 1})),
            [
                "\"state\" wasn't supplied.",
                "For 'properties/environment_url', 1 is not a string."
            ]
        );
        assert_eq!(
            violations(&s, &Value::Null),
            ["For 'links/0/schema', nil is not an object."]
        );
        assert!(violations(&s, &json!({"state": "success", "unknown": [1]})).is_empty());
    }

    #[test]
    fn closed_objects_arrays_and_integers() {
        let s = json!({"type": "object", "additionalProperties": false, "properties": {
            "ids": {"type": "array", "maxItems": 2, "items": {"type": "integer"}},
            "label": {"type": "string", "maxLength": 3}
        }});
        assert_eq!(
            violations(&s, &json!({"ids": [1, 2.5], "extra": true})),
            [
                "\"extra\" is not a permitted key.",
                "For 'items', 2.5 is not an integer."
            ]
        );
        assert_eq!(
            violations(&s, &json!({"ids": [1, 2, 3], "label": "four"})),
            [
                "For 'properties/ids', an array of 3 items is longer than the maximum of 2.",
                "For 'properties/label', a string of 4 characters is longer than the maximum of 3."
            ]
        );
        assert!(violations(&s, &json!({"ids": [1, 2], "label": "abc"})).is_empty());
    }

    #[test]
    fn one_of_and_any_of() {
        // A deployment's payload: an object or a string, nothing else.
        let payload = json!({"type": "object", "properties": {"payload": {"oneOf": [
            {"type": "object", "additionalProperties": true}, {"type": "string"}
        ]}}});
        assert!(violations(&payload, &json!({"payload": {"a": 1}})).is_empty());
        assert!(violations(&payload, &json!({"payload": "x"})).is_empty());
        assert_eq!(
            violations(&payload, &json!({"payload": 3})),
            ["No subschema in \"oneOf\" matched."]
        );
        let both = json!({"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 5}]});
        assert_eq!(
            violations(&both, &json!("abc")),
            ["More than one subschema in \"oneOf\" matched."]
        );
        // A completed check run needs its conclusion.
        let check_run = json!({"type": "object", "anyOf": [
            {"properties": {"status": {"enum": ["completed"]}}, "required": ["conclusion"]},
            {"properties": {"status": {"enum": ["queued", "in_progress"]}}}
        ]});
        assert_eq!(
            violations(&check_run, &json!({"status": "completed"})),
            ["No subschema in \"anyOf\" matched."]
        );
        assert!(
            violations(
                &check_run,
                &json!({"status": "completed", "conclusion": "success"})
            )
            .is_empty()
        );
        assert!(violations(&check_run, &json!({"status": "queued"})).is_empty());
    }
}
