//! The Rust side of the org-mesh plugin contract.
//!
//! A plugin is a `cdylib` crate built with
//! `cargo build --target wasm32-wasip2`. It implements the `Guest` trait of
//! its kind's module and names its type in that module's `export!` macro:
//!
//! ```ignore
//! use org_mesh_plugin::detector::{self, DetectRequest, Finding, Guest};
//! use org_mesh_plugin::types::{Description, PluginError};
//!
//! struct Quiet;
//!
//! impl Guest for Quiet {
//!     fn describe() -> Description { /* ... */ }
//!     fn detect(req: DetectRequest) -> Result<Vec<Finding>, PluginError> {
//!         Ok(Vec::new())
//!     }
//! }
//!
//! org_mesh_plugin::export_detector!(Quiet);
//! ```
//!
//! The contract itself, with every function and error case documented, is
//! the WIT package in `sdk/wit`.

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "host-imports",
        generate_all,
    });
}

#[doc(hidden)]
pub mod connector_world {
    wit_bindgen::generate!({
        path: "../wit",
        world: "connector-plugin",
        with: {
            "org-mesh:plugin/types@0.2.0": crate::types,
            "org-mesh:plugin/log@0.2.0": crate::log,
            "org-mesh:plugin/http@0.2.0": crate::http,
            "org-mesh:plugin/secrets@0.2.0": crate::secrets,
            "org-mesh:plugin/kv@0.2.0": crate::kv,
        },
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "org_mesh_plugin::connector_world",
    });
}

#[doc(hidden)]
pub mod detector_world {
    wit_bindgen::generate!({
        path: "../wit",
        world: "detector-plugin",
        with: {
            "org-mesh:plugin/types@0.2.0": crate::types,
            "org-mesh:plugin/log@0.2.0": crate::log,
            "org-mesh:plugin/graph@0.2.0": crate::graph,
            "org-mesh:plugin/kv@0.2.0": crate::kv,
        },
        pub_export_macro: true,
        export_macro_name: "export_detector",
        default_bindings_module: "org_mesh_plugin::detector_world",
    });
}

#[doc(hidden)]
pub mod executor_world {
    wit_bindgen::generate!({
        path: "../wit",
        world: "executor-plugin",
        with: {
            "org-mesh:plugin/types@0.2.0": crate::types,
            "org-mesh:plugin/log@0.2.0": crate::log,
            "org-mesh:plugin/http@0.2.0": crate::http,
            "org-mesh:plugin/secrets@0.2.0": crate::secrets,
            "org-mesh:plugin/kv@0.2.0": crate::kv,
        },
        pub_export_macro: true,
        export_macro_name: "export_executor",
        default_bindings_module: "org_mesh_plugin::executor_world",
    });
}

pub use bindings::org_mesh::plugin::{graph, http, kv, log, secrets, types};
pub use connector_world::export_connector;
pub use detector_world::export_detector;
pub use executor_world::export_executor;

/// The connector kind: implement [`connector::Guest`] and call
/// [`export_connector!`].
pub mod connector {
    pub use crate::connector_world::exports::org_mesh::plugin::connector::*;
}

/// The detector kind: implement [`detector::Guest`] and call
/// [`export_detector!`].
pub mod detector {
    pub use crate::detector_world::exports::org_mesh::plugin::detector::*;
}

/// The executor kind: implement [`executor::Guest`] and call
/// [`export_executor!`].
pub mod executor {
    pub use crate::executor_world::exports::org_mesh::plugin::executor::*;
}

pub mod props;
pub mod rest;
pub mod text;
