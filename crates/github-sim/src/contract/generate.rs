//! Cuts the simulator's operations out of GitHub's full OpenAPI description.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// Schema keywords carried into the subset: everything that constrains a value. Descriptions,
/// titles, examples, defaults and GitHub's `x-` annotations are left out to keep it small.
const SCHEMA_KEYWORDS: &[&str] = &[
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
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "format",
];

/// The subset file's text for the served routes, from the full description `full` (the
/// unresolved `api.github.com.json`) published as `source` (e.g. `@octokit/openapi 23.0.2`).
///
/// One operation per line, keys sorted, so a regenerated file diffs by operation and the same
/// input always gives the same bytes.
pub fn generate_subset(full: &Value, source: &str, routes: &[(&str, &str)]) -> Result<String> {
    let mut routes = routes.to_vec();
    routes.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    routes.dedup();
    let resolver = Resolver { root: full };
    let mut lines = Vec::with_capacity(routes.len());
    for (method, path) in routes {
        let op = full
            .get("paths")
            .and_then(|p| p.get(path))
            .and_then(|p| p.get(method.to_ascii_lowercase()))
            .with_context(|| format!("{method} {path} is not in GitHub's OpenAPI description"))?;
        let entry =
            operation(&resolver, method, path, op).with_context(|| format!("extracting {method} {path}"))?;
        let mut line = String::new();
        write_canonical(&entry, &mut line);
        lines.push(line);
    }
    let openapi = full.get("openapi").and_then(Value::as_str).unwrap_or("");
    let mut header = String::from("{");
    for (key, value) in [
        ("generator", "scripts/spec-subset"),
        ("source", source),
        ("openapi", openapi),
    ] {
        header.push_str(&format!("{}:{},", json!(key), json!(value)));
    }
    header.push_str("\"operations\":[");
    Ok(format!("{header}\n{}\n]}}\n", lines.join(",\n")))
}

fn operation(resolver: &Resolver, method: &str, path: &str, op: &Value) -> Result<Value> {
    let mut entry = Map::new();
    entry.insert("method".into(), json!(method));
    entry.insert("path".into(), json!(path));
    if let Some(id) = op.get("operationId") {
        entry.insert("operationId".into(), id.clone());
    }
    let docs = op
        .pointer("/externalDocs/url")
        .and_then(Value::as_str)
        .context("no externalDocs.url (GitHub's documentation_url)")?;
    entry.insert("documentation_url".into(), json!(docs));

    let mut parameters = Vec::new();
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let p = resolver.follow(p)?;
        let mut kept = Map::new();
        for key in ["name", "in", "required"] {
            if let Some(v) = p.get(key) {
                kept.insert(key.into(), v.clone());
            }
        }
        if let Some(schema) = p.get("schema") {
            kept.insert("schema".into(), resolver.schema(schema, &mut Vec::new())?);
        }
        parameters.push(Value::Object(kept));
    }
    if !parameters.is_empty() {
        entry.insert("parameters".into(), Value::Array(parameters));
    }

    if let Some(body) = op.get("requestBody") {
        let body = resolver.follow(body)?;
        let schema = body
            .pointer("/content/application~1json/schema")
            .context("the request body has no application/json schema")?;
        entry.insert(
            "requestBody".into(),
            json!({
                "required": body.get("required").and_then(Value::as_bool).unwrap_or(false),
                "schema": resolver.schema(schema, &mut Vec::new())?,
            }),
        );
    }

    let mut responses = Map::new();
    for (status, response) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let response = resolver.follow(response)?;
        let mut kept = Map::new();
        if let Some(schema) = response_schema(response) {
            kept.insert("schema".into(), resolver.schema(schema, &mut Vec::new())?);
        }
        responses.insert(status.clone(), Value::Object(kept));
    }
    entry.insert("responses".into(), Value::Object(responses));
    Ok(Value::Object(entry))
}

/// The JSON schema of a response: `application/json` if given, else the first media type (by
/// name) that has one (`application/scim+json`, …).
fn response_schema(response: &Value) -> Option<&Value> {
    let content = response.get("content")?.as_object()?;
    if let Some(schema) = content.get("application/json").and_then(|c| c.get("schema")) {
        return Some(schema);
    }
    let mut types: Vec<&String> = content.keys().collect();
    types.sort();
    types
        .into_iter()
        .find_map(|t| content.get(t).and_then(|c| c.get("schema")))
}

/// `schema`, a schema of the document `root`, with every `$ref` inlined (for checking values
/// against a description other than the subset, such as GitHub's webhook schemas).
pub fn inline_schema(root: &Value, schema: &Value) -> Result<Value> {
    Resolver { root }.schema(schema, &mut Vec::new())
}

