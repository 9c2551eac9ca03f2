#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| org_mesh_fuzz::policy_input(data));
