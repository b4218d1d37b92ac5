//! Offline evaluation of the recommender on a ratings file, and scoring-cost timing.
//!
//! ```text
//! cargo run --release --example recommend_eval -- --ratings PATH [--protocol loo|random|both]
//!     [--items ITEMS_CSV] [--users USERS_CSV] [--params JSON] [--pop-penalty BETA] [--verbose]
//! cargo run --release --example recommend_eval -- --timing [--hidden 600] [--sizes 1000,10000]
//! ```
//!
//! The ratings CSV has columns `user_id,movie_id,rating,timestamp` (MovieLens layout);
//! every rating counts as one implicit interaction.
//!
//! * `loo` (leave-last-out): per user the last interaction by timestamp (ties: larger
//!   `movie_id`) is the test item; HR@10 and NDCG@10 ranking every item not in the
//!   user's training history.
//! * `random`: per user a seeded random 20% of interactions (seed 42) is the test set;
//!   NDCG@10 and Recall@20 (hits in the top 20 / test items) over all unseen items.
//!
//! `--items` reads MovieLens `items.csv` (`movie_id`, …, then one 0/1 column per genre
//! after `IMDb_URL`) and passes each movie's genres to the fit as item attributes;
//! `--users` reads `users.csv` (`user_id,age,gender,occupation,zip_code`) and passes
//! age group (MovieLens-1M bands), gender and occupation as user attributes.
//!
//! Popularity (interaction counts on the same training data) is evaluated in the same run.
//! `--params` overrides fields of the protocol's default [`RecommenderParams`];
//! `--pop-penalty` subtracts `BETA·ln(1 + count)` from the model's scores (an experiment
//! recorded in `bench/recommend/RESULTS.md`); `--verbose` prints every epoch.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use myelin::nn::{Control, EpochReport};
use myelin::recommend::{
    fit_with_attributes, top_k, Attributes, HoldoutKind, Interactions, RankingAccumulator,
    RankingMetrics, RecommendCaps, Recommender, RecommenderParams, ScoreScratch,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

struct Rating {
    user: u32,
    movie: u32,
    time: i64,
}

fn read_ratings(path: &str) -> Vec<Rating> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.expect("csv record");
        out.push(Rating {
            user: record[0].parse().expect("user_id"),
            movie: record[1].parse().expect("movie_id"),
            time: record[3].parse().expect("timestamp"),
        });
    }
    out
}

/// Test flags per rating for the protocol.
fn split(ratings: &[Rating], protocol: &str, seed: u64) -> Vec<bool> {
    let mut by_user: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, r) in ratings.iter().enumerate() {
        by_user.entry(r.user).or_default().push(i);
    }
    let mut users: Vec<u32> = by_user.keys().copied().collect();
    users.sort_unstable();
    let mut test = vec![false; ratings.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for user in users {
        let rows = &by_user[&user];
        match protocol {
            "loo" => {
                let last = rows
                    .iter()
                    .copied()
                    .max_by_key(|&i| (ratings[i].time, ratings[i].movie))
                    .expect("non-empty");
                test[last] = true;
            }
            _ => {
                let mut rows = rows.clone();
                rows.sort_unstable();
                rows.shuffle(&mut rng);
                let count = (rows.len() as f64 * 0.2).round() as usize;
                for &i in &rows[..count] {
                    test[i] = true;
                }
            }
        }
    }
    test
}

struct Outcome {
    model: RankingMetrics,
    popularity: RankingMetrics,
    fit_secs: f64,
    score_ms_per_user: f64,
    blend: f32,
    attribute_weight: f32,
    user_attribute_weight: f32,
    recency: (f32, f32),
    holdout_used: Option<HoldoutKind>,
    epochs: usize,
    validation: Option<(f64, f64)>,
}

