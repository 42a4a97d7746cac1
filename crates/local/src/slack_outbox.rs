//! Slack, locally: the notices the stack would post, as Slack would get them (Block Kit, from
//! `nbfleet_core::blocks`), one JSON line each in `<dir>/slack.jsonl`, and their text in the
//! log. `make demo` prints the messages of its idle stop from there.

use nbfleet_core::blocks::Facts;
use nbfleet_core::ports::{Notice, Notifier};
use nbfleet_core::{Error, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Outbox {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Outbox {
    pub fn new(path: PathBuf) -> Self {
        Outbox {
            path,
            lock: Mutex::new(()),
        }
    }
}

/// The messages in an outbox file about the notebook `name`, oldest first.
pub fn messages_about(path: &std::path::Path, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["notebook"] == name)
        .map(|l| l["message"].clone())
        .collect()
}

#[async_trait::async_trait]
impl Notifier for Outbox {
    async fn notify(&self, notice: &Notice, facts: &Facts) -> Result<()> {
        tracing::info!(notebook = notice.name(), message = %notice.text(), "notification (to .local's slack.jsonl)");
        let line = serde_json::json!({
            "notebook": notice.name(),
            "message": nbfleet_core::blocks::notice(notice, facts),
        });
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::internal(format!("{}: {e}", self.path.display())))?;
        writeln!(file, "{line}").map_err(|e| Error::internal(format!("{}: {e}", self.path.display())))
    }
}
