//! The audit log's rows: one per access decision and per login step.
//!
//! `portless-access::audit` queues events and writes them here in batches, one transaction per
//! batch, so a burst of requests costs one commit rather than one per request. Values are plain
//! strings: the store does not interpret them, and an operator can query the table directly.
//! Audit writes do not bump the routes version.

use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError};

/// An audit event to insert. Never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// When it happened, in unix milliseconds.
    pub at_unix_ms: i64,
    /// `access_decision` or `login`.
    pub kind: String,
    /// The user or token name, if known.
    pub who: Option<String>,
    /// What was asked: `GET https://app.example.com/path`, `login:password`, `logout`...
    pub what: String,
    /// The rule that decided (`rule #3`, `default`), for access decisions.
    pub rule: Option<String>,
    /// The outcome: `allow`, `deny`, `login_required`, `success`, `failure`, `banned`...
    pub result: String,
    /// The client's address.
    pub client: String,
    /// The request id, to find the matching access log line.
    pub request_id: String,
    /// Extra detail, e.g. why a service token was refused.
    pub detail: Option<String>,
}

/// An audit event as stored: the inserted values and their row id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEventRecord {
    /// Row id: grows with every insert, so it orders events written in the same millisecond.
    pub id: i64,
    /// The event.
    pub event: NewAuditEvent,
}

// === impl Store ===

impl Store {
    /// Inserts `events` in one transaction: all of them or, on error, none.
    pub async fn record_audit_events(&self, events: &[NewAuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for event in events {
            sqlx::query(
                "INSERT INTO audit_events \
                 (at_unix_ms, kind, who, what, rule, result, client, request_id, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(event.at_unix_ms)
            .bind(&event.kind)
            .bind(&event.who)
            .bind(&event.what)
            .bind(&event.rule)
            .bind(&event.result)
            .bind(&event.client)
            .bind(&event.request_id)
            .bind(&event.detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The `limit` most recent events, oldest first (like the tail of a log file).
    pub async fn recent_audit_events(
        &self,
        limit: u32,
    ) -> Result<Vec<AuditEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_unix_ms, kind, who, what, rule, result, client, request_id, detail \
             FROM audit_events ORDER BY at_unix_ms DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut events = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        Ok(events)
    }

    /// Deletes every event older than `before_unix_ms` (retention). Returns how many went.
    pub async fn delete_audit_events_before(&self, before_unix_ms: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM audit_events WHERE at_unix_ms < $1")
            .bind(before_unix_ms)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(deleted)
    }
}

fn record_from_row(row: &SqliteRow) -> Result<AuditEventRecord, StoreError> {
    Ok(AuditEventRecord {
        id: row.try_get("id")?,
        event: NewAuditEvent {
            at_unix_ms: row.try_get("at_unix_ms")?,
            kind: row.try_get("kind")?,
            who: row.try_get("who")?,
            what: row.try_get("what")?,
            rule: row.try_get("rule")?,
            result: row.try_get("result")?,
            client: row.try_get("client")?,
            request_id: row.try_get("request_id")?,
            detail: row.try_get("detail")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_unix_ms: i64, request_id: &str) -> NewAuditEvent {
        NewAuditEvent {
            at_unix_ms,
            kind: "access_decision".into(),
            who: Some("alice".into()),
            what: "GET https://app.example.com/".into(),
            rule: Some("rule #1".into()),
            result: "allow".into(),
            client: "192.0.2.1".into(),
            request_id: request_id.into(),
            detail: None,
        }
    }

    #[tokio::test]
    async fn recent_events_come_back_oldest_first() {
        let store = Store::open_in_memory().await.unwrap();
        let events: Vec<_> = (0..5).map(|i| event(1_000 + i, &format!("r{i}"))).collect();
        store.record_audit_events(&events).await.unwrap();
        // Two in the same millisecond keep their insertion order.
        store
            .record_audit_events(&[event(2_000, "a"), event(2_000, "b")])
            .await
            .unwrap();

        let recent = store.recent_audit_events(3).await.unwrap();
        let ids: Vec<&str> = recent.iter().map(|r| r.event.request_id.as_str()).collect();
        assert_eq!(ids, ["r4", "a", "b"]);
        assert_eq!(recent[0].event, events[4]);

        let all = store.recent_audit_events(100).await.unwrap();
        assert_eq!(all.len(), 7);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[tokio::test]
    async fn retention_deletes_only_older_events() {
        let store = Store::open_in_memory().await.unwrap();
        store
            .record_audit_events(&[event(10, "old"), event(20, "edge"), event(30, "new")])
            .await
            .unwrap();
        assert_eq!(store.delete_audit_events_before(20).await.unwrap(), 1);
        let left: Vec<String> = store
            .recent_audit_events(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.request_id)
            .collect();
        assert_eq!(left, ["edge", "new"]);
    }

    #[tokio::test]
    async fn empty_batches_and_optional_fields_are_fine() {
        let store = Store::open_in_memory().await.unwrap();
        store.record_audit_events(&[]).await.unwrap();
        let mut bare = event(1, "x");
        bare.who = None;
        bare.rule = None;
        bare.detail = Some("wrong_secret".into());
        store.record_audit_events(&[bare.clone()]).await.unwrap();
        assert_eq!(store.recent_audit_events(1).await.unwrap()[0].event, bare);
        assert!(store.recent_audit_events(0).await.unwrap().is_empty());
    }
}
