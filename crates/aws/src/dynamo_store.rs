//! The `Store` port on DynamoDB: one on-demand table, records keyed by `name` with
//! `sk = "notebook"` (its history items share the partition), and three sparse GSIs:
//! `by-live` (live, name), holding every record that is not Terminated, so the sweep reads
//! them all in one paged query; `by-state` (state, name) for one state; and `by-instance`
//! (instance_id) for EC2/SSM events.
//!
//! Items are the record's fields as native attributes (serde_dynamo), so the table reads well
//! in the console. Every write is conditional on the expected state and version.

use crate::errors;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType,
};
use jiff::Timestamp;
use nbfleet_core::ports::Store;
use nbfleet_core::{Error, Expect, Notebook, Result, State};
use std::collections::HashMap;

/// Sort key of a notebook's current record.
pub const RECORD_SK: &str = "notebook";
pub const BY_STATE_INDEX: &str = "by-state";
/// History items: `sk = "history#<RFC 3339 time>"`, expired by DynamoDB TTL on `expires_at`.
pub const HISTORY_PREFIX: &str = "history#";
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long history is kept.
pub const HISTORY_DAYS: i64 = 90;
pub const BY_INSTANCE_INDEX: &str = "by-instance";
pub const BY_LIVE_INDEX: &str = "by-live";
/// The attribute `by-live` is keyed on: present, with this value, on records not Terminated.
const LIVE_ATTRIBUTE: &str = "live";
const LIVE: &str = "live";

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Items per Query/Scan page; `None` lets DynamoDB fill 1 MB pages.
    page_size: Option<i32>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            page_size: None,
        }
    }

    /// Smaller pages, so that tests exercise paging without megabytes of items.
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    fn to_item(nb: &Notebook) -> Result<Item> {
        let mut item: Item = serde_dynamo::to_item(nb).map_err(Error::internal)?;
        item.insert("sk".into(), AttributeValue::S(RECORD_SK.into()));
        if nb.state != State::Terminated {
            item.insert(LIVE_ATTRIBUTE.into(), AttributeValue::S(LIVE.into()));
        }
        Ok(item)
    }

    fn from_item(mut item: Item) -> Result<Notebook> {
        item.remove("sk");
        item.remove(LIVE_ATTRIBUTE);
        serde_dynamo::from_item(item).map_err(|e| Error::internal(format!("unreadable notebook record: {e}")))
    }

    /// The query of `notebook`'s history items, oldest first.
    fn history_query(
        &self,
        notebook: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#n = :n AND begins_with(sk, :h)")
            .expression_attribute_names("#n", "name")
            .expression_attribute_values(":n", AttributeValue::S(notebook.into()))
            .expression_attribute_values(":h", AttributeValue::S(HISTORY_PREFIX.into()))
    }

    /// The entries of history items, each object with the time it was appended at.
    fn entries(items: Vec<Item>) -> Result<Vec<serde_json::Value>> {
        items
            .into_iter()
            .map(|mut i| {
                let entry = i.remove("entry").unwrap_or(AttributeValue::Null(true));
                let mut entry: serde_json::Value =
                    serde_dynamo::from_attribute_value(entry).map_err(Error::internal)?;
                if let (Some(obj), Some(AttributeValue::S(at))) = (entry.as_object_mut(), i.remove("at")) {
                    obj.insert("at".into(), serde_json::Value::String(at));
                }
                Ok(entry)
            })
            .collect()
    }

    fn from_items(items: Vec<Item>) -> Result<Vec<Notebook>> {
        items.into_iter().map(Self::from_item).collect()
    }

    async fn query_index(&self, index: &str, attr: &str, value: &str) -> Result<Vec<Notebook>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":v", AttributeValue::S(value.into()))
            .set_limit(self.page_size)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| errors::map(e, "query notebook records"))?;
        Self::from_items(items)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn put(&self, nb: &Notebook, expect: Expect) -> Result<()> {
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::to_item(nb)?));
        let req = match expect {
            Expect::Absent => req
                .condition_expression("attribute_not_exists(#name)")
                .expression_attribute_names("#name", "name"),
            Expect::Version { state, version } => req
                .condition_expression("#state = :state AND #version = :version")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":state", AttributeValue::S(state.to_string()))
                .expression_attribute_values(":version", AttributeValue::N(version.to_string())),
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ConditionalCheckFailedException") => {
                Err(Error::Conflict(match expect {
                    Expect::Absent => format!("notebook {:?} already exists", nb.name),
                    Expect::Version { state, version } => format!(
                        "notebook {:?} changed while this request ran (expected {state} at version {version}); retry",
                        nb.name
                    ),
                }))
            }
            Err(e) => Err(errors::map(e, "save the notebook record")),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Notebook>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("name", AttributeValue::S(name.into()))
            .key("sk", AttributeValue::S(RECORD_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| errors::map(e, "read the notebook record"))?;
        out.item.map(Self::from_item).transpose()
    }

    async fn by_instance(&self, instance_id: &str) -> Result<Option<Notebook>> {
        let mut found = self
            .query_index(BY_INSTANCE_INDEX, "instance_id", instance_id)
            .await?;
        // An instance belongs to one generation of one notebook; keep the newest if ever two.
        found.sort_by_key(|nb| nb.updated_at);
        Ok(found.pop())
    }

    async fn list_by_state(&self, state: State) -> Result<Vec<Notebook>> {
        self.query_index(BY_STATE_INDEX, "state", state.as_str()).await
    }

    async fn list_live(&self) -> Result<Vec<Notebook>> {
        self.query_index(BY_LIVE_INDEX, LIVE_ATTRIBUTE, LIVE).await
    }

    async fn append_history(&self, notebook: &str, at: Timestamp, entry: &serde_json::Value) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::history_item(notebook, at, entry)?))
            .send()
            .await
            .map_err(|e| errors::map(e, "write the notebook's history"))?;
        Ok(())
    }

    async fn first_time(&self, key: &str, until: Timestamp) -> Result<bool> {
        // Its own item (no `state`, so in no index), gone by TTL after `until`.
        let item = Item::from([
            ("name".to_string(), AttributeValue::S(format!("once#{key}"))),
            ("sk".to_string(), AttributeValue::S("once".into())),
            (
                TTL_ATTRIBUTE.to_string(),
                AttributeValue::N(until.as_second().to_string()),
            ),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#n)")
            .expression_attribute_names("#n", "name")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if errors::code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(errors::map(e, "remember a request")),
        }
    }

    async fn history(&self, notebook: &str) -> Result<Vec<serde_json::Value>> {
        let items: Vec<Item> = self
            .history_query(notebook)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| errors::map(e, "read the notebook's history"))?;
        Self::entries(items)
    }

    async fn recent_history(&self, notebook: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        // Newest first, one page of `limit`: DynamoDB reads (and bills) only those.
        let out = self
            .history_query(notebook)
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| errors::map(e, "read the notebook's history"))?;
        let mut entries = Self::entries(out.items.unwrap_or_default())?;
        entries.reverse();
        Ok(entries)
    }

    async fn list(&self) -> Result<Vec<Notebook>> {
        let items: Vec<Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :sk")
            .expression_attribute_values(":sk", AttributeValue::S(RECORD_SK.into()))
            .set_limit(self.page_size)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| errors::map(e, "list notebook records"))?;
        let mut all = Self::from_items(items)?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }
}

