use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use super::*;

fn record(id: &str) -> JobRecord {
    JobRecord {
        model: "m".into(),
        status: JobStatus::Queued,
        epochs: 1,
        ..JobRecord::placeholder(id)
    }
}

async fn wait_terminal(system: &JobSystem, id: &str) -> JobRecord {
    for _ in 0..500 {
        if let Ok(Some(r)) = system.get(id) {
            if r.status.is_terminal() {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_training_fails_that_job_and_the_worker_keeps_running_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let runner: Runner = Arc::new(move |_record: &JobRecord, _control: &JobControl| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("boom in training");
        }
        Ok(RunOutcome {
            version: 7,
            metrics: Value::Null,
            stages: Vec::new(),
        })
    });
    let store = JobStore::new(crate::storage::Store::in_memory(dir.path()));
    let system = JobSystem::start(
        store,
        super::JobOptions {
            cluster: None,
            workers: 1,
            capacity: 4,
            retain_finished: 0,
            max_active_per_model: 0,
            training_nice: 0,
        },
        runner,
    )
    .unwrap();

    system.submit(record("a")).unwrap();
    let failed = wait_terminal(&system, "a").await;
    assert_eq!(failed.status, JobStatus::Failed);
    let error = failed.error.unwrap();
    assert_eq!(error.code, "training_panicked");
    assert!(
        error.message.contains("boom in training"),
        "{}",
        error.message
    );

    system.submit(record("b")).unwrap();
    let done = wait_terminal(&system, "b").await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.version, Some(7));
    assert!(system.healthy());
}
