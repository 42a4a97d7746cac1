//! The DynamoDB `Store` adapter against moto: the whole `Store` contract (the same suite the
//! in-memory store passes), each case in its own moto account, with 3-item pages so that every
//! query and scan pages.

use nbfleet_aws::{DynamoStore, dynamo_store};
use nbfleet_local::moto;

const TABLE: &str = "nbfleet-test";

async fn store() -> DynamoStore {
    let clients = moto::clients(&moto::endpoint_from_env(), &moto::fresh_account());
    dynamo_store::create_table(&clients.dynamodb, TABLE)
        .await
        .expect("create the table in moto (is moto running? `make test` starts it)");
    DynamoStore::new(clients.dynamodb, TABLE).with_page_size(3)
}

nbfleet_testkit::store_contract_tests!(store());
