//! The DynamoDB `Store` adapter against moto, each test in its own moto account.

use jiff::Timestamp;
use nbfleet_aws::{DynamoStore, dynamo_store, moto};
use nbfleet_core::ports::Store;
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Error, Expect, Notebook, State};

const TABLE: &str = "nbfleet-test";

async fn store() -> DynamoStore {
    let clients = moto::clients(&moto::endpoint_from_env(), &moto::fresh_account());
    dynamo_store::create_table(&clients.dynamodb, TABLE)
        .await
        .expect("create the table in moto (is moto running? `make test` starts it)");
    DynamoStore::new(clients.dynamodb, TABLE)
}

fn notebook(name: &str) -> Notebook {
    let cfg = nbfleet_core::config::from_vars([("NBFLEET_TABLE".to_string(), TABLE.to_string())]).unwrap();
    let spec = parse_launch(format!(r#"{{"name":"{name}"}}"#).as_bytes(), &cfg).unwrap();
    Notebook::new(
        &spec,
        "alice",
        1,
        idle_policy(&spec, &cfg),
        Timestamp::from_second(1_800_000_000).unwrap(),
    )
}

#[tokio::test]
async fn a_record_round_trips() {
    let store = store().await;
    let nb = notebook("round-trip");
    store.put(&nb, Expect::Absent).await.unwrap();
    assert_eq!(store.get("round-trip").await.unwrap(), Some(nb));
    assert_eq!(store.get("missing").await.unwrap(), None);
}

#[tokio::test]
async fn a_conditional_put_on_an_existing_name_is_refused() {
    let store = store().await;
    let nb = notebook("taken");
    store.put(&nb, Expect::Absent).await.unwrap();
    let err = store.put(&nb, Expect::Absent).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.status(), 409);
}

#[tokio::test]
async fn a_transition_with_a_stale_version_is_refused() {
    let store = store().await;
    let v1 = notebook("racy");
    store.put(&v1, Expect::Absent).await.unwrap();
    let now = Timestamp::from_second(1_800_000_100).unwrap();
    let v2 = v1.moved_to(State::Launching, now).unwrap();
    store.put(&v2, v1.expect()).await.unwrap();
    // A second writer that also read v1 loses the race.
    let loser = v1.moved_to(State::Terminating, now).unwrap();
    let err = store.put(&loser, v1.expect()).await.unwrap_err();
    assert!(
        err.to_string().contains("changed while this request ran"),
        "{err}"
    );
    assert_eq!(store.get("racy").await.unwrap().unwrap().state, State::Launching);
}

#[tokio::test]
async fn the_lookup_by_instance_id_finds_the_record() {
    let store = store().await;
    let mut nb = notebook("with-instance");
    nb.instance_id = Some("i-0123456789abcdef0".into());
    store.put(&nb, Expect::Absent).await.unwrap();
    store
        .put(&notebook("without-instance"), Expect::Absent)
        .await
        .unwrap();
    let found = store.by_instance("i-0123456789abcdef0").await.unwrap().unwrap();
    assert_eq!(found.name, "with-instance");
    assert_eq!(store.by_instance("i-00000000000000000").await.unwrap(), None);
}

#[tokio::test]
async fn the_list_by_state_pages_through_every_record() {
    let store = store().await.with_page_size(3);
    let now = Timestamp::from_second(1_800_000_100).unwrap();
    for i in 0..10 {
        let nb = notebook(&format!("nb-{i:02}"));
        store.put(&nb, Expect::Absent).await.unwrap();
        if i % 2 == 0 {
            store
                .put(&nb.moved_to(State::Launching, now).unwrap(), nb.expect())
                .await
                .unwrap();
        }
    }
    let mut launching: Vec<String> = store
        .list_by_state(State::Launching)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    launching.sort();
    assert_eq!(launching, ["nb-00", "nb-02", "nb-04", "nb-06", "nb-08"]);
    assert_eq!(store.list_by_state(State::Pending).await.unwrap().len(), 5);
    assert_eq!(store.list_by_state(State::Ready).await.unwrap().len(), 0);
    assert_eq!(store.list().await.unwrap().len(), 10);
}

#[tokio::test]
async fn history_items_keep_their_order_expire_and_stay_out_of_the_indexes() {
    let store = store().await;
    let mut nb = notebook("storied");
    nb.state = State::Ready;
    store.put(&nb, Expect::Absent).await.unwrap();
    let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
    // A field named like an index key must not leak into the index.
    let entry = |n: u32| serde_json::json!({"verdict": "Idle", "state": "Ready", "n": n});
    store.append_history("storied", t(20), &entry(2)).await.unwrap();
    store.append_history("storied", t(10), &entry(1)).await.unwrap();
    let h = store.history("storied").await.unwrap();
    assert_eq!(
        h.iter().map(|e| e["n"].as_u64().unwrap()).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        store.list_by_state(State::Ready).await.unwrap().len(),
        1,
        "history in the by-state index"
    );
    assert_eq!(store.list().await.unwrap().len(), 1);
    assert_eq!(store.get("storied").await.unwrap(), Some(nb));
}