fn evaluate(
    ratings: &[Rating],
    test: &[bool],
    params: &RecommenderParams,
    items: Option<&Attributes>,
    users: Option<&Attributes>,
    verbose: bool,
    pop_penalty: f32,
) -> Outcome {
    let mut train = Interactions {
        values: None,
        timestamps: Some(Vec::new()),
        ..Default::default()
    };
    for (r, &is_test) in ratings.iter().zip(test) {
        if !is_test {
            train.users.push(r.user.to_string());
            train.items.push(r.movie.to_string());
            train.timestamps.as_mut().expect("set").push(r.time);
        }
    }
    let cancel = AtomicBool::new(false);
    let mut on_epoch = |report: &EpochReport| {
        if verbose {
            eprintln!(
                "  epoch {:3} loss {:.3} {} {:?} ({:.1}s)",
                report.epoch,
                report.train_loss,
                report.metric,
                report.valid_metric,
                report.elapsed_secs
            );
        }
    };
    let started = Instant::now();
    let report = fit_with_attributes(
        &train,
        items,
        users,
        params,
        &RecommendCaps::default(),
        Control::new(&mut on_epoch, &cancel),
    )
    .expect("fit");
    let fit_secs = started.elapsed().as_secs_f64();
    for stage in &report.stages {
        eprintln!(
            "  stage {:<40} {:7.2} s wall {:7.2} s CPU",
            stage.stage, stage.wall_secs, stage.cpu_secs
        );
    }
    let model = report.model;
    let n = model.n_items();
    // Test items per known user.
    let mut targets: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut unknown_test_items = 0usize;
    for (r, &is_test) in ratings.iter().zip(test) {
        if !is_test {
            continue;
        }
        let Some(user) = model.user_index(&r.user.to_string()) else {
            continue;
        };
        // An item never seen in training cannot be ranked: it stays a miss.
        let item = model.item_index(&r.movie.to_string()).unwrap_or_else(|| {
            unknown_test_items += 1;
            u32::MAX
        });
        targets.entry(user).or_default().push(item);
    }
    if verbose && unknown_test_items > 0 {
        eprintln!("  {unknown_test_items} test interactions on items unseen in training (misses)");
    }
    let mut users: Vec<u32> = targets.keys().copied().collect();
    users.sort_unstable();
    let counts = {
        let mut counts = vec![0f32; n];
        for (r, &is_test) in ratings.iter().zip(test) {
            if !is_test {
                if let Some(i) = model.item_index(&r.movie.to_string()) {
                    counts[i as usize] += 1.0;
                }
            }
        }
        counts
    };
    let mut ours = RankingAccumulator::new(n);
    let mut popular = RankingAccumulator::new(n);
    let mut scratch = ScoreScratch::default();
    let mut buf = Vec::new();
    let mut seen = myelin::recommend::ItemSet::new(n);
    let mut score_secs = 0.0;
    for &user in &users {
        let history = model.user_history(user);
        seen.clear();
        history.iter().for_each(|&(i, _)| seen.insert(i));
        let t = Instant::now();
        let ranked = if pop_penalty == 0.0 {
            model
                .recommend_user_with(
                    Some(user),
                    &history,
                    20,
                    &|i| seen.contains(i),
                    None,
                    &mut scratch,
                )
                .expect("recommend")
        } else {
            let scores: Vec<f32> = model
                .score_user_into(Some(user), &history, &mut scratch)
                .expect("score")
                .iter()
                .zip(&counts)
                .map(|(&s, &c)| s - pop_penalty * (1.0 + c).ln())
                .collect();
            top_k(&scores, 20, &|i| seen.contains(i), None, &mut buf)
        };
        score_secs += t.elapsed().as_secs_f64();
        let ranked: Vec<u32> = ranked.into_iter().map(|(i, _)| i).collect();
        ours.add(&ranked, &targets[&user]);
        let ranked: Vec<u32> = top_k(&counts, 20, &|i| seen.contains(i), None, &mut buf)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        popular.add(&ranked, &targets[&user]);
    }
    Outcome {
        model: ours.finish(),
        popularity: popular.finish(),
        fit_secs,
        score_ms_per_user: score_secs * 1e3 / users.len().max(1) as f64,
        blend: model.spec().blend,
        attribute_weight: model.spec().attribute_weight,
        user_attribute_weight: model.spec().user_attribute_weight,
        recency: (model.spec().recency_power, model.spec().recency_floor),
        holdout_used: model.spec().holdout_used,
        epochs: model.spec().epochs_trained,
        validation: report
            .metrics
            .map(|m| (m.model.ndcg_at_10, m.model.recall_at_20)),
    }
}

