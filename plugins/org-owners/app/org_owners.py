"""The org-owners detector plugin, written in Python: finds organisations
with more owners than the operator allows, and organisations with so few
that losing one person loses control of them.

An owner is an account whose active membership of the organisation has the
role `admin` (GitHub organisation owners) or `owner` (GitLab group owners).
Memberships that carry no role at all mean the connector could not read
roles, so such an organisation is not judged either way.

Build the component with `plugins/org-owners/build OUT_DIR` (componentize-py,
installed by `.ci/setup`); the conformance suite and
`host/cli/tests/org_owners.rs` run it inside org-mesh.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import detector
from wit_world.imports import graph, log, types

NAME = "org-owners"
VERSION = "0.1.0"

TOO_MANY = "org-owners-too-many"
TOO_FEW = "org-owners-too-few"

RULES = [
    (TOO_MANY, "Organisation has more owners than allowed", "medium"),
    (TOO_FEW, "Organisation has fewer owners than needed to keep control", "low"),
]

OWNER_ROLES = ("admin", "owner")
DEFAULTS = {"max_owners": 3, "min_owners": 2}


class Detector(exports.Detector):
    def describe(self) -> types.Description:
        return types.Description(
            name=NAME,
            version=VERSION,
            summary="Finds organisations with too many owners, or too few to keep control",
            rules=[
                types.RuleInfo(id=id, title=title, default_severity=severity)
                for id, title, severity in RULES
            ],
            actions=[],
        )

    def detect(self, req: detector.DetectRequest) -> list[detector.Finding]:
        limits = parse_config(req.config)
        findings = []
        for org in organisations(req):
            findings.extend(judge(org, limits))
        return findings


def fail(error):
    """Ends the call with one of the WIT plugin-error cases."""
    raise Err(error)


def parse_config(text):
    try:
        given = json.loads(text) if text.strip() else {}
    except ValueError as e:
        fail(types.PluginError_InvalidConfig(f"config is not JSON: {e}"))
    if not isinstance(given, dict):
        fail(types.PluginError_InvalidConfig("config must be a JSON object"))
    limits = dict(DEFAULTS)
    for name, value in given.items():
        if name not in DEFAULTS:
            fail(types.PluginError_InvalidConfig(f"unknown field {name!r}"))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(types.PluginError_InvalidConfig(f"{name} must be a whole number of at least 1"))
        limits[name] = value
    if limits["min_owners"] > limits["max_owners"]:
        fail(
            types.PluginError_InvalidConfig(
                f"min_owners ({limits['min_owners']}) is above max_owners ({limits['max_owners']})"
            )
        )
    return limits


def organisations(req):
    """The organisations whose owners may have changed, sorted by key so
    that the same change set always gives findings in the same order."""
    refs = {}
    for change in req.nodes:
        node = change.node
        if node.label == "Organisation" and node.key:
            refs[node.key] = types.NodeRef(label=node.label, key=node.key)
    for change in req.edges:
        edge = change.edge
        if edge.kind == "MEMBER_OF" and edge.to.label == "Organisation" and edge.to.key:
            refs[edge.to.key] = edge.to
    return [refs[key] for key in sorted(refs)]


def judge(ref, limits):
    org = ask(graph.get_node, ref)
    if org is None or org.provenance.not_observed_since is not None:
        return []
    memberships = ask(graph.neighbours, ref, "MEMBER_OF", graph.Direction.INCOMING)
    current = [m for m in memberships if is_current(m)]
    if not any(text(m.edge.edge.properties, "role") for m in current):
        log.emit(
            log.Level.DEBUG,
            "No membership carries a role; owners unknown",
            [("organisation", ref.key)],
        )
        return []
    owners = sorted(
        (m for m in current if text(m.edge.edge.properties, "role") in OWNER_ROLES),
        key=lambda m: m.node.node.key,
    )
    if len(owners) > limits["max_owners"]:
        return [finding(TOO_MANY, org, owners, limits["max_owners"], "more than")]
    if len(owners) < limits["min_owners"]:
        return [finding(TOO_FEW, org, owners, limits["min_owners"], "fewer than")]
    return []


def ask(query, *args):
    """A graph query; the host's errors become the plugin's."""
    try:
        return query(*args)
    except Err as e:
        fail(types.PluginError_Internal(f"graph query failed: {e.value}"))


def is_current(membership):
    """An observed, active membership of an observed account."""
    edge = membership.edge
    account = membership.node
    return (
        account.node.label == "Account"
        and edge.provenance.not_observed_since is None
        and account.provenance.not_observed_since is None
        and text(edge.edge.properties, "state") in (None, "active")
    )


def text(properties, name):
    for key, value in properties:
        if key == name and isinstance(value, types.Value_Text):
            return value.value
    return None


def login(account):
    return text(account.node.properties, "login") or account.node.key


def finding(rule, org, owners, limit, comparison):
    name = text(org.node.properties, "login") or org.node.key
    logins = [login(m.node) for m in owners]
    count = len(owners)
    noun = "owner" if count == 1 else "owners"
    return detector.Finding(
        rule=rule,
        subject=types.NodeRef(label=org.node.label, key=org.node.key),
        key="",
        title=f"{name} has {count} {noun}, {comparison} {limit}",
        score=1.0,
        attributes=[
            ("organisation", types.Value_Text(name)),
            ("owner_count", types.Value_Integer(count)),
            ("limit", types.Value_Integer(limit)),
            ("owners", types.Value_Texts(logins)),
        ],
        evidence=[owner_evidence(m, name) for m in owners] + [org_evidence(org, name, count)],
        remedy=None,
    )


def owner_evidence(membership, org_name):
    account = membership.node.node
    return detector.Evidence(
        statement=f"{login(membership.node)} is an owner of {org_name}",
        subject=types.NodeRef(label=account.label, key=account.key),
        provenance=membership.edge.provenance,
    )


def org_evidence(org, name, count):
    memberships = "membership" if count == 1 else "memberships"
    return detector.Evidence(
        statement=f"{name} has {count} active owner {memberships}",
        subject=types.NodeRef(label=org.node.label, key=org.node.key),
        provenance=org.provenance,
    )
