//! The command line: `serve` (default), `train`, `predict`, `eval`, `export`, `openapi`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::data::{self, ColumnKind, ReadLimits, Table, Task};
use crate::nn::{Control, EpochReport, TrainParams};
use crate::registry::{LoadedModel, Registry, ServingModel};
use crate::tabular::{self, Prediction, TabularModel, TrainSpec, Validation};

/// Myelin: train small neural networks and serve them over HTTP.
#[derive(Parser, Debug)]
#[command(name = "myelin", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Train a model from a CSV, JSON or NDJSON file and store a new version.
    Train(TrainArgs),
    /// Predict every row of a file with a stored model.
    Predict(PredictArgs),
    /// Print a stored model's metrics on a labelled file.
    Eval(EvalArgs),
    /// Write a stored model as one ONNX file (pipeline and network).
    Export(ExportArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when the local server answers GET /healthz (for container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    /// Settings file, to find the port (environment variables apply too).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `myelin healthcheck`: GET /healthz on the configured port of 127.0.0.1.
pub fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    use std::io::Read;
    use std::time::Duration;
    let settings = crate::config::Settings::load(args.config.as_deref())?;
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], settings.server.port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if response.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        bail!(
            "unhealthy: {}",
            response.lines().next().unwrap_or("no answer")
        )
    }
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Settings file (TOML) applied over the defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Dataset file: .csv, .json (array of objects) or .ndjson/.jsonl.
    #[arg(long)]
    pub data: PathBuf,
    /// Column to predict.
    #[arg(long)]
    pub target: String,
    /// Model name ([a-z0-9][a-z0-9._-]{0,63}).
    #[arg(long)]
    pub name: String,
    /// Model store: a directory, file:///path or s3://bucket/prefix (default:
    /// `store.url` of the configuration, else `store.path`).
    #[arg(long)]
    pub models: Option<String>,
    /// Settings file (TOML) applied over the defaults, as for `serve`; `MYELIN_*`
    /// variables apply too. Sets the store, read limits and training caps.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// classification or regression (inferred from the target when omitted).
    #[arg(long)]
    pub task: Option<String>,
    /// Training parameter as key=value (value in JSON, e.g. hidden_layers=[64,32]); repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Column kind override as column=kind (numeric, boolean, categorical, text, image, audio, identifier); repeatable.
    #[arg(long = "column", value_name = "COLUMN=KIND")]
    pub columns: Vec<String>,
    /// Column to leave out of the features; repeatable.
    #[arg(long)]
    pub ignore: Vec<String>,
    /// Class weighting: none or balanced.
    #[arg(long)]
    pub class_weight: Option<String>,
    /// Feature pipeline option as key=value (max_one_hot, hash_buckets, standardize, numeric_bins, text={...}, image={...}, audio={...} as JSON); repeatable.
    #[arg(long = "pipeline", value_name = "KEY=VALUE")]
    pub pipeline: Vec<String>,
    /// Validation: auto (default: 5-fold below 2,000 labelled rows, else a holdout), holdout,
    /// kfold, kfold:N, or a JSON object such as {"kind":"kfold","folds":5,"stratified":false}.
    #[arg(long)]
    pub validation: Option<String>,
    /// Write a JSON report (version, metrics, history, timing, params) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Which stored model version a command uses.