/// Genres of each movie as one multi-valued item attribute `genre`.
fn read_genres(path: &str) -> Attributes {
    let mut reader = csv::Reader::from_path(path).expect("items csv");
    let headers = reader.headers().expect("header").clone();
    let id = headers
        .iter()
        .position(|h| h == "movie_id")
        .expect("movie_id column");
    let first = headers
        .iter()
        .position(|h| h == "IMDb_URL")
        .expect("IMDb_URL column")
        + 1;
    let mut attributes = Attributes {
        names: vec!["genre".into()],
        vocab: vec![headers.iter().skip(first).map(str::to_owned).collect()],
        offsets: vec![0],
        ..Attributes::default()
    };
    for record in reader.records() {
        let record = record.expect("items row");
        attributes.ids.push(record[id].to_owned());
        for (g, flag) in record.iter().skip(first).enumerate() {
            if flag == "1" {
                attributes.entries.push((0, g as u32));
            }
        }
        attributes.offsets.push(attributes.entries.len() as u32);
    }
    attributes
}

/// MovieLens-1M age bands.
fn age_group(age: u32) -> &'static str {
    match age {
        0..=17 => "<18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=49 => "45-49",
        50..=55 => "50-55",
        _ => "56+",
    }
}

/// Age group, gender and occupation of each user.
fn read_users(path: &str) -> Attributes {
    let mut reader = csv::Reader::from_path(path).expect("users csv");
    let headers = reader.headers().expect("header").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (id, age, gender, occupation) = (
        column("user_id"),
        column("age"),
        column("gender"),
        column("occupation"),
    );
    let mut attributes = Attributes {
        names: vec!["age_group".into(), "gender".into(), "occupation".into()],
        vocab: vec![Vec::new(); 3],
        offsets: vec![0],
        ..Attributes::default()
    };
    for record in reader.records() {
        let record = record.expect("users row");
        attributes.ids.push(record[id].to_owned());
        let age: u32 = record[age].parse().expect("age");
        let values = [age_group(age), &record[gender], &record[occupation]];
        for (a, value) in values.into_iter().enumerate() {
            let vocab = &mut attributes.vocab[a];
            let v = vocab.iter().position(|x| x == value).unwrap_or_else(|| {
                vocab.push(value.to_owned());
                vocab.len() - 1
            });
            attributes.entries.push((a as u32, v as u32));
        }
        attributes.offsets.push(attributes.entries.len() as u32);
    }
    attributes
}

fn protocol_params(protocol: &str, overrides: Option<&str>) -> RecommenderParams {
    let mut params = RecommenderParams {
        holdout: if protocol == "loo" {
            HoldoutKind::Temporal
        } else {
            HoldoutKind::Random
        },
        ..RecommenderParams::default()
    };
    if let Some(json) = overrides {
        let mut value = serde_json::to_value(&params).expect("params to json");
        let patch: serde_json::Value = serde_json::from_str(json).expect("--params must be JSON");
        for (k, v) in patch.as_object().expect("--params must be an object") {
            value[k] = v.clone();
        }
        params = serde_json::from_value(value).expect("valid params");
    }
    params
}

fn print_row(name: &str, m: &RankingMetrics) {
    println!(
        "| {name:<28} | {:.4} | {:.4} | {:.4} | {:.3} |",
        m.hr_at_10, m.ndcg_at_10, m.recall_at_20, m.coverage_at_10
    );
}