struct Resolver<'a> {
    root: &'a Value,
}

impl<'a> Resolver<'a> {
    fn lookup(&self, reference: &str) -> Result<&'a Value> {
        let pointer = reference
            .strip_prefix('#')
            .with_context(|| format!("{reference}: only references into the same document are expected"))?;
        self.root
            .pointer(pointer)
            .with_context(|| format!("{reference} points at nothing"))
    }

    /// A parameter, request body or response, following `$ref`s to the object itself.
    fn follow(&self, mut v: &'a Value) -> Result<&'a Value> {
        let mut hops = 0;
        while let Some(reference) = v.get("$ref").and_then(Value::as_str) {
            hops += 1;
            if hops > 32 {
                bail!("{reference}: a chain of references that does not end");
            }
            v = self.lookup(reference)?;
        }
        Ok(v)
    }

    /// A schema with every `$ref` inlined and only [`SCHEMA_KEYWORDS`] kept. `stack` holds the
    /// references being inlined, to refuse a schema that contains itself.
    fn schema(&self, v: &'a Value, stack: &mut Vec<&'a str>) -> Result<Value> {
        if let Some(reference) = v.get("$ref").and_then(Value::as_str) {
            if stack.contains(&reference) {
                bail!("{reference} contains itself; a recursive schema cannot be inlined");
            }
            stack.push(reference);
            let inlined = self.schema(self.lookup(reference)?, stack);
            stack.pop();
            return inlined;
        }
        let Some(obj) = v.as_object() else {
            // `true` / `false` schemas.
            return Ok(v.clone());
        };
        let mut out = Map::new();
        for (key, value) in obj {
            if !SCHEMA_KEYWORDS.contains(&key.as_str()) {
                continue;
            }
            let kept = match key.as_str() {
                "properties" => {
                    let mut props = Map::new();
                    for (name, schema) in value.as_object().into_iter().flatten() {
                        props.insert(name.clone(), self.schema(schema, stack)?);
                    }
                    Value::Object(props)
                }
                "items" | "not" | "additionalProperties" => self.schema(value, stack)?,
                "oneOf" | "anyOf" | "allOf" => Value::Array(
                    value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| self.schema(s, stack))
                        .collect::<Result<_>>()?,
                ),
                _ => value.clone(),
            };
            out.insert(key.clone(), kept);
        }
        Ok(Value::Object(out))
    }
}

/// Compact JSON with object keys sorted, whatever order `serde_json` keeps them in.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "openapi": "3.0.3",
            "components": {
                "schemas": {
                    "user": {"type": "object", "title": "User", "description": "A user",
                             "properties": {"login": {"type": "string", "example": "octocat"},
                                            "description": {"type": "string", "nullable": true}},
                             "required": ["login"]},
                    "loop": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/loop"}}}
                },
                "responses": {"not_found": {"content": {"application/json": {"schema": {"type": "object"}}}}}
            }
        })
    }

    #[test]
    fn schemas_are_inlined_and_stripped_of_prose_but_not_of_properties_named_like_it() {
        let d = doc();
        let r = Resolver { root: &d };
        let s = r
            .schema(&json!({"$ref": "#/components/schemas/user"}), &mut Vec::new())
            .unwrap();
        assert_eq!(
            s,
            json!({"type": "object", "required": ["login"],
                   "properties": {"login": {"type": "string"},
                                  "description": {"type": "string", "nullable": true}}})
        );
    }

    #[test]
    fn a_recursive_schema_is_refused_by_name() {
        let d = doc();
        let r = Resolver { root: &d };
        let err = r
            .schema(&json!({"$ref": "#/components/schemas/loop"}), &mut Vec::new())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("#/components/schemas/loop contains itself"),
            "{err}"
        );
        let err = r
            .schema(&json!({"$ref": "#/components/schemas/nope"}), &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("points at nothing"), "{err}");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = String::new();
        write_canonical(&json!({"b": [{"z": 1, "a": null}], "a": "x\n"}), &mut out);
        assert_eq!(out, r#"{"a":"x\n","b":[{"a":null,"z":1}]}"#);
    }

    #[test]
    fn responses_prefer_application_json() {
        let r = json!({"content": {"application/scim+json": {"schema": {"type": "string"}},
                                   "application/json": {"schema": {"type": "object"}}}});
        assert_eq!(response_schema(&r), Some(&json!({"type": "object"})));
        let r =
            json!({"content": {"text/plain": {}, "application/scim+json": {"schema": {"type": "string"}}}});
        assert_eq!(response_schema(&r), Some(&json!({"type": "string"})));
        assert_eq!(response_schema(&json!({"description": "No content"})), None);
    }
}