impl DynamoStore {
    /// The entry sits under `entry`, so none of its fields can land in an index by name.
    fn history_item(notebook: &str, at: Timestamp, entry: &serde_json::Value) -> Result<Item> {
        let mut item = Item::new();
        item.insert(
            "entry".into(),
            serde_dynamo::to_attribute_value(entry).map_err(Error::internal)?,
        );
        item.insert("name".into(), AttributeValue::S(notebook.into()));
        item.insert("sk".into(), AttributeValue::S(format!("{HISTORY_PREFIX}{at}")));
        item.insert("at".into(), AttributeValue::S(at.to_string()));
        let expires = at.as_second() + HISTORY_DAYS * 86_400;
        item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N(expires.to_string()));
        Ok(item)
    }
}

/// Creates the table as `template.yaml` declares it: on demand, key (name, sk), the three GSIs.
/// Used by tests and the local stack; production tables come from the template.
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let gsi = |index: &str, keys: Vec<KeySchemaElement>| {
        GlobalSecondaryIndex::builder()
            .index_name(index)
            .set_key_schema(Some(keys))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .expect("index is complete")
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![
            attr("name"),
            attr("sk"),
            attr("state"),
            attr("instance_id"),
            attr(LIVE_ATTRIBUTE),
        ]))
        .key_schema(key("name", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(gsi(
            BY_STATE_INDEX,
            vec![key("state", KeyType::Hash), key("name", KeyType::Range)],
        ))
        .global_secondary_indexes(gsi(BY_INSTANCE_INDEX, vec![key("instance_id", KeyType::Hash)]))
        .global_secondary_indexes(gsi(
            BY_LIVE_INDEX,
            vec![key(LIVE_ATTRIBUTE, KeyType::Hash), key("name", KeyType::Range)],
        ))
        .send()
        .await
        .map_err(|e| errors::map(e, "create the notebook table"))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .expect("name and flag are set"),
        )
        .send()
        .await
        .map_err(|e| errors::map(e, "turn on the table's TTL"))?;
    Ok(())
}