fn timing(sizes: &[usize], hidden: usize, history_len: usize) {
    println!("| items | component | wall ms per user (score + top-10) | CPU ms per user |");
    println!("|---|---|---|---|");
    for &n in sizes {
        let mut variants = vec![("dae", hidden, false)];
        if n <= 10_000 {
            variants.push(("item-item", 0, true));
            variants.push(("blend", hidden, true));
        }
        for (name, hidden, item_item) in variants {
            let model = Recommender::benchmark_model(n, hidden, item_item);
            let history: Vec<(u32, f32)> = (0..history_len)
                .map(|i| (((i * 7919) % n) as u32, 1.0))
                .collect();
            let mut scratch = ScoreScratch::default();
            let seen = myelin::recommend::ItemSet::from_history(n, &history);
            let run = |scratch: &mut ScoreScratch| {
                model
                    .recommend_with(&history, 10, &|i| seen.contains(i), None, scratch)
                    .expect("recommend")
            };
            run(&mut scratch);
            // Best of five rounds (the machine may be shared), each ~0.2 s; wall time and
            // this thread's CPU time (which excludes time spent descheduled).
            let reps = (200_000_000 / (n * hidden.max(1) + n * history_len)).clamp(3, 100_000);
            let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..5 {
                let (t, c) = (Instant::now(), myelin::cooperative::thread_cpu_seconds());
                for _ in 0..reps {
                    std::hint::black_box(run(&mut scratch));
                }
                wall = wall.min(t.elapsed().as_secs_f64() * 1e3 / reps as f64);
                cpu = cpu.min((myelin::cooperative::thread_cpu_seconds() - c) * 1e3 / reps as f64);
            }
            println!(
                "| {n} | {name} (hidden {hidden}, |h| = {history_len}) | {wall:.4} | {cpu:.4} |"
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.iter().any(|a| a == "--timing") {
        let hidden = value("--hidden").map_or(600, |h| h.parse().expect("--hidden"));
        let sizes: Vec<usize> = value("--sizes")
            .unwrap_or_else(|| "1000,1682,10000,100000,1000000".into())
            .split(',')
            .map(|s| s.parse().expect("--sizes"))
            .collect();
        let history_len = value("--history").map_or(100, |h| h.parse().expect("--history"));
        timing(&sizes, hidden, history_len);
        return;
    }
    let path = value("--ratings").expect("--ratings PATH");
    let protocol = value("--protocol").unwrap_or_else(|| "both".into());
    let overrides = value("--params");
    let verbose = args.iter().any(|a| a == "--verbose");
    let pop_penalty: f32 =
        value("--pop-penalty").map_or(0.0, |v| v.parse().expect("--pop-penalty"));
    let ratings = read_ratings(&path);
    let items = value("--items").map(|p| read_genres(&p));
    let users = value("--users").map(|p| read_users(&p));
    let protocols: Vec<&str> = match protocol.as_str() {
        "both" => vec!["loo", "random"],
        "loo" => vec!["loo"],
        "random" => vec!["random"],
        other => panic!("unknown protocol {other}"),
    };
    for protocol in protocols {
        let params = protocol_params(protocol, overrides.as_deref());
        let test = split(&ratings, protocol, 42);
        eprintln!(
            "protocol {protocol}: params {}",
            serde_json::to_string(&params).expect("json")
        );
        let out = evaluate(
            &ratings,
            &test,
            &params,
            items.as_ref(),
            users.as_ref(),
            verbose,
            pop_penalty,
        );
        println!(
            "\n## protocol {protocol} ({} users, fit {:.1}s, {:.4} ms/user scoring, blend {}, attributes {}/{}, recency (power, floor) {:?}, holdout used {:?}, epochs {}, validation ndcg@10/recall@20 {:?})",
            out.model.users,
            out.fit_secs,
            out.score_ms_per_user,
            out.blend,
            out.attribute_weight,
            out.user_attribute_weight,
            out.recency,
            out.holdout_used,
            out.epochs,
            out.validation
        );
        println!("| model                        | HR@10  | NDCG@10 | Recall@20 | Cov@10 |");
        println!("|---|---|---|---|---|");
        print_row(&format!("ours ({:?})", params.component), &out.model);
        print_row("popularity", &out.popularity);
    }
}
