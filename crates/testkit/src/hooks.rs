//! One wrapper for each port a test watches or breaks: every call passes through to the real
//! adapter, is counted by its name, and first runs the hook the test set for that call, if any.
//! A hook that answers an error stands in for the call (a crash, a fault); one that answers
//! `Ok` lets it through, after whatever it did (say, a concurrent write slipped in first).

use async_trait::async_trait;
use jiff::Timestamp;
use nbfleet_core::ports::{
    Ami, Compute, Instance, RestoreImage, RunRequest, Snapshot, SnapshotRequest, Store,
};
use nbfleet_core::validate::Access;
use nbfleet_core::{Expect, Notebook, Result, State};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// What a hooked call is about: the record it writes, or the name or id it names.
#[derive(Debug, Clone)]
pub enum Subject {
    Record(Box<Notebook>),
    Named(String),
}

impl Subject {
    /// The record a `put` writes (`None` for other calls).
    pub fn record(&self) -> Option<&Notebook> {
        match self {
            Subject::Record(nb) => Some(nb),
            Subject::Named(_) => None,
        }
    }
}

type HookFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;
type Hook = Arc<dyn Fn(Subject) -> HookFuture + Send + Sync>;

/// The counts and hooks of one wrapped port.
#[derive(Default)]
pub struct Hooks {
    counts: Mutex<BTreeMap<&'static str, usize>>,
    hooks: Mutex<HashMap<&'static str, Hook>>,
}

impl Hooks {
    /// How many times `call` was made.
    pub fn count(&self, call: &str) -> usize {
        self.counts.lock().unwrap().get(call).copied().unwrap_or(0)
    }

    /// How many times any of `calls` was made.
    pub fn total(&self, calls: &[&str]) -> usize {
        calls.iter().map(|c| self.count(c)).sum()
    }

    /// Runs `hook` before every `call` from now on (replacing an earlier hook on it).
    pub fn before<F, Fut>(&self, call: &'static str, hook: F)
    where
        F: Fn(Subject) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let hook: Hook = Arc::new(move |s| Box::pin(hook(s)));
        self.hooks.lock().unwrap().insert(call, hook);
    }

    async fn enter(&self, call: &'static str, subject: impl FnOnce() -> Subject) -> Result<()> {
        *self.counts.lock().unwrap().entry(call).or_default() += 1;
        let hook = self.hooks.lock().unwrap().get(call).cloned();
        match hook {
            Some(hook) => hook(subject()).await,
            None => Ok(()),
        }
    }
}

fn named(s: &str) -> impl FnOnce() -> Subject + '_ {
    move || Subject::Named(s.to_string())
}

/// The `Store` port, hooked.
pub struct HookedStore {
    pub inner: Arc<dyn Store>,
    pub hooks: Hooks,
    moves: Mutex<Vec<(State, State)>>,
}

impl HookedStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(HookedStore {
            inner,
            hooks: Hooks::default(),
            moves: Mutex::default(),
        })
    }

    /// Every state change a `put` through this store wrote, `(from, to)`, in order.
    pub fn moves(&self) -> Vec<(State, State)> {
        self.moves.lock().unwrap().clone()
    }
}

#[async_trait]
impl Store for HookedStore {
    async fn put(&self, nb: &Notebook, expect: Expect) -> Result<()> {
        self.hooks
            .enter("put", || Subject::Record(Box::new(nb.clone())))
            .await?;
        self.inner.put(nb, expect).await?;
        if let Expect::Version { state, .. } = expect
            && state != nb.state
        {
            self.moves.lock().unwrap().push((state, nb.state));
        }
        Ok(())
    }
    async fn get(&self, name: &str) -> Result<Option<Notebook>> {
        self.hooks.enter("get", named(name)).await?;
        self.inner.get(name).await
    }
    async fn by_instance(&self, id: &str) -> Result<Option<Notebook>> {
        self.hooks.enter("by_instance", named(id)).await?;
        self.inner.by_instance(id).await
    }
    async fn list_by_state(&self, state: State) -> Result<Vec<Notebook>> {
        self.hooks.enter("list_by_state", named(state.as_str())).await?;
        self.inner.list_by_state(state).await
    }
    async fn list_live(&self) -> Result<Vec<Notebook>> {
        self.hooks.enter("list_live", named("")).await?;
        self.inner.list_live().await
    }
    async fn list(&self) -> Result<Vec<Notebook>> {
        self.hooks.enter("list", named("")).await?;
        self.inner.list().await
    }
    async fn append_history(&self, name: &str, at: Timestamp, entry: &Value) -> Result<()> {
        self.hooks.enter("append_history", named(name)).await?;
        self.inner.append_history(name, at, entry).await
    }
    async fn history(&self, name: &str) -> Result<Vec<Value>> {
        self.hooks.enter("history", named(name)).await?;
        self.inner.history(name).await
    }
    async fn recent_history(&self, name: &str, limit: usize) -> Result<Vec<Value>> {
        self.hooks.enter("recent_history", named(name)).await?;
        self.inner.recent_history(name, limit).await
    }
    async fn first_time(&self, key: &str, until: Timestamp) -> Result<bool> {
        self.hooks.enter("first_time", named(key)).await?;
        self.inner.first_time(key, until).await
    }
}

/// The `Compute` port, hooked.
pub struct HookedCompute {
    pub inner: Arc<dyn Compute>,
    pub hooks: Hooks,
}