#[derive(Args, Debug)]
pub struct StoredModelArgs {
    /// Model name.
    #[arg(long)]
    pub name: String,
    /// Version (default: the `production` alias, else the latest).
    #[arg(long)]
    pub version: Option<u32>,
    /// Model store: a directory, file:///path or s3://bucket/prefix (default:
    /// `store.url` of the configuration, else `store.path`).
    #[arg(long)]
    pub models: Option<String>,
    /// Settings file (TOML) applied over the defaults, as for `serve`; `MYELIN_*`
    /// variables apply too.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: StoredModelArgs,
    /// Input file: .csv, .json or .ndjson/.jsonl.
    #[arg(long)]
    pub data: PathBuf,
    /// Output file; .json writes JSON, anything else CSV. Default: CSV on stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: StoredModelArgs,
    /// Format: onnx.
    #[arg(long, default_value = "onnx")]
    pub format: String,
    /// Output file (default: `<name>-v<version>.onnx`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: StoredModelArgs,
    /// Labelled file (must contain the target column).
    #[arg(long)]
    pub data: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// An error and its causes joined by `: `, leaving out a cause whose text is already
/// part of the message (errors that print their source as well as returning it).
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Reads a dataset file, choosing the format by extension.
pub fn read_table(path: &Path, limits: &ReadLimits) -> anyhow::Result<(Table, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let format = data::TableFormat::from_extension(extension);
    let table = data::read_table(&bytes, format, limits)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((table, bytes))
}

/// Parses `key=value` pairs into training parameters (values are JSON, or a
/// bare string when they are not valid JSON).
pub fn parse_params(pairs: &[String]) -> anyhow::Result<TrainParams> {
    parse_pairs(pairs, "--param")
}

fn parse_pairs<T: serde::de::DeserializeOwned>(pairs: &[String], flag: &str) -> anyhow::Result<T> {
    let mut object = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("{flag} `{pair}` is not key=value");
        };
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        object.insert(key.trim().to_string(), value);
    }
    serde_json::from_value(Value::Object(object)).with_context(|| format!("invalid {flag}"))
}

/// `--validation`: a kind name, `kfold:N`, or a JSON object.
fn parse_validation(text: Option<&str>) -> anyhow::Result<Validation> {
    let Some(text) = text.map(str::trim) else {
        return Ok(Validation::Auto);
    };
    let value = if text.starts_with('{') {
        serde_json::from_str(text).with_context(|| format!("--validation `{text}`"))?
    } else if let Some(folds) = text.strip_prefix("kfold:") {
        let folds: usize = folds
            .parse()
            .with_context(|| format!("--validation `{text}`: folds must be a number"))?;
        serde_json::json!({"kind": "kfold", "folds": folds})
    } else {
        serde_json::json!({ "kind": text })
    };
    let validation: Validation = serde_json::from_value(value).with_context(|| {
        format!("--validation `{text}`: expected auto, holdout, kfold or kfold:N")
    })?;
    validation.check()?;
    Ok(validation)
}

fn parse_task(task: Option<&str>) -> anyhow::Result<Option<Task>> {
    match task {
        None => Ok(None),
        Some(t) => Ok(Some(
            serde_json::from_value(Value::String(t.to_string()))
                .with_context(|| format!("--task `{t}`: expected classification or regression"))?,
        )),
    }
}

fn parse_columns(pairs: &[String]) -> anyhow::Result<BTreeMap<String, ColumnKind>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((column, kind)) = pair.split_once('=') else {
            bail!("--column `{pair}` is not column=kind");
        };
        let kind: ColumnKind = serde_json::from_value(Value::String(kind.to_string()))
            .with_context(|| format!("--column `{pair}`: unknown kind `{kind}`"))?;
        out.insert(column.to_string(), kind);
    }
    Ok(out)
}

/// The settings the server would use (defaults, `config`, then `MYELIN_*`) and the
/// model store they name (`store.url`, else `store.path`; S3 credentials from the
/// `AWS_*` variables), or `models` (a path or URL) when given.
pub fn open_store(
    models: Option<&str>,
    config: Option<&Path>,
) -> anyhow::Result<(Settings, Registry)> {
    let settings = Settings::load(config)?;
    let location = match models {
        Some(url) => crate::storage::Location::parse(url)?,
        None => settings.store.location()?,
    };
    let cache_dir = match (&location, settings.store.cache_dir.as_os_str().is_empty()) {
        (crate::storage::Location::Local(root), true) => root.join(".cache"),
        _ => settings.store.cache_dir(),
    };
    let store = crate::storage::Store::open(&location, &cache_dir)
        .with_context(|| format!("opening the model store {location}"))?;
    let registry = Registry::with_store(store, settings.store.retain_versions, 1)
        .with_context(|| format!("opening the model store {location}"))?;
    Ok((settings, registry))
}

