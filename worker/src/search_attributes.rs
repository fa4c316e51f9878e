//! The search attributes the saga sets ([`SEARCH_ATTRIBUTES`]), made present on the server before
//! anything polls for or starts a saga: a saga that upserts an attribute the server does not know
//! fails its workflow task again and again.
//!
//! | the namespace has them…              | [`ensure`]                                                   |
//! |--------------------------------------|--------------------------------------------------------------|
//! | all, with the saga's types           | does nothing                                                 |
//! | not all (a plain `temporal server start-dev`) | registers the missing ones (operator API `AddSearchAttributes`), logs it, and waits until they are usable |
//! | one with another type                | fails: the saga cannot use it, and only its owner may remove it |
//! | missing, and the server refuses to add them (no permission, a cloud namespace, no operator API) | fails with the `temporal operator search-attribute create` commands to run |
//!
//! `saga worker`, `saga start`, `saga scenarios` and `saga-bench` call it; the list itself lives
//! with the workflow (`saga_workflows::visibility`), so an attribute added there is registered
//! here without another change.

use anyhow::Context as _;
use saga_workflows::visibility::SEARCH_ATTRIBUTES;
use std::time::{Duration, Instant};
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::{
    enums::v1::IndexedValueType,
    operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
    workflowservice::v1::CountWorkflowExecutionsRequest,
};

/// How long a fresh registration may take to reach every part of the server.
const USABLE_WITHIN: Duration = Duration::from_secs(60);

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ensured {
    /// The attributes it registered now, as `Name (Type)`; empty when all were there.
    pub registered: Vec<String>,
}

/// Makes sure the client's namespace has every attribute of [`SEARCH_ATTRIBUTES`] with its type,
/// registering the missing ones; see the module's table.
pub async fn ensure(client: &Client) -> anyhow::Result<Ensured> {
    let namespace = client.options().namespace.clone();
    let wanted = wanted()?;
    let state = list(client, &namespace).await?;
    let missing = state.check(&wanted, &namespace)?;
    if missing.is_empty() {
        return Ok(Ensured::default());
    }
    let names: Vec<String> = missing
        .iter()
        .map(|(name, t)| format!("{name} ({})", type_name(*t)))
        .collect();
    tracing::info!(
        namespace,
        attributes = %names.join(", "),
        "the namespace lacks search attributes the saga sets; registering them"
    );
    let request = AddSearchAttributesRequest {
        namespace: namespace.clone(),
        search_attributes: missing
            .iter()
            .map(|(n, t)| (n.to_string(), *t as i32))
            .collect(),
    };
    if let Err(status) = client
        .connection()
        .operator_service()
        .add_search_attributes(tonic::Request::new(request))
        .await
    {
        // Another process (a second worker, `saga start`) may have registered them meanwhile.
        let now = list(client, &namespace).await?;
        if !now.check(&wanted, &namespace)?.is_empty() {
            anyhow::bail!(
                "the Temporal server lacks the search attributes the saga sets ({}) and refused \
                 to register them ({}: {}); register them and start again:\n  {}",
                names.join(", "),
                status.code(),
                status.message(),
                commands(&namespace, &missing).join("\n  ")
            );
        }
    }
    wait_until_usable(client, &namespace, &wanted).await?;
    tracing::info!(namespace, attributes = %names.join(", "), "registered search attributes");
    Ok(Ensured { registered: names })
}

/// [`SEARCH_ATTRIBUTES`] with their server types.
fn wanted() -> anyhow::Result<Vec<(&'static str, IndexedValueType)>> {
    SEARCH_ATTRIBUTES
        .iter()
        .map(|&(name, kind)| {
            indexed_value_type(kind)
                .map(|t| (name, t))
                .with_context(|| format!("search attribute {name}: unknown type {kind}"))
        })
        .collect()
}

/// `Keyword` → `INDEXED_VALUE_TYPE_KEYWORD`, `KeywordList` → `INDEXED_VALUE_TYPE_KEYWORD_LIST`.
fn indexed_value_type(kind: &str) -> Option<IndexedValueType> {
    let mut name = String::from("INDEXED_VALUE_TYPE_");
    for (i, c) in kind.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    IndexedValueType::from_str_name(&name)
}