impl HookedCompute {
    pub fn new(inner: Arc<dyn Compute>) -> Arc<Self> {
        Arc::new(HookedCompute {
            inner,
            hooks: Hooks::default(),
        })
    }

    /// EC2 actions that change an instance (start, stop, terminate) so far.
    pub fn instance_changes(&self) -> usize {
        self.hooks.total(&["start", "stop", "terminate"])
    }
}

#[async_trait]
impl Compute for HookedCompute {
    async fn resolve_ami(&self, parameter: &str) -> Result<Ami> {
        self.hooks.enter("resolve_ami", named(parameter)).await?;
        self.inner.resolve_ami(parameter).await
    }
    async fn ensure_security_group(
        &self,
        notebook: &str,
        generation: u32,
        access: &Access,
        vpc_id: Option<&str>,
    ) -> Result<String> {
        self.hooks.enter("ensure_security_group", named(notebook)).await?;
        self.inner
            .ensure_security_group(notebook, generation, access, vpc_id)
            .await
    }
    async fn delete_security_group(&self, group_id: &str) -> Result<()> {
        self.hooks.enter("delete_security_group", named(group_id)).await?;
        self.inner.delete_security_group(group_id).await
    }
    async fn list_tagged_groups(&self) -> Result<Vec<(String, String)>> {
        self.hooks.enter("list_tagged_groups", named("")).await?;
        self.inner.list_tagged_groups().await
    }
    async fn run_instance(&self, req: &RunRequest) -> Result<Instance> {
        self.hooks.enter("run_instance", named(&req.notebook)).await?;
        self.inner.run_instance(req).await
    }
    async fn find_instances(&self, notebook: &str, generation: u32) -> Result<Vec<Instance>> {
        self.hooks.enter("find_instances", named(notebook)).await?;
        self.inner.find_instances(notebook, generation).await
    }
    async fn list_tagged(&self) -> Result<Vec<(String, Instance)>> {
        self.hooks.enter("list_tagged", named("")).await?;
        self.inner.list_tagged().await
    }
    async fn describe(&self, id: &str) -> Result<Option<Instance>> {
        self.hooks.enter("describe", named(id)).await?;
        self.inner.describe(id).await
    }
    async fn start(&self, id: &str) -> Result<()> {
        self.hooks.enter("start", named(id)).await?;
        self.inner.start(id).await
    }
    async fn stop(&self, id: &str) -> Result<()> {
        self.hooks.enter("stop", named(id)).await?;
        self.inner.stop(id).await
    }
    async fn terminate(&self, id: &str) -> Result<()> {
        self.hooks.enter("terminate", named(id)).await?;
        self.inner.terminate(id).await
    }
    async fn snapshot(&self, req: &SnapshotRequest) -> Result<String> {
        self.hooks.enter("snapshot", named(&req.volume_id)).await?;
        self.inner.snapshot(req).await
    }
    async fn list_snapshots(&self) -> Result<Vec<Snapshot>> {
        self.hooks.enter("list_snapshots", named("")).await?;
        self.inner.list_snapshots().await
    }
    async fn describe_snapshot(&self, id: &str) -> Result<Option<Snapshot>> {
        self.hooks.enter("describe_snapshot", named(id)).await?;
        self.inner.describe_snapshot(id).await
    }
    async fn mark_snapshot(&self, id: &str, at: Timestamp) -> Result<()> {
        self.hooks.enter("mark_snapshot", named(id)).await?;
        self.inner.mark_snapshot(id, at).await
    }
    async fn delete_snapshot(&self, id: &str) -> Result<()> {
        self.hooks.enter("delete_snapshot", named(id)).await?;
        self.inner.delete_snapshot(id).await
    }
    async fn image_from_snapshot(&self, req: &RestoreImage) -> Result<Ami> {
        self.hooks
            .enter("image_from_snapshot", named(&req.snapshot_id))
            .await?;
        self.inner.image_from_snapshot(req).await
    }
    async fn deregister_image(&self, id: &str) -> Result<()> {
        self.hooks.enter("deregister_image", named(id)).await?;
        self.inner.deregister_image(id).await
    }
    async fn set_instance_type(&self, id: &str, instance_type: &str) -> Result<()> {
        self.hooks.enter("set_instance_type", named(id)).await?;
        self.inner.set_instance_type(id, instance_type).await
    }
    async fn grow_volume(&self, volume_id: &str, gb: u32) -> Result<()> {
        self.hooks.enter("grow_volume", named(volume_id)).await?;
        self.inner.grow_volume(volume_id, gb).await
    }
}

/// A `Notifier` that keeps what it is told, with the record's facts it went out with, for
/// tests that check a notice went out.
#[derive(Default)]
pub struct Heard(Mutex<Vec<(nbfleet_core::ports::Notice, nbfleet_core::blocks::Facts)>>);

impl Heard {
    pub fn notices(&self) -> Vec<nbfleet_core::ports::Notice> {
        self.0.lock().unwrap().iter().map(|(n, _)| n.clone()).collect()
    }

    /// Each notice's facts, in the order told.
    pub fn facts(&self) -> Vec<nbfleet_core::blocks::Facts> {
        self.0.lock().unwrap().iter().map(|(_, f)| f.clone()).collect()
    }
}

#[async_trait]
impl nbfleet_core::ports::Notifier for Heard {
    async fn notify(
        &self,
        notice: &nbfleet_core::ports::Notice,
        facts: &nbfleet_core::blocks::Facts,
    ) -> Result<()> {
        self.0.lock().unwrap().push((notice.clone(), facts.clone()));
        Ok(())
    }
}
