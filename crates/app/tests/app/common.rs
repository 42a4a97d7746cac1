//! Shared setup for the lifecycle tests: a provisioned moto account, the real adapters on it,
//! a clock the test moves, and a Compute wrapper that counts EC2 actions.

#![allow(dead_code)]

use async_trait::async_trait;
use jiff::Timestamp;
use nbfleet_aws::Clients;
use nbfleet_core::ports::{Ami, Clock, Compute, Deps, Instance, RunRequest};
use nbfleet_core::validate::Access;
use nbfleet_core::{Notebook, Result, State};
use nbfleet_local::moto;
use nbfleet_local::setup;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const OWNER: &str = "alice";

/// A clock that stands still until the test moves it.
pub struct TestClock(pub Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// Counts the EC2 actions that change an instance (start, stop, terminate).
pub struct Counting {
    pub inner: Arc<dyn Compute>,
    pub starts: AtomicUsize,
    pub stops: AtomicUsize,
    pub terminates: AtomicUsize,
}

impl Counting {
    pub fn total(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
            + self.stops.load(Ordering::SeqCst)
            + self.terminates.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Compute for Counting {
    async fn resolve_ami(&self, p: &str) -> Result<Ami> {
        self.inner.resolve_ami(p).await
    }
    async fn ensure_security_group(&self, n: &str, g: u32, a: &Access, v: Option<&str>) -> Result<String> {
        self.inner.ensure_security_group(n, g, a, v).await
    }
    async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.inner.delete_security_group(id).await
    }
    async fn run_instance(&self, r: &RunRequest) -> Result<Instance> {
        self.inner.run_instance(r).await
    }
    async fn find_instances(&self, n: &str, g: u32) -> Result<Vec<Instance>> {
        self.inner.find_instances(n, g).await
    }
    async fn list_tagged(&self) -> Result<Vec<(String, Instance)>> {
        self.inner.list_tagged().await
    }
    async fn describe(&self, id: &str) -> Result<Option<Instance>> {
        self.inner.describe(id).await
    }
    async fn start(&self, id: &str) -> Result<()> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.inner.start(id).await
    }
    async fn stop(&self, id: &str) -> Result<()> {
        self.stops.fetch_add(1, Ordering::SeqCst);
        self.inner.stop(id).await
    }
    async fn terminate(&self, id: &str) -> Result<()> {
        self.terminates.fetch_add(1, Ordering::SeqCst);
        self.inner.terminate(id).await
    }
    async fn snapshot(&self, v: &str, d: &str) -> Result<String> {
        self.inner.snapshot(v, d).await
    }
}

pub struct Env {
    pub deps: Deps,
    pub aws: Clients,
    pub clock: Arc<TestClock>,
    pub compute: Arc<Counting>,
}

pub async fn env() -> Env {
    let endpoint = moto::endpoint_from_env();
    let account = moto::fresh_account();
    let aws = setup::provision(&endpoint, &account)
        .await
        .expect("provision moto (is moto running?)");
    let cfg = nbfleet_core::config::from_vars(setup::vars()).unwrap();
    let mut deps = aws.deps(cfg);
    let clock = Arc::new(TestClock(Mutex::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    )));
    deps.clock = clock.clone();
    let compute = Arc::new(Counting {
        inner: deps.compute.clone(),
        starts: AtomicUsize::new(0),
        stops: AtomicUsize::new(0),
        terminates: AtomicUsize::new(0),
    });
    deps.compute = compute.clone();
    Env {
        deps,
        aws,
        clock,
        compute,
    }
}

impl Env {
    /// Launches `name` through the launch handler: a Launching record and a running instance.
    pub async fn launch(&self, name: &str) -> Notebook {
        nbfleet_testkit::api::launch(&self.deps, OWNER, format!(r#"{{"name":"{name}"}}"#).as_bytes())
            .await
            .unwrap();
        self.record(name).await
    }

    pub async fn record(&self, name: &str) -> Notebook {
        self.deps.store.get(name).await.unwrap().unwrap()
    }

    /// Forces a record into `state` (test setup only: real moves go through `moved_to`).
    pub async fn force(&self, name: &str, state: State) -> Notebook {
        let nb = self.record(name).await;
        let mut next = nb.touched(self.clock.now());
        next.state = state;
        next.state_since = self.clock.now();
        self.deps.store.put(&next, nb.expect()).await.unwrap();
        next
    }

    pub fn advance_minutes(&self, m: i64) {
        let mut t = self.clock.0.lock().unwrap();
        *t += jiff::SignedDuration::from_mins(m);
    }

    pub async fn ec2_state(&self, id: &str) -> String {
        let out = self
            .aws
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
        out.reservations()[0].instances()[0]
            .state()
            .unwrap()
            .name()
            .unwrap()
            .as_str()
            .to_string()
    }
}
