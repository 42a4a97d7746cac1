//! The ports: narrow traits through which handlers reach the outside world. Adapters in
//! `nbfleet-aws` implement them on AWS; tests implement them with fakes. Adapters own
//! pagination, retries, item mapping and SDK error codes, and answer with core [`Error`]s.

use crate::error::Result;
use crate::record::{Expect, Notebook};
use crate::state::State;
use async_trait::async_trait;
use jiff::Timestamp;

/// The notebook records (DynamoDB).
#[async_trait]
pub trait Store: Send + Sync {
    /// Writes `nb` if the stored record is as `expect` says; otherwise `Error::Conflict`.
    async fn put(&self, nb: &Notebook, expect: Expect) -> Result<()>;
    async fn get(&self, name: &str) -> Result<Option<Notebook>>;
    /// The record whose instance is `instance_id` (EC2 and SSM events carry only that).
    async fn by_instance(&self, instance_id: &str) -> Result<Option<Notebook>>;
    /// Every record in `state`, all pages.
    async fn list_by_state(&self, state: State) -> Result<Vec<Notebook>>;
    /// Every record, all pages.
    async fn list(&self) -> Result<Vec<Notebook>>;
}

/// Per-notebook secrets (Parameter Store SecureString): the Jupyter password hash or token.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// Creates or replaces the secret `name`, tagged with its notebook for attribute-based access.
    async fn put(&self, name: &str, value: &str, notebook: &str) -> Result<()>;
    async fn get(&self, name: &str) -> Result<Option<String>>;
    /// Deletes `name`; deleting a missing secret is not an error.
    async fn delete(&self, name: &str) -> Result<()>;
}

/// The time, injected so that decisions and tests control it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}
