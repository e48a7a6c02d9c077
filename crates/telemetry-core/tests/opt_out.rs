//! Opted out means nothing at all happens: no thread, no file, no connection, whether the
//! host captures events or records usage statistics.
//! One test in its own binary, so the process's thread count is not disturbed by others.

mod common;
use common::listing;

use std::net::TcpListener;
use std::time::Duration;

use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;
use telemetry_core::{Client, Event};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn opted_out_clients_create_no_thread_no_file_and_no_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let threads_before = thread_count();

    let switches = [
        (Profile::Chroma, "ANONYMIZED_TELEMETRY", "False"),
        (Profile::Chroma, "DO_NOT_TRACK", "1"),
        (Profile::Qdrant, "QDRANT__TELEMETRY_DISABLED", "true"),
        (Profile::Evidently, "EVIDENTLY_DISABLE_TELEMETRY", "1"),
    ];
    for (profile, var, value) in switches {
        let home = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let env = MapEnvironment::new()
            .with("HOME", home.path())
            .with(var, value);
        let client = Client::builder("app", "1.0")
            .profile(profile.clone())
            .environment(env)
            .working_dir(work.path())
            .config_dir(work.path())
            .endpoint(&endpoint)
            .api_key("phc_test")
            .build()
            .unwrap();
        assert!(!client.is_enabled(), "{profile} with {var}={value}");
        // Usage statistics record, and start nothing either.
        let timing = client.usage().timing("query").build().unwrap().handle();
        let counter = client.usage().counter("points").build().unwrap().handle();
        for i in 0..1000 {
            client.capture(Event::new("query").property("n", i));
            drop(timing.start());
            counter.inc();
        }
        client
            .usage()
            .set_section("collections", telemetry_core::usage::Section::new(1.into()))
            .unwrap();
        assert_eq!(timing.snapshot().count, 1000);
        assert!(client.flush(Duration::from_millis(100)));
        let stats = client.shutdown(Duration::from_millis(100));
        assert_eq!(stats.captured, 0);
        assert_eq!(
            thread_count(),
            threads_before,
            "{profile}: a thread was started"
        );
        assert!(
            listing(home.path()).is_empty(),
            "{profile}: wrote into HOME"
        );
        assert!(
            listing(work.path()).is_empty(),
            "{profile}: wrote into the working dir"
        );
        drop(client);
    }
    assert!(
        listener.accept().is_err(),
        "an opted-out client connected to the endpoint"
    );
}
