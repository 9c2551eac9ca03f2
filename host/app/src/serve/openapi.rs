//! The OpenAPI description of `/api/v1`, served at `/api/v1/openapi.json`.

use serde_json::{Value, json};

fn get(summary: &str, role: &str) -> Value {
    json!({
        "summary": summary,
        "description": format!("Needs a bearer token with the {role} role or higher."),
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {}}},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"}
        }
    })
}

/// `operation` with its parameters declared; a query that does not read
/// gets 400.
fn with(mut operation: Value, parameters: &[Value]) -> Value {
    operation["parameters"] = Value::Array(parameters.to_vec());
    if parameters.iter().any(|p| p["in"] == "query") {
        operation["responses"]["400"] = json!({"$ref": "#/components/responses/Error"});
    }
    operation
}

fn in_path(name: &str, what: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": what, "schema": {"type": "string"}})
}

fn in_query(name: &str, what: &str, required: bool, schema: &Value) -> Value {
    json!({"name": name, "in": "query", "required": required, "description": what, "schema": schema})
}

fn text() -> Value {
    json!({"type": "string"})
}

/// An approver's decision on a proposal, with the reason kept in its trail.
fn verdict(summary: &str) -> Value {
    json!({
        "summary": summary,
        "parameters": [in_path("id", "The proposal's id")],
        "description": "Needs the approver role or higher. The body is `{\"reason\": \"...\"}`.",
        "security": [{"bearer": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": {"type": "string", "pattern": "\\S", "description": "Why; kept in the trail, so it may not be empty or only white space."}}
        }}}},
        "responses": {
            "200": {"description": "The proposal with its trail", "content": {"application/json": {}}},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
            "422": {"$ref": "#/components/responses/Error"}
        }
    })
}

pub fn document() -> Value {
    let severities: Vec<&str> = org_mesh_model::Severity::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let states: Vec<&str> = crate::actions::State::ALL
        .iter()
        .map(|s| s.name())
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "org-mesh",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The twin of an organisation's identities and access: entities with their history, findings, proposed fixes, plugins and policies."
        },
        "paths": {
            "/api/v1/findings": {"get": with(get("Current findings; filter by severity (at or above), rule, subject", "viewer"), &[
                in_query("severity", "Only findings at this severity or above", false, &json!({"type": "string", "enum": severities})),
                in_query("rule", "Only findings of this rule", false, &text()),
                in_query("subject", "Only findings about this subject, as `Label(key)`", false, &text()),
            ])},
            "/api/v1/proposals": {"get": with(get("Proposed fixes with their dry-run plans", "viewer"), &[
                in_query("state", "Only proposals in this state", false, &json!({"type": "string", "enum": states})),
            ])},
            "/api/v1/entities": {"get": with(get("Nodes of one label", "viewer"), &[
                in_query("label", "The label, e.g. Account or Repository", true, &text()),
            ])},
            "/api/v1/entities/{label}/{key}": {"get": with(get("One node with its edges and change history", "viewer"), &[
                in_path("label", "The node's label"),
                in_path("key", "The node's key, e.g. github:octocat, with `/` escaped as %2F"),
            ])},
            "/api/v1/plugins": {"get": get("Loaded plugin instances, their calls, failures and quarantine", "viewer")},
            "/api/v1/policies": {"get": get("The policy set in service: its version, files and tests", "viewer")},
            "/api/v1/status": {"get": get("This replica: whether its graph store and cache answer, the depth of the change queue, the SCIM changes stored but not queued yet", "viewer")},
            "/api/v1/whoami": {"get": get("The name and role of the caller's token", "viewer")},
            "/api/v1/events": {"get": get("Server-sent events naming what changed (findings, proposals, plugins, reloads, or all); a heartbeat every 15 s, closed after 30 min and at shutdown", "viewer")},
            "/api/v1/campaigns/{fingerprint}": {"get": with(get("A narrative campaign: its finding, accounts, targets, cited messages and a timeline", "viewer"), &[
                in_path("fingerprint", "The fingerprint of the campaign's finding"),
                in_query("messages", "How many cited messages to include, oldest first (50 unless given)", false, &json!({"type": "integer", "minimum": 0})),
            ])},
            "/api/v1/reloads": {"get": get("The last reload of the policy folder and of each plugin instance: applied, rejected (and why) or unchanged", "viewer")},
            "/api/v1/proposals/{id}/approve": {"post": verdict("Approve a proposed fix; the trail keeps who approved and why")},
            "/api/v1/proposals/{id}/reject": {"post": verdict("Reject a proposed fix; the trail keeps who rejected it and why")},
            "/api/v1/proposals/{id}/retry": {"post": verdict("Try a failed or expired fix again: it is planned afresh and decided on like a new proposal; the trail keeps who asked and why")},
            "/api/v1/reload": {"post": {
                "summary": "Reload plugins and policies now",
                "description": "Needs the admin role. Answers 422 when a candidate was rejected; the previous version then keeps serving.",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "Reloaded"}, "422": {"description": "A candidate was rejected"}, "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"}}
            }},
            "/api/v1/sync": {"post": {
                "summary": "Sync every connector now",
                "description": "Needs the admin role.",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "Every connector synced; each one's run", "content": {"application/json": {}}}, "502": {"description": "Some connector failed; each one's run or error", "content": {"application/json": {}}}, "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"}}
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {
                "description": "An error in the API's one shape",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["status", "code", "message"],
                        "properties": {
                            "status": {"type": "integer"},
                            "code": {"type": "string"},
                            "message": {"type": "string"}
                        }
                    }}
                }}}
            }}
        }
    })
}
