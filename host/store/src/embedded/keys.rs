//! Table keys: the parts of a natural key joined with NUL.
//!
//! A node key may contain any character, NUL included, so each part is
//! escaped (NUL as 0x01 0x01, 0x01 as 0x01 0x02). The escape keeps parts
//! free of NUL, which makes `parts + NUL` a prefix that matches exactly the
//! keys that start with those parts.

use org_mesh_model::{EntityId, NodeRef};

const SEP: char = '\0';

fn push_escaped(out: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '\0' => out.push_str("\u{1}\u{1}"),
            '\u{1}' => out.push_str("\u{1}\u{2}"),
            c => out.push(c),
        }
    }
}

fn unescape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\u{1}') => out.push('\0'),
            Some('\u{2}') => out.push('\u{1}'),
            // Never written by push_escaped; kept rather than lost.
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        push_escaped(&mut out, part);
    }
    out
}

fn prefix(parts: &[&str]) -> String {
    let mut out = join(parts);
    out.push(SEP);
    out
}

/// `label\0key`.
pub(super) fn node(node: &NodeRef) -> String {
    join(&[&node.label, &node.key])
}

/// The prefix of every edge at `node`, of any kind, in either table.
pub(super) fn node_prefix(node: &NodeRef) -> String {
    prefix(&[&node.label, &node.key])
}

/// The prefix of every node key with `label`.
pub(super) fn label_prefix(label: &str) -> String {
    prefix(&[label])
}

/// The label of a node key.
pub(super) fn label_of(node_key: &str) -> String {
    unescape(node_key.split(SEP).next().unwrap_or_default())
}

/// `from\0kind\0to`, the key of the edges table.
pub(super) fn edge_out(kind: &str, from: &NodeRef, to: &NodeRef) -> String {
    join(&[&from.label, &from.key, kind, &to.label, &to.key])
}

/// `to\0kind\0from`, the key of the incoming index.
pub(super) fn edge_in(kind: &str, from: &NodeRef, to: &NodeRef) -> String {
    join(&[&to.label, &to.key, kind, &from.label, &from.key])
}

/// The prefix of the edges of `kind` at `node`, in either table.
pub(super) fn adjacency_prefix(node: &NodeRef, kind: &str) -> String {
    prefix(&[&node.label, &node.key, kind])
}

/// True when an edges-table key has `kind`.
pub(super) fn edge_has_kind(edge_out_key: &str, kind: &str) -> bool {
    let mut wanted = String::new();
    push_escaped(&mut wanted, kind);
    edge_out_key.split(SEP).nth(2) == Some(wanted.as_str())
}

/// The key of the history index.
pub(super) fn entity(entity: &EntityId) -> String {
    match entity {
        EntityId::Node(n) => format!("node{SEP}{}", node(n)),
        EntityId::Edge { kind, from, to } => format!("edge{SEP}{}", edge_out(kind, from, to)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_a_key_cannot_fake_another_key() {
        let tricky = NodeRef::new("Account", "a\0b");
        let plain = NodeRef::new("Account", "a");
        assert_ne!(node(&tricky), node(&plain));
        assert!(!node(&tricky).starts_with(&prefix(&["Account", "a"])));
        assert_eq!(label_of(&node(&tricky)), "Account");
        assert_eq!(unescape("a\u{1}\u{1}b\u{1}\u{2}"), "a\0b\u{1}");
    }

    #[test]
    fn edge_keys_carry_their_kind() {
        let (a, b) = (NodeRef::new("A", "1"), NodeRef::new("B", "2"));
        let key = edge_out("MEMBER_OF", &a, &b);
        assert!(edge_has_kind(&key, "MEMBER_OF"));
        assert!(!edge_has_kind(&key, "OWNS"));
        assert!(key.starts_with(&adjacency_prefix(&a, "MEMBER_OF")));
        assert!(edge_in("MEMBER_OF", &a, &b).starts_with(&adjacency_prefix(&b, "MEMBER_OF")));
        assert!(key.starts_with(&node_prefix(&a)));
        assert!(edge_in("MEMBER_OF", &a, &b).starts_with(&node_prefix(&b)));
        let longer = NodeRef::new("A", "10");
        assert!(
            !edge_out("MEMBER_OF", &longer, &b).starts_with(&node_prefix(&NodeRef::new("A", "1")))
        );
    }
}