/// The type's name as the `temporal` CLI spells it: `Keyword`, `KeywordList`, `Datetime`.
fn type_name(t: IndexedValueType) -> String {
    t.as_str_name()
        .trim_start_matches("INDEXED_VALUE_TYPE_")
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_string() + &chars.as_str().to_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

fn commands(namespace: &str, missing: &[(&str, IndexedValueType)]) -> Vec<String> {
    missing
        .iter()
        .map(|(name, t)| {
            format!(
                "temporal operator search-attribute create --namespace {namespace} --name {name} \
                 --type {}",
                type_name(*t)
            )
        })
        .collect()
}

/// The namespace's custom attributes and their types.
struct Registered(std::collections::HashMap<String, i32>);

impl Registered {
    /// The wanted attributes that are missing; an error when one has another type.
    fn check<'a>(
        &self,
        wanted: &[(&'a str, IndexedValueType)],
        namespace: &str,
    ) -> anyhow::Result<Vec<(&'a str, IndexedValueType)>> {
        let mut missing = Vec::new();
        for &(name, t) in wanted {
            match self.0.get(name).map(|&r| IndexedValueType::try_from(r)) {
                None => missing.push((name, t)),
                Some(Ok(r)) if r == t => {}
                Some(r) => anyhow::bail!(
                    "the search attribute {name} of namespace {namespace} is registered as {}, \
                     but the saga sets it as {}; remove it (`temporal operator search-attribute \
                     remove --namespace {namespace} --name {name}`) or use another namespace",
                    r.map(type_name)
                        .unwrap_or_else(|_| "an unknown type".into()),
                    type_name(t)
                ),
            }
        }
        Ok(missing)
    }
}

async fn list(client: &Client, namespace: &str) -> anyhow::Result<Registered> {
    let response = client
        .connection()
        .operator_service()
        .list_search_attributes(tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await
        .with_context(|| format!("listing the search attributes of namespace {namespace}"))?
        .into_inner();
    Ok(Registered(response.custom_attributes))
}

/// Waits until the new attributes are listed and a visibility query may name them: what a
/// saga's upsert and `temporal workflow list --query` need. (A dev server accepts them at once;
/// a cluster's other hosts pick a change up when they refresh their namespace cache, and a
/// saga's workflow task that runs before is retried by the server.)
async fn wait_until_usable(
    client: &Client,
    namespace: &str,
    wanted: &[(&str, IndexedValueType)],
) -> anyhow::Result<()> {
    // `IS NULL` is valid for every type, so the query only tests that the names are known.
    let query = wanted
        .iter()
        .map(|(name, _)| format!("{name} IS NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let deadline = Instant::now() + USABLE_WITHIN;
    let mut last_problem;
    loop {
        last_problem = if !list(client, namespace)
            .await?
            .check(wanted, namespace)?
            .is_empty()
        {
            "they are not listed yet".to_owned()
        } else {
            match client
                .connection()
                .workflow_service()
                .count_workflow_executions(tonic::Request::new(CountWorkflowExecutionsRequest {
                    namespace: namespace.to_owned(),
                    query: query.clone(),
                }))
                .await
            {
                Ok(_) => return Ok(()),
                Err(status) => format!("a query naming them fails: {}", status.message()),
            }
        };
        if Instant::now() > deadline {
            anyhow::bail!(
                "the search attributes were registered in namespace {namespace}, but after \
                 {USABLE_WITHIN:?} {last_problem}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_of_the_saga_has_a_server_type() {
        let wanted = wanted().unwrap();
        assert_eq!(wanted.len(), SEARCH_ATTRIBUTES.len());
    }

    #[test]
    fn type_names_are_the_clis() {
        for name in [
            "Keyword",
            "Text",
            "Int",
            "Double",
            "Bool",
            "Datetime",
            "KeywordList",
        ] {
            let t = indexed_value_type(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(type_name(t), name);
        }
        assert_eq!(indexed_value_type("Keywords"), None);
    }
}