/// `myelin train`.
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    let (settings, registry) = open_store(args.models.as_deref(), args.config.as_deref())?;
    crate::data::set_audio_limits(&settings.audio);
    let limits = settings.read_limits();
    let (table, bytes) = read_table(&args.data, &limits)?;
    let spec = TrainSpec {
        target: args.target.clone(),
        task: parse_task(args.task.as_deref())?,
        overrides: parse_columns(&args.columns)?,
        ignore: args.ignore.clone(),
        params: parse_params(&args.params)?,
        explicit: args
            .params
            .iter()
            .filter_map(|p| p.split_once('=').map(|(k, _)| k.trim().to_string()))
            .collect(),
        validation: parse_validation(args.validation.as_deref())?,
        pipeline: parse_pairs(&args.pipeline, "--pipeline")?,
        class_weight: match args.class_weight.as_deref() {
            None => None,
            Some(mode) => Some(
                serde_json::from_value(Value::String(mode.to_string())).with_context(|| {
                    format!("--class-weight `{mode}`: expected none or balanced")
                })?,
            ),
        },
        ..TrainSpec::default()
    };
    crate::registry::check_name("model name", &args.name)?;
    let caps = settings.training.clone();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(spec.params.epochs as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let cancel = AtomicBool::new(false);
    let mut on_epoch = |r: &EpochReport| {
        bar.set_position(r.epoch as u64);
        bar.set_message(format_epoch(r));
    };
    let trained = tabular::train(
        &table,
        &spec,
        &caps,
        Control {
            on_epoch: &mut on_epoch,
            cancel: &cancel,
        },
    )?;
    bar.finish_and_clear();
    let fingerprint = data::fingerprint(&bytes, table.rows(), table.columns.len());
    let card = crate::registry::ModelCard::tabular(&args.name, &trained, fingerprint, None);
    let weights = crate::registry::weights_bytes(&trained.model.mlp)?;
    let version = registry.save(&card, &weights)?;
    println!(
        "trained {} version {version} in {} epochs ({:.2}s, {:.4} CPU-s/epoch)",
        args.name,
        trained.timing.epochs,
        trained.timing.fit_wall_seconds,
        trained.timing.cpu_seconds_per_epoch
    );
    print_metrics(&serde_json::to_value(&trained.metrics)?);
    if let Some(path) = &args.report {
        let report = serde_json::json!({
            "name": args.name,
            "version": version,
            "metrics": trained.metrics,
            "history": trained.history,
            "best_epoch": trained.best_epoch,
            "timing": trained.timing,
            "params": trained.params,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn format_epoch(r: &EpochReport) -> String {
    let mut s = format!("loss {:.4}", r.train_loss);
    if let Some(v) = r.valid_loss {
        s.push_str(&format!(" val_loss {v:.4}"));
    }
    if let Some(m) = r.valid_metric {
        s.push_str(&format!(" val_{} {m:.4}", r.metric));
    }
    s
}

fn print_metrics(metrics: &Value) {
    if let Value::Object(map) = metrics {
        for (k, v) in map {
            if let Some(n) = v.as_u64() {
                println!("  {k:<18} {n}");
            } else if let Some(x) = v.as_f64() {
                println!("  {k:<18} {x:.4}");
            } else if let Some(text) = v.as_str() {
                println!("  {k:<18} {text}");
            } else if k != "confusion_matrix" {
                println!("  {k:<18} {v}");
            }
        }
    }
}

fn load_stored(
    args: &StoredModelArgs,
) -> anyhow::Result<(ReadLimits, std::sync::Arc<LoadedModel>)> {
    let (settings, registry) = open_store(args.models.as_deref(), args.config.as_deref())?;
    crate::data::set_audio_limits(&settings.audio);
    let version = registry.resolve(&args.name, args.version)?;
    Ok((settings.read_limits(), registry.load(&args.name, version)?))
}

fn tabular_of<'a>(loaded: &'a LoadedModel, name: &str) -> anyhow::Result<&'a TabularModel> {
    match &loaded.model {
        ServingModel::Tabular(model) => Ok(model),
        other => bail!("{name} is a {} model, not a tabular one", other.kind()),
    }
}

fn records_of(table: &Table) -> Vec<Map<String, Value>> {
    (0..table.rows())
        .map(|row| {
            table
                .columns
                .iter()
                .zip(&table.cells)
                .map(|(name, cells)| (name.clone(), cell_to_json(&cells[row])))
                .collect()
        })
        .collect()
}

/// `myelin predict`.
pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    let (limits, loaded) = load_stored(&args.model)?;
    let model = tabular_of(&loaded, &args.model.name)?;
    let (table, _) = read_table(&args.data, &limits)?;
    let records = records_of(&table);
    // The file's rows count from 1 (for CSV, the first line after the header).
    let batch = model
        .predict_records(&records)
        .map_err(|e| anyhow::anyhow!("{} row {}: {}", args.data.display(), e.index + 1, e.error))?;
    let as_json = args
        .out
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e == "json");
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    if as_json {
        serde_json::to_writer_pretty(&mut out, &batch.predictions)?;
        writeln!(out)?;
    } else {
        let mut writer = csv::Writer::from_writer(out);
        let labels = model.encoder.labels().to_vec();
        match batch.predictions.first() {
            Some(Prediction::Class { .. }) | None if !labels.is_empty() => {
                let mut header = vec!["label".to_string()];
                header.extend(labels.iter().map(|l| format!("p_{l}")));
                writer.write_record(&header)?;
            }
            _ => writer.write_record(["value"])?,
        }
        for p in &batch.predictions {
            match p {
                Prediction::Class {
                    label,
                    probabilities,
                } => {
                    let mut row = vec![label.clone()];
                    row.extend(
                        labels
                            .iter()
                            .map(|l| probabilities.get(l).copied().unwrap_or(0.0).to_string()),
                    );
                    writer.write_record(&row)?;
                }
                Prediction::Value { value } => writer.write_record([value.to_string()])?,
            }
        }
        writer.flush()?;
    }
    eprintln!(
        "{} predictions with {} version {}",
        batch.predictions.len(),
        args.model.name,
        loaded.card.version
    );
    Ok(())
}

