//! Rules about an organisation's own settings.

use org_mesh_plugin::detector::Finding;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::StoredNode;

use super::{ORG_2FA_NOT_REQUIRED, name_of};
use crate::finding::{Draft, evidence};
use crate::graph::{self, boolean, observed};

pub fn two_factor_not_required(org: &StoredNode) -> Vec<Finding> {
    let props = &org.node.properties;
    if !observed(&org.provenance) || boolean(props, "two_factor_requirement_enabled") != Some(false)
    {
        return Vec::new();
    }
    let name = name_of(org);
    let subject = graph::reference(org);
    let mut draft = Draft::new(
        ORG_2FA_NOT_REQUIRED,
        subject.clone(),
        "",
        format!("{name} does not require two-factor authentication of its members"),
    );
    draft.attributes = Props::new()
        .text("organisation", graph::login(org))
        .boolean("two_factor_requirement_enabled", false)
        .build();
    draft.evidence.push(evidence(
        format!("{name} has two_factor_requirement_enabled set to false"),
        subject,
        &org.provenance,
    ));
    vec![draft.build()]
}
