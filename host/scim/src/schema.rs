//! The attributes org-mesh serves, described once: the discovery documents
//! are rendered from these tables, and the filter, PATCH and projection code
//! read them to learn which attributes are multi-valued, boolean, read-only,
//! case-exact or never returned.

use serde_json::{Map, Value, json};

use crate::ResourceKind;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// The most resources one list answer holds, whatever `count` asks for.
pub const MAX_RESULTS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Boolean,
    DateTime,
    Reference,
    Binary,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadWrite,
    ReadOnly,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Default,
    Always,
    Never,
}

#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Ty,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub unique: bool,
    pub canonical: &'static [&'static str],
    pub references: &'static [&'static str],
    pub sub: &'static [Attr],
}

impl Attr {
    const fn new(name: &'static str, ty: Ty) -> Self {
        Self {
            name,
            ty,
            multi: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            unique: false,
            canonical: &[],
            references: &[],
            sub: &[],
        }
    }
    const fn multi(self) -> Self {
        Self {
            multi: true,
            ..self
        }
    }
    const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }
    const fn exact(self) -> Self {
        Self {
            case_exact: true,
            ..self
        }
    }
    const fn mutability(self, mutability: Mutability) -> Self {
        Self { mutability, ..self }
    }
    const fn returned(self, returned: Returned) -> Self {
        Self { returned, ..self }
    }
    const fn unique(self) -> Self {
        Self {
            unique: true,
            ..self
        }
    }
    const fn canonical(self, canonical: &'static [&'static str]) -> Self {
        Self { canonical, ..self }
    }
    const fn refs(self, references: &'static [&'static str]) -> Self {
        Self { references, ..self }
    }
    const fn sub(self, sub: &'static [Attr]) -> Self {
        Self { sub, ..self }
    }

    /// The sub-attribute called `name`, matched case-insensitively.
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "name": self.name,
            "type": match self.ty {
                Ty::String => "string",
                Boolean => "boolean",
                DateTime => "dateTime",
                Reference => "reference",
                Binary => "binary",
                Complex => "complex",
            },
            "multiValued": self.multi,
            "description": self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": match self.mutability {
                Mutability::ReadWrite => "readWrite",
                ReadOnly => "readOnly",
                Immutable => "immutable",
                WriteOnly => "writeOnly",
            },
            "returned": match self.returned {
                Returned::Default => "default",
                Returned::Always => "always",
                Returned::Never => "never",
            },
            "uniqueness": if self.unique { "server" } else { "none" },
        });
        if let Some(map) = out.as_object_mut() {
            if !self.canonical.is_empty() {
                map.insert("canonicalValues".into(), json!(self.canonical));
            }
            if self.ty == Reference {
                map.insert("referenceTypes".into(), json!(self.references));
            }
            if !self.sub.is_empty() {
                let sub: Vec<Value> = self.sub.iter().map(Attr::to_json).collect();
                map.insert("subAttributes".into(), Value::Array(sub));
            }
        }
        out
    }
}

use Mutability::{Immutable, ReadOnly, WriteOnly};
use Ty::{Binary, Boolean, Complex, DateTime, Reference, String as Str};

const PRIMARY: Attr = Attr::new("primary", Boolean);
const DISPLAY: Attr = Attr::new("display", Str);

const NAME: &[Attr] = &[
    Attr::new("formatted", Str),
    Attr::new("familyName", Str),
    Attr::new("givenName", Str),
    Attr::new("middleName", Str),
    Attr::new("honorificPrefix", Str),
    Attr::new("honorificSuffix", Str),
];
const EMAILS: &[Attr] = &[
    Attr::new("value", Str),
    DISPLAY,
    Attr::new("type", Str).canonical(&["work", "home", "other"]),
    PRIMARY,
];
const PHONES: &[Attr] = &[
    Attr::new("value", Str),
    DISPLAY,
    Attr::new("type", Str).canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    PRIMARY,
];
const IMS: &[Attr] = &[
    Attr::new("value", Str),
    DISPLAY,
    Attr::new("type", Str),
    PRIMARY,
];
const PHOTOS: &[Attr] = &[
    Attr::new("value", Reference).refs(&["external"]),
    DISPLAY,
    Attr::new("type", Str).canonical(&["photo", "thumbnail"]),
    PRIMARY,
];
const ADDRESSES: &[Attr] = &[
    Attr::new("formatted", Str),
    Attr::new("streetAddress", Str),
    Attr::new("locality", Str),
    Attr::new("region", Str),
    Attr::new("postalCode", Str),
    Attr::new("country", Str),
    Attr::new("type", Str).canonical(&["work", "home", "other"]),
    PRIMARY,
];
const USER_GROUPS: &[Attr] = &[
    Attr::new("value", Str).mutability(ReadOnly),
    Attr::new("$ref", Reference)
        .refs(&["User", "Group"])
        .mutability(ReadOnly),
    Attr::new("display", Str).mutability(ReadOnly),
    Attr::new("type", Str)
        .canonical(&["direct", "indirect"])
        .mutability(ReadOnly),
];
const PLAIN_MULTI: &[Attr] = &[
    Attr::new("value", Str),
    DISPLAY,
    Attr::new("type", Str),
    PRIMARY,
];
const CERTIFICATES: &[Attr] = &[
    Attr::new("value", Binary),
    DISPLAY,
    Attr::new("type", Str),
    PRIMARY,
];

