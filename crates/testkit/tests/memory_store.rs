//! The whole `Store` contract, on the in-memory store.

use nbfleet_testkit::MemoryStore;

nbfleet_testkit::store_contract_tests!(async { MemoryStore::new() });
