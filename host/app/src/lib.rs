//! The org-mesh application: its configuration file, the pipeline that
//! syncs connectors into the twin and turns what changed into findings,
//! decisions and planned fixes, and the long-running service around it.
//!
//! The `org-mesh` binary is a thin command line over this crate.

pub mod actions;
pub mod backends;
pub mod campaigns;
pub mod config;
pub mod pipeline;
pub mod reload;
pub mod retention;
pub mod serve;