/// The core User schema (RFC 7643 §4.1).
pub const USER_ATTRS: &[Attr] = &[
    Attr::new("userName", Str).required().unique(),
    Attr::new("name", Complex).sub(NAME),
    Attr::new("displayName", Str),
    Attr::new("nickName", Str),
    Attr::new("profileUrl", Reference).refs(&["external"]),
    Attr::new("title", Str),
    Attr::new("userType", Str),
    Attr::new("preferredLanguage", Str),
    Attr::new("locale", Str),
    Attr::new("timezone", Str),
    Attr::new("active", Boolean),
    Attr::new("password", Str)
        .mutability(WriteOnly)
        .returned(Returned::Never),
    Attr::new("emails", Complex).multi().sub(EMAILS),
    Attr::new("phoneNumbers", Complex).multi().sub(PHONES),
    Attr::new("ims", Complex).multi().sub(IMS),
    Attr::new("photos", Complex).multi().sub(PHOTOS),
    Attr::new("addresses", Complex).multi().sub(ADDRESSES),
    Attr::new("groups", Complex)
        .multi()
        .mutability(ReadOnly)
        .sub(USER_GROUPS),
    Attr::new("entitlements", Complex).multi().sub(PLAIN_MULTI),
    Attr::new("roles", Complex).multi().sub(PLAIN_MULTI),
    Attr::new("x509Certificates", Complex)
        .multi()
        .sub(CERTIFICATES),
];

const MANAGER: &[Attr] = &[
    Attr::new("value", Str),
    Attr::new("$ref", Reference).refs(&["User"]),
    Attr::new("displayName", Str).mutability(ReadOnly),
];

/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_ATTRS: &[Attr] = &[
    Attr::new("employeeNumber", Str),
    Attr::new("costCenter", Str),
    Attr::new("organization", Str),
    Attr::new("division", Str),
    Attr::new("department", Str),
    Attr::new("manager", Complex).sub(MANAGER),
];

const MEMBERS: &[Attr] = &[
    Attr::new("value", Str).mutability(Immutable),
    Attr::new("$ref", Reference)
        .refs(&["User", "Group"])
        .mutability(Immutable),
    Attr::new("type", Str)
        .canonical(&["User", "Group"])
        .mutability(Immutable),
    Attr::new("display", Str).mutability(Immutable),
];

/// The core Group schema (RFC 7643 §4.2).
pub const GROUP_ATTRS: &[Attr] = &[
    Attr::new("displayName", Str).required().unique(),
    Attr::new("members", Complex).multi().sub(MEMBERS),
];

const META: &[Attr] = &[
    Attr::new("resourceType", Str).exact().mutability(ReadOnly),
    Attr::new("created", DateTime).mutability(ReadOnly),
    Attr::new("lastModified", DateTime).mutability(ReadOnly),
    Attr::new("location", Reference)
        .refs(&["uri"])
        .mutability(ReadOnly),
    Attr::new("version", Str).exact().mutability(ReadOnly),
];

/// The attributes every resource has (RFC 7643 §3.1); not part of any
/// published schema.
pub const COMMON_ATTRS: &[Attr] = &[
    Attr::new("id", Str)
        .exact()
        .mutability(ReadOnly)
        .returned(Returned::Always)
        .unique(),
    Attr::new("externalId", Str).exact(),
    Attr::new("meta", Complex).mutability(ReadOnly).sub(META),
];

