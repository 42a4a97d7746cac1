//! 20 concurrent start and stop requests on one notebook, through the local stack's HTTP API
//! (the stack runs in-process here so that a wrapper on the Compute port can count EC2 calls).
//! Conditional writes must let exactly one transition through at a time: every answer is 200,
//! 202 or 409 (a request whose write lost reads again and answers from the state the winner
//! wrote), the record ends in agreement with EC2, and EC2 saw one call per 202.

use async_trait::async_trait;
use nbfleet_core::ports::{Ami, Compute, Instance, RunRequest};
use nbfleet_core::validate::Access;
use nbfleet_local::harness::http_client;
use nbfleet_local::moto;
use nbfleet_local::stack::{self, Settings};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Counting {
    inner: Arc<dyn Compute>,
    starts: AtomicUsize,
    stops: AtomicUsize,
}

#[async_trait]
impl Compute for Counting {
    async fn resolve_ami(&self, p: &str) -> nbfleet_core::Result<Ami> {
        self.inner.resolve_ami(p).await
    }
    async fn ensure_security_group(
        &self,
        n: &str,
        g: u32,
        a: &Access,
        v: Option<&str>,
    ) -> nbfleet_core::Result<String> {
        self.inner.ensure_security_group(n, g, a, v).await
    }
    async fn delete_security_group(&self, id: &str) -> nbfleet_core::Result<()> {
        self.inner.delete_security_group(id).await
    }
    async fn run_instance(&self, r: &RunRequest) -> nbfleet_core::Result<Instance> {
        self.inner.run_instance(r).await
    }
    async fn find_instances(&self, n: &str, g: u32) -> nbfleet_core::Result<Vec<Instance>> {
        self.inner.find_instances(n, g).await
    }
    async fn list_tagged(&self) -> nbfleet_core::Result<Vec<(String, Instance)>> {
        self.inner.list_tagged().await
    }
    async fn describe(&self, id: &str) -> nbfleet_core::Result<Option<Instance>> {
        self.inner.describe(id).await
    }
    async fn start(&self, id: &str) -> nbfleet_core::Result<()> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.inner.start(id).await
    }
    async fn stop(&self, id: &str) -> nbfleet_core::Result<()> {
        self.stops.fetch_add(1, Ordering::SeqCst);
        self.inner.stop(id).await
    }
    async fn terminate(&self, id: &str) -> nbfleet_core::Result<()> {
        self.inner.terminate(id).await
    }
    async fn snapshot(&self, v: &str, d: &str) -> nbfleet_core::Result<String> {
        self.inner.snapshot(v, d).await
    }
}

async fn state_of(base: &str, name: &str) -> Value {
    let resp = http_client()
        .get(format!("{base}/notebooks/{name}"))
        .send()
        .await
        .unwrap();
    resp.json::<Value>().await.unwrap()["notebook"].clone()
}

async fn wait_for(base: &str, name: &str, states: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        let nb = state_of(base, name).await;
        if states.contains(&nb["state"].as_str().unwrap_or_default()) {
            return nb;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "stuck: {nb}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_starts_and_stops_let_one_transition_through_at_a_time() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let account = moto::fresh_account();
    let settings = Settings {
        moto_endpoint: moto::endpoint_from_env(),
        account: account.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        dir: root.join("target/concurrency").join(&account),
        venv: root.join(".venv"),
        watch_interval: Duration::from_millis(100),
        transition: Duration::from_millis(500),
        sweep_every: None,
        demo_timeouts: false,
    };
    let (mut stack, listener) = stack::start(&settings).await.unwrap();
    let counting = Arc::new(Counting {
        inner: stack.deps.compute.clone(),
        starts: 0.into(),
        stops: 0.into(),
    });
    stack.deps.compute = counting.clone();
    let runner = stack.runner.clone();
    let base = format!("http://{}", stack.addr);
    tokio::spawn(stack::serve(stack.deps, listener));

    let client = http_client();
    let launched = client
        .post(format!("{base}/notebooks"))
        .json(&json!({"name": "busy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 202);
    wait_for(&base, "busy", &["Ready"]).await;

    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, base, barrier) = (client.clone(), base.clone(), barrier.clone());
        let action = if i % 2 == 0 { "stop" } else { "start" };
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let began = Instant::now();
            let status = client
                .post(format!("{base}/notebooks/busy/{action}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            (action, status, began, Instant::now())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    let overlapped = results
        .iter()
        .any(|a| results.iter().any(|b| a.2 < b.2 && b.2 < a.3));
    assert!(overlapped, "the requests ran one after another");
    assert!(
        results.iter().all(|r| [200, 202, 409].contains(&r.1)),
        "{results:?}"
    );
    let accepted = |action: &str| results.iter().filter(|r| r.0 == action && r.1 == 202).count();
    assert_eq!(
        counting.stops.load(Ordering::SeqCst),
        accepted("stop"),
        "{results:?}"
    );
    assert_eq!(
        counting.starts.load(Ordering::SeqCst),
        accepted("start"),
        "{results:?}"
    );

    let nb = wait_for(&base, "busy", &["Ready", "Stopped"]).await;
    let id = nb["instance_id"].as_str().unwrap();
    let ec2 = moto::clients(&settings.moto_endpoint, &account).ec2;
    let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
    let ec2_state = out.reservations()[0].instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string();
    let expected = if nb["state"] == "Ready" {
        "running"
    } else {
        "stopped"
    };
    assert_eq!(
        ec2_state, expected,
        "the record ({}) disagrees with EC2",
        nb["state"]
    );
    runner.stop_all();
}
