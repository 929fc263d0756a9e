//! Two instances on one database: a flip on A reaches B by NOTIFY — B's `/v1/ws` subscribers
//! get the `flag_changed` frame, B's evaluation answers the new value, and B's flag stream
//! sends its snapshot first and then the change.

use serde_json::{Value, json};

use crate::support::sse::SseClient;
use crate::support::ws::{Ws, next_json};
use crate::support::{spawn_app, spawn_app_on};

/// The next `flag_changed` system frame for `key` on `/v1/ws`, past any other frame.
async fn next_flag_change(ws: &mut Ws, key: &str) -> Value {
    loop {
        let frame = next_json(ws).await;
        if frame["op"] == "system" && frame["kind"] == "flag_changed" && frame["key"] == key {
            return frame;
        }
    }
}

#[tokio::test]
async fn a_flip_on_one_instance_reaches_the_other_instances_subscribers_and_evaluation() {
    let a = spawn_app().await;
    a.create_boolean_flag("shared").await;
    let b = spawn_app_on(&a).await;
    let mut subscriber = b.subscribe_all().await;
    let stream = b.get("/v1/flags/stream", b.admin()).await;
    assert_eq!(stream.status().as_u16(), 200);
    let mut stream = SseClient::new(stream);
    let snapshot = stream.next().await.expect("a snapshot event");
    assert_eq!(snapshot.event, "snapshot", "{snapshot:?}");
    let flags = snapshot.json()["flags"].as_array().unwrap().clone();
    let shared = flags
        .iter()
        .find(|f| f["key"] == "shared")
        .expect("the flag");
    assert_eq!(shared["version"], 1);

    let flipped = a.flip_ok("shared", true).await;
    assert_eq!(flipped["version"], 2);

    let frame = next_flag_change(&mut subscriber, "shared").await;
    assert_eq!(frame["version"], 2, "{frame}");
    assert!(frame["revision"].as_i64().unwrap() > 1, "{frame}");
    // The frame is sent once B's snapshot holds the change.
    let result = b.evaluate("shared", json!({"targeting_key": "u"})).await;
    assert_eq!(result["value"], true, "{result}");
    assert_eq!(result["version"], 2, "{result}");
    let event = stream.next().await.expect("a flag_changed event");
    assert_eq!(event.event, "flag_changed", "{event:?}");
    let change = event.json();
    assert_eq!(
        (&change["key"], &change["version"]),
        (&json!("shared"), &json!(2))
    );
    assert_eq!(
        event.id.as_deref(),
        Some(frame["revision"].to_string().as_str())
    );
}
