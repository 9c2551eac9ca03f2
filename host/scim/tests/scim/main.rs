//! The SCIM service provider driven over HTTP on 127.0.0.1, as Okta, Entra ID
//! and the scim2-tester peer drive it.

mod bad_input;
mod common;
mod embedded;
mod entra;
mod handover;
mod okta;
mod peer;