impl ResourceKind {
    /// The core schema URN of this kind.
    pub fn schema(self) -> &'static str {
        match self {
            Self::User => USER_SCHEMA,
            Self::Group => GROUP_SCHEMA,
        }
    }

    /// The resource type name, as in `meta.resourceType`.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    /// The attribute that names a resource of this kind uniquely within
    /// its connector, compared case-insensitively.
    pub fn unique_attribute(self) -> &'static str {
        match self {
            Self::User => "userName",
            Self::Group => "displayName",
        }
    }

    /// The key a resource is found by its unique name under: the name in
    /// lower case, as SCIM compares it; `None` when it has no name.
    pub fn name_key(self, resource: &Value) -> Option<String> {
        resource
            .get(self.unique_attribute())
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    }

    /// The path segment of this kind's endpoint.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "Users",
            Self::Group => "Groups",
        }
    }

    /// The extension schema URNs this kind accepts.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::User => &[ENTERPRISE_SCHEMA],
            Self::Group => &[],
        }
    }

    pub(crate) fn core_attrs(self) -> &'static [Attr] {
        match self {
            Self::User => USER_ATTRS,
            Self::Group => GROUP_ATTRS,
        }
    }

    /// The attribute `name` of the core schema (or a common attribute) or,
    /// with `schema`, of that extension; names match case-insensitively.
    pub(crate) fn attr(self, schema: Option<&str>, name: &str) -> Option<&'static Attr> {
        let table: &[Attr] = match schema {
            Some(urn) if urn.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) && self == Self::User => {
                ENTERPRISE_ATTRS
            }
            Some(urn) if !urn.eq_ignore_ascii_case(self.schema()) => return None,
            _ => self.core_attrs(),
        };
        table
            .iter()
            .chain(if schema.is_none() { COMMON_ATTRS } else { &[] })
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The extension URN `name` names, spelled as this server spells it.
    pub(crate) fn extension(self, name: &str) -> Option<&'static str> {
        self.extensions()
            .iter()
            .copied()
            .find(|urn| urn.eq_ignore_ascii_case(name))
    }
}

fn meta(resource_type: &str, location: String) -> Value {
    let mut meta = Map::new();
    meta.insert(
        "resourceType".into(),
        Value::String(resource_type.to_owned()),
    );
    meta.insert("location".into(), Value::String(location));
    Value::Object(meta)
}

fn schema_doc(base: &str, id: &str, name: &str, attrs: &[Attr]) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": format!("{name} as org-mesh stores it"),
        "attributes": attrs.iter().map(Attr::to_json).collect::<Vec<_>>(),
        "meta": meta("Schema", format!("{base}/Schemas/{id}")),
    })
}

/// Every schema document, in the order `/Schemas` lists them.
pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        schema_doc(base, USER_SCHEMA, "User", USER_ATTRS),
        schema_doc(base, ENTERPRISE_SCHEMA, "EnterpriseUser", ENTERPRISE_ATTRS),
        schema_doc(base, GROUP_SCHEMA, "Group", GROUP_ATTRS),
    ]
}

/// Every resource type document, in the order `/ResourceTypes` lists them.
pub fn resource_types(base: &str) -> Vec<Value> {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .map(|kind| {
            let extensions: Vec<Value> = kind
                .extensions()
                .iter()
                .map(|urn| json!({ "schema": urn, "required": false }))
                .collect();
            let mut doc = json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": kind.name(),
                "name": kind.name(),
                "endpoint": format!("/{}", kind.endpoint()),
                "description": format!("{} accounts provisioned by the identity provider", kind.name()),
                "schema": kind.schema(),
                "meta": meta("ResourceType", format!("{base}/ResourceTypes/{}", kind.name())),
            });
            if let (false, Some(map)) = (extensions.is_empty(), doc.as_object_mut()) {
                map.insert("schemaExtensions".into(), Value::Array(extensions));
            }
            doc
        })
        .collect()
}

/// The service provider configuration: what this server supports.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": false },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A bearer token issued to one identity provider connector",
            "primary": true,
        }],
        "meta": meta("ServiceProviderConfig", format!("{base}/ServiceProviderConfig")),
    })
}

/// Finds a key of `map` case-insensitively, since SCIM attribute names are
/// case-insensitive but JSON keys are not.
pub fn key_of<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name))
}