/// `myelin export`.
pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    if args.format != "onnx" {
        bail!("format `{}` is not supported; supported: onnx", args.format);
    }
    let (_, loaded) = load_stored(&args.model)?;
    let model = tabular_of(&loaded, &args.model.name)?;
    let version = loaded.card.version;
    let bytes = crate::export::to_onnx(model, &args.model.name, version)?;
    let path = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}-v{version}.onnx", args.model.name)));
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(&bytes))
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "{} version {version} written to {} ({} bytes)",
        args.model.name,
        path.display(),
        bytes.len()
    );
    Ok(())
}

/// `myelin eval`.
pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let (limits, loaded) = load_stored(&args.model)?;
    let model = tabular_of(&loaded, &args.model.name)?;
    let (table, _) = read_table(&args.data, &limits)?;
    let rows = data::rows_with_target(&table, &model.target);
    if rows.is_empty() {
        bail!(
            "{} has no rows with the target column `{}`",
            args.data.display(),
            model.target
        );
    }
    let metrics = tabular::evaluate(model, &table, &rows)?;
    let value = serde_json::to_value(&metrics)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "{} version {} on {} rows:",
            args.model.name,
            loaded.card.version,
            rows.len()
        );
        print_metrics(&value);
    }
    Ok(())
}

fn cell_to_json(cell: &data::Cell) -> Value {
    match cell {
        data::Cell::Missing => Value::Null,
        data::Cell::Number(x) => serde_json::Number::from_f64(*x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        data::Cell::Bool(b) => Value::Bool(*b),
        data::Cell::Text(s) => Value::String(s.clone()),
    }
}
