use crate::bindings::log::{Host, Level};
use crate::host::CallState;

const MAX_MESSAGE: usize = 4096;
const MAX_FIELDS: usize = 32;

fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Host for CallState {
    async fn emit(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        if self.log_budget == 0 {
            return Ok(());
        }
        self.log_budget -= 1;
        let message = clip(&message, MAX_MESSAGE);
        let fields: Vec<String> = fields
            .iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| format!("{}={}", clip(k, 64), clip(v, 256)))
            .collect();
        let fields = fields.join(" ");
        let (plugin, version) = (&*self.plugin, &*self.version);
        match level {
            Level::Trace => tracing::trace!(plugin, version, fields, "{message}"),
            Level::Debug => tracing::debug!(plugin, version, fields, "{message}"),
            Level::Info => tracing::info!(plugin, version, fields, "{message}"),
            Level::Warn => tracing::warn!(plugin, version, fields, "{message}"),
            Level::Error => tracing::error!(plugin, version, fields, "{message}"),
        }
        if self.log_budget == 0 {
            tracing::warn!(
                plugin,
                version,
                "Plugin log budget for this call used up; further events dropped"
            );
        }
        Ok(())
    }
}
