//! The gathered drift decision compiled to a regorus bytecode program and
//! run on regorus's VM.
//!
//! The VM decides about four times faster than the interpreter, but it is
//! much younger and does not yet agree with it on everything. In regorus
//! 0.14.1 it leaves a rule undefined where a body assigns from an
//! undefined reference and an `else` should apply, and where a builtin
//! fails (the wrong kind of value, a date that does not parse) it leaves
//! the rule undefined where the interpreter fails the decision; its
//! strict-builtin setting changed neither. So it is opt-in, and
//! [`crate::PolicySet`] only uses it after checking it against the
//! interpreter; this module just compiles and runs it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

/// A runaway guard, not a budget any honest decision comes near: the
/// shipped policy with a few suppressions runs some hundreds of
/// instructions, and each suppression adds a few dozen.
const MAX_INSTRUCTIONS: usize = 10_000_000;

pub(crate) struct Bytecode {
    /// The path of the rule compiled, which its errors are reported under.
    entry: String,
    program: Arc<Program>,
    data: Value,
    time_limit: Duration,
    idle: Mutex<Vec<RegoVM>>,
    /// More idle machines than threads deciding at once would never be
    /// used.
    capacity: usize,
    /// Cleared for good the first time the VM and the interpreter are
    /// seen to disagree; the set then decides with the interpreter.
    trusted: AtomicBool,
}

impl Bytecode {
    /// Compiles the rule at `entry` (the gathered decision) of `engine`'s
    /// policies. `data` must be what `engine` holds as `data`, since a
    /// program carries no data of its own.
    pub(crate) fn compile(
        engine: &Engine,
        entry: &str,
        data: Value,
        time_limit: Duration,
    ) -> anyhow::Result<Self> {
        let mut engine = engine.clone();
        let policy = engine.compile_with_entrypoint(&entry.into())?;
        let program = Compiler::compile_from_policy(&policy, &[entry])?;
        let bytecode = Self {
            entry: entry.to_owned(),
            program,
            data,
            time_limit,
            idle: Mutex::new(Vec::new()),
            capacity: std::thread::available_parallelism().map_or(4, |n| n.get()),
            trusted: AtomicBool::new(true),
        };
        // Data that clashes with a rule is refused here, not per decision.
        bytecode.machine()?;
        Ok(bytecode)
    }

    fn machine(&self) -> anyhow::Result<RegoVM> {
        let mut vm = RegoVM::new();
        vm.load_program(Arc::clone(&self.program));
        vm.set_data(self.data.clone())?;
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        vm.set_execution_timer_config(Some(ExecutionTimerConfig {
            limit: self.time_limit,
            check_interval: NonZeroU32::MIN.saturating_add(255),
        }));
        Ok(vm)
    }

    /// The gathered decision for `input`. A machine whose run failed is
    /// dropped rather than reused.
    pub(crate) fn evaluate(&self, input: Value) -> anyhow::Result<Value> {
        let mut vm = match self.idle().pop() {
            Some(vm) => vm,
            None => self.machine()?,
        };
        vm.set_input(input);
        let answer = vm.execute_entry_point_by_index(0)?;
        let mut idle = self.idle();
        if idle.len() < self.capacity {
            idle.push(vm);
        }
        Ok(answer)
    }

    pub(crate) fn entry(&self) -> &str {
        &self.entry
    }

    pub(crate) fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Relaxed)
    }

    /// Stops using the VM; true if this call is the one that stopped it.
    pub(crate) fn distrust(&self) -> bool {
        self.trusted.swap(false, Ordering::Relaxed)
    }

    // A panic elsewhere while holding the lock leaves a plain list of
    // machines, each whole, so the pool keeps using it.
    fn idle(&self) -> MutexGuard<'_, Vec<RegoVM>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
