//! Idempotent sends: a retried keyed send returns the first result and appends nothing; a
//! different request under the same key is a conflict.

use belfry::domain::{Command, DomainError};
use belfry::engine::CommandError;
use belfry::projections::{read, replay, Projection};

use crate::helpers::{meta, send_cmd, user, Backend, TestStore};

async fn a_keyed_send_retried_100_times_at_once_creates_one_notification_per_recipient(
    backend: Backend,
) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let engine = engine.engine.clone();
        // Each retry is parsed anew, with fresh notification ids and a new clock reading.
        let cmd = send_cmd(
            &["ann", "bob"],
            "billing",
            "Invoice ready",
            Some("invoice-42"),
        );
        tasks.push(tokio::spawn(async move {
            engine.execute(Command::Send(cmd), meta()).await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task").expect("every retry succeeds"));
    }
    assert_eq!(
        outcomes.iter().filter(|o| !o.replayed).count(),
        1,
        "exactly one send did the work"
    );
    let first = outcomes
        .iter()
        .find(|o| !o.replayed)
        .expect("the first")
        .deliveries
        .clone();
    assert_eq!(first.len(), 2);
    for o in &outcomes {
        assert_eq!(o.deliveries, first, "every retry returns the first result");
    }
    assert_eq!(
        store.all_events().await.len(),
        2,
        "two notifications, nothing more"
    );
    for who in ["ann", "bob"] {
        let inbox = read::inbox(&store.db, &user(who), &Default::default(), None, 50)
            .await
            .expect("inbox");
        assert_eq!(inbox.len(), 1, "{who} has one notification");
        assert_eq!(
            read::counts(&store.db, &user(who))
                .await
                .expect("counts")
                .unread,
            1
        );
    }
    engine.stop().await;
}

async fn a_changed_payload_under_the_same_key_is_a_conflict_and_appends_nothing(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    engine
        .run(Command::Send(send_cmd(
            &["ann"],
            "billing",
            "Invoice ready",
            Some("k"),
        )))
        .await
        .expect("first");
    for changed in [
        send_cmd(&["ann"], "billing", "Invoice READY", Some("k")),
        send_cmd(&["ann", "bob"], "billing", "Invoice ready", Some("k")),
        send_cmd(&["ann"], "security", "Invoice ready", Some("k")),
    ] {
        let result = engine.run(Command::Send(changed)).await;
        assert!(
            matches!(
                result,
                Err(CommandError::Rejected(DomainError::IdempotencyConflict(_)))
            ),
            "{result:?}"
        );
    }
    assert_eq!(store.all_events().await.len(), 1);
    engine.stop().await;
}

async fn idempotency_keys_survive_a_rebuild_of_the_read_model(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let first = engine
        .run(Command::Send(send_cmd(&["ann"], "billing", "x", Some("k"))))
        .await
        .expect("first");
    engine.stop().await;
    replay::rebuild(&store.db, &Projection::ALL, |_| {})
        .await
        .expect("rebuild");
    let engine = store.engine().await;
    let retry = engine
        .run(Command::Send(send_cmd(&["ann"], "billing", "x", Some("k"))))
        .await
        .expect("retry");
    assert!(retry.replayed);
    assert_eq!(retry.deliveries, first.deliveries);
    assert_eq!(store.all_events().await.len(), 1);
    engine.stop().await;
}

crate::on_both_backends!(
    a_keyed_send_retried_100_times_at_once_creates_one_notification_per_recipient,
    a_changed_payload_under_the_same_key_is_a_conflict_and_appends_nothing,
    idempotency_keys_survive_a_rebuild_of_the_read_model,
);
