//! The deployment templates as the tests read them: plain YAML (long-form
//! intrinsics only) loaded as JSON values, `Ref`/`Fn::GetAtt` targets, and the
//! roles whose policies [`crate::iam`] reads: the responder function's execution
//! role (infra/template.yaml) and the member-account role (infra/member-role.yaml).

use serde_json::{Value, json};

use crate::iam::Role;
use crate::moto::workspace_root;

/// The administrator account's template (the function, its role, the ledger).
pub const TEMPLATE: &str = "infra/template.yaml";
/// The member accounts' template.
pub const MEMBER_ROLE: &str = "infra/member-role.yaml";
/// The function in infra/template.yaml whose execution role is checked.
pub const FUNCTION: &str = "ResponderFunction";
/// The role in infra/member-role.yaml.
pub const MEMBER: &str = "MemberRole";

/// A template of the workspace (`infra/...`), parsed.
pub fn load(file: &str) -> Value {
    let path = workspace_root().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{file}: cannot read {}: {e}", path.display()));
    serde_saphyr::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{file}: not plain YAML (long-form intrinsics only): {e}"))
}

impl Role {
    /// The inline policies of an `AWS::IAM::Role` resource.
    pub fn iam_role(&mut self, template: &Value, id: &str) {
        let resource = &template["Resources"][id];
        if resource["Type"] != "AWS::IAM::Role" {
            self.opaque.push(format!(
                "Resources.{id} is not an AWS::IAM::Role (Type {})",
                resource["Type"]
            ));
            return;
        }
        let props = &resource["Properties"];
        if props.get("ManagedPolicyArns").is_some() {
            self.opaque.push(format!(
                "Resources.{id}.Properties.ManagedPolicyArns: managed policies; write their statements out"
            ));
        }
        for (i, p) in list(&props["Policies"]).iter().enumerate() {
            self.document(
                &p["PolicyDocument"],
                &format!("Resources.{id}.Properties.Policies[{i}]"),
                None,
            );
        }
    }

    /// Policy resources attached to the role `id` (a role of this template, or the
    /// one SAM creates).
    pub fn attached(&mut self, template: &Value, id: &str) {
        let Some(resources) = template["Resources"].as_object() else {
            return;
        };
        let reference = json!({ "Ref": id });
        for (name, r) in resources {
            let props = &r["Properties"];
            let attached = match r["Type"].as_str() {
                Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                    list(&props["Roles"]).contains(&reference)
                }
                Some("AWS::IAM::RolePolicy") => props["RoleName"] == reference,
                _ => false,
            };
            if attached {
                self.document(
                    &props["PolicyDocument"],
                    &format!("Resources.{name}.Properties.PolicyDocument"),
                    r["Condition"].as_str(),
                );
            }
        }
    }
}

/// The function's execution role: SAM's `Policies` (or the role `Role` names) and
/// any policy resource attached to it.
pub fn function_role(template: &Value, file: &'static str) -> Role {
    let function = &template["Resources"][FUNCTION];
    assert_eq!(
        function["Type"], "AWS::Serverless::Function",
        "{file}: Resources.{FUNCTION} is not the responder function"
    );
    let mut role = Role::new(
        file,
        format!("{FUNCTION}'s execution role"),
        "${AWS::Region}",
    );
    let props = &function["Properties"];
    let role_id = match props.get("Role") {
        Some(r) => match referenced(template, r) {
            Some(id) => {
                role.iam_role(template, &id);
                id
            }
            None => {
                role.opaque.push(format!(
                    "Resources.{FUNCTION}.Properties.Role names a role outside this template"
                ));
                return role;
            }
        },
        None => {
            for (i, p) in list(&props["Policies"]).iter().enumerate() {
                let at = format!("Resources.{FUNCTION}.Properties.Policies[{i}]");
                if p.get("Statement").is_some() {
                    role.document(p, &at, None);
                } else {
                    role.opaque.push(format!(
                        "{at}: a managed policy or SAM policy template ({p}); write its statements out"
                    ));
                }
            }
            // The role SAM creates from `Policies`.
            format!("{FUNCTION}Role")
        }
    };
    role.attached(template, &role_id);
    role
}

/// The member-account role and the policy resources attached to it.
pub fn member_role(template: &Value, file: &'static str) -> Role {
    let mut role = Role::new(file, format!("{MEMBER} (member-account role)"), "*");
    role.iam_role(template, MEMBER);
    role.attached(template, MEMBER);
    role
}

/// The logical id a `Ref` or `Fn::GetAtt` names, if it is a resource of the template.
pub fn referenced(template: &Value, v: &Value) -> Option<String> {
    let id = match (&v["Ref"], &v["Fn::GetAtt"]) {
        (Value::String(id), _) => id.clone(),
        (_, Value::Array(parts)) => parts.first()?.as_str()?.to_owned(),
        (_, Value::String(dotted)) => dotted.split('.').next()?.to_owned(),
        _ => return None,
    };
    template["Resources"].get(&id).map(|_| id)
}

/// A list, a single value as a one-element list, nothing as empty.
pub fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// A string or a list of strings.
pub fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) => list.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}
