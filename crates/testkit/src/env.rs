//! The one environment for tests that drive use cases directly: a fresh moto account
//! provisioned as the template would, the real adapters on clients that log every call, a
//! clock that stands still until the test moves it, and the Store and Compute ports hooked
//! (`crate::hooks`). `force` sets a record up in any state; `advance` moves time.

use crate::api;
use crate::hooks::{Heard, HookedCompute, HookedStore};
use crate::memory_store::MemoryStore;
use jiff::{SignedDuration, Timestamp};
use nbfleet_aws::Clients;
use nbfleet_core::events::ec2_state_change;
use nbfleet_core::ports::{Clock, Deps, Store};
use nbfleet_core::{Notebook, State};
use nbfleet_local::moto::{self, CallLog};
use nbfleet_local::setup;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The owner tests launch as, unless they say otherwise.
pub const OWNER: &str = "alice";

/// A clock that stands still until the test moves it.
pub struct TestClock(Mutex<Timestamp>);

impl TestClock {
    pub fn at(t: Timestamp) -> Arc<Self> {
        Arc::new(TestClock(Mutex::new(t)))
    }

    pub fn advance(&self, by: SignedDuration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// One moto account and nbfleet's ports on it.
pub struct Env {
    pub endpoint: String,
    pub account: String,
    /// The ports use cases run on: real adapters, the test clock, the hooked Store and Compute.
    pub deps: Deps,
    /// Clients on the same account that log nothing, for a test's own assertions.
    pub aws: Clients,
    /// The AWS operations `deps` sent.
    pub calls: CallLog,
    pub clock: Arc<TestClock>,
    pub store: Arc<HookedStore>,
    pub compute: Arc<HookedCompute>,
    /// What the use cases told people.
    pub heard: Arc<Heard>,
}

impl Env {
    /// With the local stack's configuration.
    pub async fn new() -> Env {
        Env::with_vars([]).await
    }

    /// With the records in memory ([`MemoryStore`], held to DynamoDB's semantics by the store
    /// contract) and the rest on moto: for tests that are not about the DynamoDB wire.
    pub async fn in_memory() -> Env {
        Env::build([], true).await
    }

    /// With the local stack's configuration and `extra` variables on top.
    pub async fn with_vars(extra: impl IntoIterator<Item = (&str, &str)>) -> Env {
        Env::build(extra, false).await
    }

    async fn build(extra: impl IntoIterator<Item = (&str, &str)>, in_memory: bool) -> Env {
        let endpoint = moto::endpoint_from_env();
        let account = moto::fresh_account();
        let aws = setup::provision(&endpoint, &account)
            .await
            .expect("provision moto (is moto running? `make test` starts it)");
        let mut vars = setup::vars();
        vars.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cfg = nbfleet_core::config::from_vars(vars).expect("the test configuration");
        let calls = CallLog::default();
        let mut deps = moto::clients_logged(&endpoint, &account, calls.clone()).deps(cfg);
        let clock = TestClock::at(Timestamp::now());
        let records: Arc<dyn Store> = match in_memory {
            true => Arc::new(MemoryStore::new()),
            false => deps.store.clone(),
        };
        let store = HookedStore::new(records);
        let compute = HookedCompute::new(deps.compute.clone());
        let heard = Arc::new(Heard::default());
        (deps.clock, deps.store, deps.compute) = (clock.clone(), store.clone(), compute.clone());
        deps.notifier = heard.clone();
        Env {
            endpoint,
            account,
            deps,
            aws,
            calls,
            clock,
            store,
            compute,
            heard,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn advance(&self, minutes: i64) {
        self.clock.advance(SignedDuration::from_mins(minutes));
    }

    /// Launches `name` as [`OWNER`] through the launch use case: a Launching record and a
    /// running instance.
    pub async fn launch(&self, name: &str) -> Notebook {
        let body = json!({ "name": name }).to_string();
        api::launch(&self.deps, OWNER, body.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("launch {name}: {e}"));
        self.record(name).await
    }

    /// Launches `name`, then sets its record as `change` says.
    pub async fn notebook(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        self.launch(name).await;
        self.force(name, change).await
    }

    pub async fn record(&self, name: &str) -> Notebook {
        self.deps.store.require(name).await.unwrap()
    }

    /// Sets `name`'s record as `change` says, as the next version (test setup only: real
    /// moves go through `moved_to`).
    pub async fn force(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        let nb = self.record(name).await;
        let mut next = nb.touched(self.now());
        change(&mut next);
        self.store.inner.put(&next, nb.expect()).await.unwrap();
        next
    }

    /// [`Env::force`] into `state`, since now.
    pub async fn force_state(&self, name: &str, state: State) -> Notebook {
        let now = self.now();
        self.force(name, |nb| (nb.state, nb.state_since) = (state, now))
            .await
    }

    /// EC2's state-change event for `id`, as EventBridge delivers it.
    pub fn ec2_event(&self, id: &str, state: &str) -> Value {
        ec2_state_change(id, state, &self.account, moto::REGION, &self.now().to_string())
    }

    /// EC2's view of instance `id` (`running`, `stopped`, …).
    pub async fn ec2_state(&self, id: &str) -> String {
        ec2_state(&self.aws.ec2, id).await
    }

    /// Stops instance `id` in EC2, behind nbfleet's back (the console, the OS).
    pub async fn stop_in_ec2(&self, id: &str) {
        self.aws
            .ec2
            .stop_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
    }

    /// Terminates instance `id` in EC2, behind nbfleet's back.
    pub async fn terminate_in_ec2(&self, id: &str) {
        self.aws
            .ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
    }
}

/// EC2's view of instance `id` (`running`, `stopped`, …), through `ec2`.
pub async fn ec2_state(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
    out.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}
