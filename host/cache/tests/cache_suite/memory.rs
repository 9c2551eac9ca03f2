//! The coordination suite in the process.

use org_mesh_cache::memory::MemoryCoordination;

use super::*;

async fn coordination(_test: &str) -> ((), Arc<dyn Coordination>) {
    ((), Arc::new(MemoryCoordination::default()))
}

coordination_suite!(coordination);
