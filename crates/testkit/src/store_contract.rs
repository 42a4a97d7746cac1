//! The contract every `Store` keeps: DynamoDB's semantics as `DynamoStore` uses them.
//!
//! One function per behaviour, each taking a fresh, empty store and panicking with a message
//! when the store breaks the contract. [`store_contract_tests!`](crate::store_contract_tests)
//! runs them all against a store in one line:
//!
//! ```no_run
//! nbfleet_testkit::store_contract_tests!(async { nbfleet_testkit::MemoryStore::new() });
//! ```

use jiff::Timestamp;
use nbfleet_core::ports::Store;
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Error, Expect, Notebook, State};

/// The table the fixture's configuration names (records carry nothing of it).
const TABLE: &str = "nbfleet-test";

/// When the fixture's records were made.
pub const CREATED: i64 = 1_800_000_000;

fn at(seconds_after_created: i64) -> Timestamp {
    Timestamp::from_second(CREATED + seconds_after_created).expect("a time in range")
}

/// A fresh Pending record named `name`, owned by alice, made at [`CREATED`], as a launch
/// request would make it.
pub fn notebook(name: &str) -> Notebook {
    let cfg = nbfleet_core::config::from_vars([("NBFLEET_TABLE".to_string(), TABLE.to_string())])
        .expect("a minimal configuration");
    let spec = parse_launch(format!(r#"{{"name":"{name}"}}"#).as_bytes(), &cfg).expect("a valid name");
    Notebook::new(
        &spec,
        &nbfleet_core::identity::Principal::named("alice"),
        1,
        idle_policy(&spec, &cfg),
        at(0),
    )
}

fn names(records: &[Notebook]) -> Vec<&str> {
    records.iter().map(|nb| nb.name.as_str()).collect()
}

/// The conflict a put with `expect` answers when its condition fails, as DynamoStore words it.
fn conflict_message(name: &str, expect: Expect) -> String {
    match expect {
        Expect::Absent => format!("notebook {name:?} already exists"),
        Expect::Version { state, version } => format!(
            "notebook {name:?} changed while this request ran (expected {state} at version {version}); retry"
        ),
    }
}

fn assert_conflict(err: &Error, name: &str, expect: Expect) {
    assert!(
        matches!(err, Error::Conflict(_)),
        "a refused put is a Conflict: {err:?}"
    );
    assert_eq!(err.status(), 409, "a refused put is a 409: {err:?}");
    assert_eq!(
        err.to_string(),
        conflict_message(name, expect),
        "a refused put says what it expected"
    );
}

/// A record written with `Expect::Absent` reads back equal; a missing name reads as none.
pub async fn a_record_round_trips(store: &dyn Store) {
    let nb = notebook("round-trip");
    store.put(&nb, Expect::Absent).await.unwrap();
    assert_eq!(
        store.get("round-trip").await.unwrap(),
        Some(nb),
        "the record reads back as written"
    );
    assert_eq!(
        store.get("missing").await.unwrap(),
        None,
        "a missing name reads as none"
    );
}

/// `Expect::Absent` on a name already taken is a 409 Conflict.
pub async fn a_conditional_put_on_an_existing_name_is_refused(store: &dyn Store) {
    let nb = notebook("taken");
    store.put(&nb, Expect::Absent).await.unwrap();
    let err = store.put(&nb, Expect::Absent).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.status(), 409);
    assert_eq!(
        err.to_string(),
        conflict_message("taken", Expect::Absent),
        "the conflict names the notebook"
    );
}

/// Of two writers that read the same version, the second loses, and the first's write stays.
pub async fn a_transition_with_a_stale_version_is_refused(store: &dyn Store) {
    let v1 = notebook("racy");
    store.put(&v1, Expect::Absent).await.unwrap();
    let now = at(100);
    let v2 = v1.moved_to(State::Launching, now).unwrap();
    store.put(&v2, v1.expect()).await.unwrap();
    // A second writer that also read v1 loses the race.
    let loser = v1.moved_to(State::Terminating, now).unwrap();
    let err = store.put(&loser, v1.expect()).await.unwrap_err();
    assert!(
        err.to_string().contains("changed while this request ran"),
        "{err}"
    );
    assert_eq!(
        store.get("racy").await.unwrap().unwrap().state,
        State::Launching,
        "the winner's state stays"
    );
}

/// `by_instance` finds the record that carries the instance id, and none for an unknown id.
pub async fn the_lookup_by_instance_id_finds_the_record(store: &dyn Store) {
    let mut nb = notebook("with-instance");
    nb.instance_id = Some("i-0123456789abcdef0".into());
    store.put(&nb, Expect::Absent).await.unwrap();
    store
        .put(&notebook("without-instance"), Expect::Absent)
        .await
        .unwrap();
    let found = store
        .by_instance("i-0123456789abcdef0")
        .await
        .unwrap()
        .expect("the record with that instance");
    assert_eq!(found.name, "with-instance");
    assert_eq!(
        store.by_instance("i-00000000000000000").await.unwrap(),
        None,
        "an unknown instance finds nothing"
    );
}

/// `list_by_state` and `list` answer every record, over as many pages as the store uses.
pub async fn the_list_by_state_pages_through_every_record(store: &dyn Store) {
    let now = at(100);
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

/// History comes back in time order, and its items (even an entry with a `state` field) are
/// neither records nor in the by-state index, and leave the record as it was.
pub async fn history_items_keep_their_order_and_stay_out_of_the_indexes(store: &dyn Store) {
    let mut nb = notebook("storied");
    nb.state = State::Ready;
    store.put(&nb, Expect::Absent).await.unwrap();
    // A field named like an index key must not leak into the index.
    let entry = |n: u32| serde_json::json!({"verdict": "Idle", "state": "Ready", "n": n});
    store.append_history("storied", at(20), &entry(2)).await.unwrap();
    store.append_history("storied", at(10), &entry(1)).await.unwrap();
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

/// After a move, a writer still holding the version before it is refused with the message
/// that says what it expected, and the stored record is exactly the move's.
pub async fn a_stale_version_after_a_move_is_refused_and_the_record_is_unchanged(store: &dyn Store) {
    let v1 = notebook("moved");
    store.put(&v1, Expect::Absent).await.unwrap();
    let v2 = v1.moved_to(State::Launching, at(100)).unwrap();
    store.put(&v2, v1.expect()).await.unwrap();
    let mut stale = v1.touched(at(200));
    stale.owner = "mallory".into();
    let err = store.put(&stale, v1.expect()).await.unwrap_err();
    assert_conflict(&err, "moved", v1.expect());
    // Right version, wrong state: still refused (the condition is on both).
    let wrong_state = Expect::Version {
        state: State::Pending,
        version: v2.version,
    };
    let err = store.put(&stale, wrong_state).await.unwrap_err();
    assert_conflict(&err, "moved", wrong_state);
    assert_eq!(
        store.get("moved").await.unwrap(),
        Some(v2.clone()),
        "a refused write leaves the record as the move wrote it"
    );
    // The current version is still accepted.
    let v3 = v2.moved_to(State::Terminating, at(300)).unwrap();
    store.put(&v3, v2.expect()).await.unwrap();
    assert_eq!(store.get("moved").await.unwrap(), Some(v3));
}

/// `Expect::Version` on a name with no record is a Conflict (the condition fails), not a
/// create, and writes nothing.
pub async fn expect_version_on_a_missing_record_is_a_conflict(store: &dyn Store) {
    let nb = notebook("ghost");
    let expect = Expect::Version {
        state: State::Pending,
        version: 1,
    };
    let err = store.put(&nb, expect).await.unwrap_err();
    assert_conflict(&err, "ghost", expect);
    assert_eq!(
        store.get("ghost").await.unwrap(),
        None,
        "a refused put creates nothing"
    );
    assert!(
        store.list().await.unwrap().is_empty(),
        "a refused put creates nothing"
    );
}

/// `by_instance` matches the instance id exactly and never answers a record without one.
pub async fn by_instance_finds_by_instance_id_and_ignores_records_without_one(store: &dyn Store) {
    store.put(&notebook("a-none"), Expect::Absent).await.unwrap();
    let mut one = notebook("b-one");
    one.instance_id = Some("i-0000000000000000a".into());
    store.put(&one, Expect::Absent).await.unwrap();
    let mut other = notebook("c-other");
    other.instance_id = Some("i-0000000000000000b".into());
    store.put(&other, Expect::Absent).await.unwrap();
    store.put(&notebook("d-none"), Expect::Absent).await.unwrap();
    assert_eq!(
        store.by_instance("i-0000000000000000a").await.unwrap(),
        Some(one),
        "found by its instance id"
    );
    assert_eq!(
        store.by_instance("i-0000000000000000b").await.unwrap(),
        Some(other),
        "found by its instance id"
    );
    assert_eq!(
        store.by_instance("i-0000000000000000").await.unwrap(),
        None,
        "a prefix of an id is not a match"
    );
    assert_eq!(
        store.by_instance("i-0000000000000000c").await.unwrap(),
        None,
        "records without an instance match no id"
    );
}

/// Two records with the same instance id (never expected): the newer by `updated_at` wins,
/// whatever the names' order.
pub async fn by_instance_keeps_the_newest_of_two_records(store: &dyn Store) {
    let id = "i-0123456789abcdef0";
    let mut newer = notebook("a-newer").touched(at(100));
    newer.instance_id = Some(id.into());
    let mut older = notebook("b-older");
    older.instance_id = Some(id.into());
    store.put(&newer, Expect::Absent).await.unwrap();
    store.put(&older, Expect::Absent).await.unwrap();
    assert_eq!(
        store.by_instance(id).await.unwrap().map(|nb| nb.name),
        Some("a-newer".to_string()),
        "the newest by updated_at"
    );
}

/// `list_by_state` answers the records in that state and no other, each as stored.
pub async fn list_by_state_returns_only_that_state(store: &dyn Store) {
    let pending = notebook("p-1");
    store.put(&pending, Expect::Absent).await.unwrap();
    let mut ready = Vec::new();
    for name in ["r-1", "r-2"] {
        let mut nb = notebook(name);
        nb.state = State::Ready;
        store.put(&nb, Expect::Absent).await.unwrap();
        ready.push(nb);
    }
    let mut stopped = notebook("s-1");
    stopped.state = State::Stopped;
    store.put(&stopped, Expect::Absent).await.unwrap();

    let mut found = store.list_by_state(State::Ready).await.unwrap();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(found, ready, "exactly the Ready records");
    assert_eq!(store.list_by_state(State::Pending).await.unwrap(), [pending]);
    assert_eq!(store.list_by_state(State::Stopped).await.unwrap(), [stopped]);
    for state in State::ALL {
        for nb in store.list_by_state(state).await.unwrap() {
            assert_eq!(nb.state, state, "{} listed under {state}", nb.name);
        }
    }
}

/// `list_live` answers every record that is not Terminated, sorted by name, and follows a
/// record out when it becomes Terminated; never history or `first_time` items.
pub async fn list_live_is_every_record_not_terminated_sorted_by_name(store: &dyn Store) {
    for (name, state) in [
        ("z-ready", State::Ready),
        ("a-pending", State::Pending),
        ("m-gone", State::Terminated),
    ] {
        let mut nb = notebook(name);
        nb.state = state;
        store.put(&nb, Expect::Absent).await.unwrap();
    }
    store
        .append_history("z-ready", at(10), &serde_json::json!({"state": "Ready"}))
        .await
        .unwrap();
    store.first_time("once-key", at(100)).await.unwrap();
    let live = store.list_live().await.unwrap();
    assert_eq!(names(&live), ["a-pending", "z-ready"]);
    let ready = store.require("z-ready").await.unwrap();
    let mut gone = ready.touched(at(20));
    gone.state = State::Terminated;
    store.put(&gone, ready.expect()).await.unwrap();
    assert_eq!(names(&store.list_live().await.unwrap()), ["a-pending"]);
}

/// `list` answers records only, not history or `first_time` items, sorted by name.
pub async fn list_excludes_history_and_first_time_items_and_is_sorted_by_name(store: &dyn Store) {
    for name in ["m-mid", "z-last", "a-first"] {
        store.put(&notebook(name), Expect::Absent).await.unwrap();
    }
    store
        .append_history("m-mid", at(10), &serde_json::json!({"state": "Ready"}))
        .await
        .unwrap();
    store
        .append_history("no-record", at(10), &serde_json::json!({"name": "x"}))
        .await
        .unwrap();
    assert!(store.first_time("m-mid", at(3600)).await.unwrap());
    assert!(store.first_time("b-between", at(3600)).await.unwrap());
    let all = store.list().await.unwrap();
    assert_eq!(
        names(&all),
        ["a-first", "m-mid", "z-last"],
        "only the records, by name"
    );
    assert_eq!(all[1], notebook("m-mid"), "history leaves the record as it was");
    assert_eq!(
        store.get("no-record").await.unwrap(),
        None,
        "history is no record"
    );
    assert_eq!(
        store.get("b-between").await.unwrap(),
        None,
        "a first_time key is no record"
    );
    assert!(
        store.list_by_state(State::Ready).await.unwrap().is_empty(),
        "history in the by-state index"
    );
}

/// An entry as the history gives it back: with the time it was appended at.
fn timed(s: i64) -> serde_json::Value {
    serde_json::json!({"s": s, "at": at(s).to_string()})
}

/// A notebook's history is its own entries, oldest first, whatever the order of appends, each
/// with its time.
pub async fn history_is_oldest_first(store: &dyn Store) {
    assert!(store.history("told").await.unwrap().is_empty(), "no history yet");
    for s in [30, 10, 40, 20] {
        store
            .append_history("told", at(s), &serde_json::json!({"s": s}))
            .await
            .unwrap();
    }
    store
        .append_history("other", at(15), &serde_json::json!({"s": 15}))
        .await
        .unwrap();
    let h = store.history("told").await.unwrap();
    assert_eq!(
        h,
        [10, 20, 30, 40].map(timed),
        "oldest first, this notebook's only"
    );
    assert_eq!(store.history("other").await.unwrap(), [timed(15)]);
}

/// The recent history is the newest entries, oldest first, and only this notebook's.
pub async fn recent_history_is_the_newest_entries_oldest_first(store: &dyn Store) {
    for s in [30, 10, 40, 20, 50] {
        let entry = serde_json::json!({"s": s});
        store.append_history("long", at(s), &entry).await.unwrap();
    }
    let other = serde_json::json!({"s": 60});
    store.append_history("other", at(60), &other).await.unwrap();
    let recent = store.recent_history("long", 2).await.unwrap();
    assert_eq!(recent, [40, 50].map(timed));
    assert_eq!(store.recent_history("long", 10).await.unwrap().len(), 5);
    assert!(store.recent_history("none", 3).await.unwrap().is_empty());
}

/// History is keyed by notebook and time: a second entry at the same time replaces the first.
pub async fn history_at_the_same_time_overwrites(store: &dyn Store) {
    store
        .append_history("twice", at(10), &serde_json::json!("first"))
        .await
        .unwrap();
    store
        .append_history("twice", at(20), &serde_json::json!("later"))
        .await
        .unwrap();
    store
        .append_history("twice", at(10), &serde_json::json!("second"))
        .await
        .unwrap();
    assert_eq!(
        store.history("twice").await.unwrap(),
        [serde_json::json!("second"), serde_json::json!("later")],
        "the same time twice keeps the second entry, in its place"
    );
}

/// `first_time` is true the first time a key is seen and false after (whatever `until`), and
/// keys are independent.
pub async fn first_time_is_true_once_per_key(store: &dyn Store) {
    assert!(store.first_time("req-1", at(300)).await.unwrap(), "a new key");
    assert!(
        !store.first_time("req-1", at(300)).await.unwrap(),
        "the same key again"
    );
    assert!(
        !store.first_time("req-1", at(900)).await.unwrap(),
        "the same key, a later until"
    );
    assert!(store.first_time("req-2", at(300)).await.unwrap(), "another key");
    assert!(
        !store.first_time("req-2", at(300)).await.unwrap(),
        "the other key again"
    );
}

/// A refused write (either condition) leaves every read as it was: get, list, both indexes.
pub async fn a_refused_write_changes_nothing(store: &dyn Store) {
    let mut nb = notebook("steady");
    nb.instance_id = Some("i-0000000000000000a".into());
    store.put(&nb, Expect::Absent).await.unwrap();

    let mut rival = nb.moved_to(State::Launching, at(100)).unwrap();
    rival.instance_id = Some("i-0000000000000000b".into());
    rival.owner = "mallory".into();
    let err = store.put(&rival, Expect::Absent).await.unwrap_err();
    assert_conflict(&err, "steady", Expect::Absent);
    let stale = Expect::Version {
        state: State::Pending,
        version: 7,
    };
    let err = store.put(&rival, stale).await.unwrap_err();
    assert_conflict(&err, "steady", stale);

    assert_eq!(store.get("steady").await.unwrap(), Some(nb.clone()), "get");
    assert_eq!(store.list().await.unwrap(), [nb.clone()], "list");
    assert_eq!(
        store.list_by_state(State::Pending).await.unwrap(),
        [nb.clone()],
        "by-state, old state"
    );
    assert!(
        store.list_by_state(State::Launching).await.unwrap().is_empty(),
        "by-state, refused state"
    );
    assert_eq!(
        store.by_instance("i-0000000000000000a").await.unwrap(),
        Some(nb),
        "by-instance, old id"
    );
    assert_eq!(
        store.by_instance("i-0000000000000000b").await.unwrap(),
        None,
        "by-instance, refused id"
    );
}

/// An accepted put replaces the whole record: a field it drops is gone, from the indexes too.
pub async fn a_put_replaces_the_whole_record(store: &dyn Store) {
    let mut v1 = notebook("replaced");
    v1.instance_id = Some("i-0000000000000000a".into());
    v1.snapshot_id = Some("snap-0123".into());
    store.put(&v1, Expect::Absent).await.unwrap();
    let mut v2 = v1.moved_to(State::Launching, at(100)).unwrap();
    v2.instance_id = None;
    v2.snapshot_id = None;
    store.put(&v2, v1.expect()).await.unwrap();
    assert_eq!(
        store.get("replaced").await.unwrap(),
        Some(v2.clone()),
        "no field of v1 left"
    );
    assert_eq!(
        store.by_instance("i-0000000000000000a").await.unwrap(),
        None,
        "the dropped instance id is out of by-instance"
    );
    assert!(
        store.list_by_state(State::Pending).await.unwrap().is_empty(),
        "out of its old state"
    );
    assert_eq!(
        store.list_by_state(State::Launching).await.unwrap(),
        [v2],
        "in its new state"
    );
}

/// `require` answers the record, or a 404 that names the missing one.
pub async fn require_answers_the_record_or_a_404_naming_it(store: &dyn Store) {
    let nb = notebook("needed");
    store.put(&nb, Expect::Absent).await.unwrap();
    assert_eq!(store.require("needed").await.unwrap(), nb);
    let err = store.require("absent").await.unwrap_err();
    assert_eq!(err.status(), 404, "{err:?}");
    assert!(err.to_string().contains(r#""absent""#), "{err}");
}

/// One `#[tokio::test]` per function of [`store_contract`](crate::store_contract), each named
/// after it, each on a fresh store from the given async expression (evaluated once per test):
///
/// ```no_run
/// nbfleet_testkit::store_contract_tests!(async { nbfleet_testkit::MemoryStore::new() });
/// ```
///
/// The expression's output must implement `Store`. The calling crate needs `tokio` with its
/// `macros` and `rt` features (the workspace's `tokio` has them).
#[macro_export]
macro_rules! store_contract_tests {
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::store_contract::$case(&store).await;
            }
        )+
    };
    ($make:expr $(,)?) => {
        $crate::store_contract_tests!(@cases $make;
            a_record_round_trips,
            a_conditional_put_on_an_existing_name_is_refused,
            a_transition_with_a_stale_version_is_refused,
            the_lookup_by_instance_id_finds_the_record,
            the_list_by_state_pages_through_every_record,
            history_items_keep_their_order_and_stay_out_of_the_indexes,
            a_stale_version_after_a_move_is_refused_and_the_record_is_unchanged,
            expect_version_on_a_missing_record_is_a_conflict,
            by_instance_finds_by_instance_id_and_ignores_records_without_one,
            by_instance_keeps_the_newest_of_two_records,
            list_by_state_returns_only_that_state,
            list_live_is_every_record_not_terminated_sorted_by_name,
            list_excludes_history_and_first_time_items_and_is_sorted_by_name,
            history_is_oldest_first,
            recent_history_is_the_newest_entries_oldest_first,
            history_at_the_same_time_overwrites,
            first_time_is_true_once_per_key,
            a_refused_write_changes_nothing,
            a_put_replaces_the_whole_record,
            require_answers_the_record_or_a_404_naming_it,
        );
    };
}
