//! Host-side bindings of the WIT contract in `sdk/wit`.
//!
//! The host interfaces are generated once, from the `host-imports` world, and
//! shared by the three plugin worlds through `with`, so one implementation
//! serves every kind and one linker can instantiate any plugin.

pub mod imports {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "host-imports",
        imports: { default: async | trappable },
    });
}

pub mod connector {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "connector-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "org-mesh:plugin/types": super::imports::org_mesh::plugin::types,
            "org-mesh:plugin/log": super::imports::org_mesh::plugin::log,
            "org-mesh:plugin/http": super::imports::org_mesh::plugin::http,
            "org-mesh:plugin/secrets": super::imports::org_mesh::plugin::secrets,
            "org-mesh:plugin/kv": super::imports::org_mesh::plugin::kv,
        },
    });
}

pub mod detector {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "detector-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "org-mesh:plugin/types": super::imports::org_mesh::plugin::types,
            "org-mesh:plugin/log": super::imports::org_mesh::plugin::log,
            "org-mesh:plugin/graph": super::imports::org_mesh::plugin::graph,
            "org-mesh:plugin/kv": super::imports::org_mesh::plugin::kv,
        },
    });
}

pub mod executor {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "executor-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "org-mesh:plugin/types": super::imports::org_mesh::plugin::types,
            "org-mesh:plugin/log": super::imports::org_mesh::plugin::log,
            "org-mesh:plugin/http": super::imports::org_mesh::plugin::http,
            "org-mesh:plugin/secrets": super::imports::org_mesh::plugin::secrets,
            "org-mesh:plugin/kv": super::imports::org_mesh::plugin::kv,
        },
    });
}

pub use imports::org_mesh::plugin::{graph, http, kv, log, secrets, types};
