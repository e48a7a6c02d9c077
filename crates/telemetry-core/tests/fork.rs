//! After fork(), the child delivers its own events and never the parent's queued ones.
//! One test in its own binary: forking a test harness with many threads is otherwise racy.

mod common;

use std::time::Duration;

use telemetry_core::sink::MemorySink;
use telemetry_core::Event;

#[test]
fn a_forked_child_starts_its_own_worker_and_the_parent_loses_nothing() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = common::isolated_builder("app", "1", home.path(), &memory)
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..3 {
        client.capture(Event::new("parent_before"));
    }
    assert!(client.flush(Duration::from_secs(5)));
    // Queued in the parent, not yet delivered when the fork happens.
    client.capture(Event::new("parent_queued"));
    client.capture(Event::new("parent_queued"));

    // SAFETY: the child only uses the client (whose fork handling is under test) and
    // leaves with _exit, running no destructor of the parent's state.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        client.capture(Event::new("child"));
        let flushed = client.flush(Duration::from_secs(5));
        let names: Vec<String> = memory
            .events()
            .iter()
            .map(|e| e["event"].as_str().unwrap_or("").to_string())
            .collect();
        let stats = client.stats();
        let ok = flushed
            && names.iter().filter(|n| *n == "child").count() == 1
            && !names.iter().any(|n| n == "parent_queued")
            && stats.captured == 1
            && stats.sent == 1;
        if !ok {
            eprintln!("child saw {names:?}, flushed {flushed}, {stats:?}");
        }
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed"
    );

    let stats = client.shutdown(Duration::from_secs(5));
    let names: Vec<String> = memory
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.iter().filter(|n| *n == "parent_queued").count(), 2);
    assert!(!names.iter().any(|n| n == "child"));
    assert_eq!((stats.captured, stats.sent), (5, 5));
}
