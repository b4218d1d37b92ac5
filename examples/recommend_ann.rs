//! Exact against approximate (inverted-file index) top-10 on synthetic clustered
//! catalogs: recall@10 of the approximate lists, CPU per request, index build time and
//! memory.
//!
//! ```text
//! cargo run --release --example recommend_ann -- [--sizes 100000,1000000] [--hidden 300]
//!     [--probes 16,32] [--users 200]
//! ```
//!
//! Several probe counts share one index per catalog (one row each).
//!
//! Each catalog is [`Recommender::benchmark_clustered`] (item vectors around `n / 100`
//! cluster centres, encoder tied to the decoder). A request is a history of 20 items from
//! one to three clusters; the history is excluded. CPU per request is this thread's CPU
//! time over all requests (best of three rounds).

use std::time::Instant;

use myelin::recommend::{ItemSet, Recommender, ScoreScratch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn histories(n: usize, users: usize, seed: u64) -> Vec<Vec<(u32, f32)>> {
    // Items of one cluster share nothing visible here, so a history mixes a few
    // neighbourhoods of consecutive ids in the index order the model was built with.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..users)
        .map(|_| {
            let groups = rng.random_range(1..=3);
            let anchors: Vec<usize> = (0..groups).map(|_| rng.random_range(0..n)).collect();
            (0..20)
                .map(|i| (anchors[i % groups] as u32, 1.0))
                .collect::<Vec<_>>()
        })
        .map(|mut h: Vec<(u32, f32)>| {
            h.sort_unstable_by_key(|e| e.0);
            h.dedup_by_key(|e| e.0);
            h
        })
        .collect()
}

fn run(model: &Recommender, requests: &[Vec<(u32, f32)>]) -> (Vec<Vec<u32>>, f64) {
    let n = model.n_items();
    let mut scratch = ScoreScratch::default();
    let mut best = f64::INFINITY;
    let mut lists = Vec::new();
    for _ in 0..3 {
        lists.clear();
        let cpu = myelin::cooperative::thread_cpu_seconds();
        for history in requests {
            let seen = ItemSet::from_history(n, history);
            let top = model
                .recommend_with(history, 10, &|i| seen.contains(i), None, &mut scratch)
                .expect("recommend");
            lists.push(top.into_iter().map(|(i, _)| i).collect());
        }
        best = best
            .min((myelin::cooperative::thread_cpu_seconds() - cpu) * 1e3 / requests.len() as f64);
    }
    (lists, best)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = value("--sizes")
        .unwrap_or_else(|| "100000,1000000".into())
        .split(',')
        .map(|s| s.parse().expect("--sizes"))
        .collect();
    let hidden: usize = value("--hidden").map_or(300, |v| v.parse().expect("--hidden"));
    let probes: Vec<usize> = value("--probes")
        .unwrap_or_else(|| "16,32".into())
        .split(',')
        .map(|s| s.parse().expect("--probes"))
        .collect();
    let users: usize = value("--users").map_or(200, |v| v.parse().expect("--users"));
    println!("| items | hidden | lists | probes | exact CPU ms/request | approximate CPU ms/request | recall@10 | index build s | index MiB | of which list-ordered rows MiB | decoder (int8) MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let exact = Recommender::benchmark_clustered(n, hidden, 42);
        // Histories whose items share clusters: take each anchor's nearest items by the
        // model's own similar-items ranking.
        let mut requests = Vec::new();
        for anchors in histories(n, users, 7) {
            let mut history: Vec<(u32, f32)> = Vec::new();
            for &(a, _) in &anchors {
                history.push((a, 1.0));
                if let Ok(near) = exact.similar(a, 6) {
                    history.extend(near.into_iter().map(|(i, _)| (i, 1.0)));
                }
            }
            history.sort_unstable_by_key(|e| e.0);
            history.dedup_by_key(|e| e.0);
            requests.push(history);
        }
        let started = Instant::now();
        let indexed = exact.clone().with_built_index(probes[0], 42);
        let build = started.elapsed().as_secs_f64();
        let (truth, exact_ms) = run(&exact, &requests);
        for &p in &probes {
            let approximate = indexed.clone().with_probes(p);
            let (got, approx_ms) = run(&approximate, &requests);
            let hits: usize = truth
                .iter()
                .zip(&got)
                .map(|(t, g)| g.iter().filter(|i| t.contains(i)).count())
                .sum();
            let recall = hits as f64 / truth.iter().map(Vec::len).sum::<usize>().max(1) as f64;
            let spec = approximate.spec();
            let mib = |bytes: usize| bytes as f64 / (1 << 20) as f64;
            println!(
                "| {n} | {hidden} | {} | {} | {exact_ms:.3} | {approx_ms:.3} | {recall:.4} | {build:.1} | {:.1} | {:.1} | {:.1} |",
                spec.index_lists,
                spec.index_probes,
                mib(approximate.index_bytes()),
                mib(approximate.index_rows_bytes()),
                mib(n * hidden.div_ceil(64) * 64),
            );
        }
    }
}
