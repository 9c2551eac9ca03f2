//! Rego policy for org-mesh: decides, per drift finding, its severity,
//! whether it is suppressed and whether its fix may run unattended.
//!
//! [`PolicySet::load`] compiles a folder of `*.rego` files together with
//! the tuning file `drift-rules.yaml` (exposed to Rego as `data.tuning`)
//! and runs the policies' own `test_*` rules before accepting them.
//! [`PolicySet::decide`] then evaluates `data.orgmesh.drift.{severity,
//! suppressed, suppress_reason, auto_fix}` for one finding.
//!
//! Run the tests with `cargo test -p org-mesh-policy`; they load the
//! shipped `policies/` folder at the workspace root.

mod approval;
mod bytecode;
mod decision;
mod error;
mod pool;
mod set;
mod tuning;

pub use approval::{ActionFacts, Approval, ApprovalInput, ApproverRole, FindingFacts};
pub use decision::{Decision, DecisionInput};
pub use error::{PolicyError, SourceAt, TestFailure, TestOutcome, TuningError, TuningProblem};
pub use set::{Evaluator, PolicySet};
pub use tuning::{
    FILE_NAME as TUNING_FILE_NAME, KNOWN_RULES, RuleTuning, SubjectPattern, Suppression,
    Thresholds, Tuning,
};
