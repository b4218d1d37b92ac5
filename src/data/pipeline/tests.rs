//! Fitting pipelines on small tables; applying them to rows and records is in
//! `tests/transform.rs`.

use std::collections::BTreeMap;

use super::*;
use ndarray::s;

use crate::data::error::{DataError, RecordError};
use crate::data::read::{read_csv, ReadLimits};
use crate::data::schema::infer_schema;
use crate::data::table::{Cell, Table};
use crate::data::text::TextOptions;

fn csv(s: &str) -> Table {
    read_csv(s.as_bytes(), &ReadLimits::default()).unwrap()
}

fn fit_all(t: &Table, target: &str, options: &PipelineOptions) -> FeaturePipeline {
    let schema = infer_schema(t, &BTreeMap::new(), &[]).unwrap();
    let rows: Vec<usize> = (0..t.rows()).collect();
    FeaturePipeline::fit(t, &rows, &schema, target, options).unwrap()
}

fn record(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap()
}

fn row_of(p: &FeaturePipeline, t: &Table, r: usize) -> Vec<f32> {
    p.transform(t, &[r]).unwrap().row(0).to_vec()
}

fn via_record(p: &FeaturePipeline, json: &str) -> Result<Vec<f32>, RecordError> {
    let mut out = vec![f32::NAN; p.width()];
    p.transform_record(&record(json), &mut out)?;
    Ok(out)
}

const ADULTISH: &str = "\
age,workclass,hours,smoker,y
39, State-gov,40,true,<=50K
50, Self-emp,13,false,<=50K
38, Private,40,,>50K
53, Private,,true,>50K
28, Private,40,false,<=50K
";

mod transform;

#[test]
fn numeric_median_imputation_with_indicator() {
    let t = csv("x,y\n1,a\n?,b\n3,a\n10,b\n");
    let p = fit_all(
        &t,
        "y",
        &PipelineOptions {
            standardize: false,
            numeric_bins: 0,
            ..Default::default()
        },
    );
    assert_eq!(p.feature_names(), ["x", "x__missing"]);
    let m = p.transform(&t, &[0, 1, 2, 3]).unwrap();
    assert_eq!(m.column(0).to_vec(), [1.0, 3.0, 3.0, 10.0]);
    assert_eq!(m.column(1).to_vec(), [0.0, 1.0, 0.0, 0.0]);

    let t = csv("x,y\n1,a\n2,b\n4,a\n");
    let p = fit_all(
        &t,
        "y",
        &PipelineOptions {
            standardize: false,
            numeric_bins: 0,
            ..Default::default()
        },
    );
    assert_eq!(p.feature_names(), ["x"]);
    assert_eq!(via_record(&p, r#"{"x": null}"#).unwrap(), [2.0]);
}

#[test]
fn piecewise_linear_bins_encode_progress_through_training_quantiles() {
    let t = csv("x,y\n0,a\n10,b\n20,a\n30,b\n40,a\n");
    let p = fit_all(
        &t,
        "y",
        &PipelineOptions {
            numeric_bins: 2,
            ..Default::default()
        },
    );
    assert_eq!(p.feature_names(), ["x", "x#bin1", "x#bin2"]);
    let row = |x: &str| via_record(&p, &format!(r#"{{"x": {x}}}"#)).unwrap()[1..].to_vec();
    assert_eq!(row("0"), [0.0, 0.0]);
    assert_eq!(row("10"), [0.5, 0.0]);
    assert_eq!(row("30"), [1.0, 0.5]);
    assert_eq!(row("99"), [1.0, 1.0]);
    assert_eq!(row("-5"), [0.0, 0.0]);
    let constant = csv("x,y\n5,a\n5,b\n5,a\n");
    let p = fit_all(&constant, "y", &PipelineOptions::default());
    assert_eq!(p.feature_names(), ["x"]);
}

#[test]
fn standardization_uses_training_rows_only() {
    let t = csv("x,y\n1,a\n2,a\n3,b\n1000,b\n");
    let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
    let p =
        FeaturePipeline::fit(&t, &[0, 1, 2], &schema, "y", &PipelineOptions::default()).unwrap();
    let train = p.transform(&t, &[0, 1, 2]).unwrap();
    let col = train.column(0);
    let mean: f32 = col.sum() / 3.0;
    let var: f32 = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
    assert!(
        mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
        "{mean} {var}"
    );
    let std = (2.0f32 / 3.0).sqrt();
    assert!((train[[2, 0]] - 1.0 / std).abs() < 1e-5);
    let test = p.transform(&t, &[3]).unwrap();
    assert!(
        (test[[0, 0]] - 998.0 / std).abs() < 1e-2,
        "{}",
        test[[0, 0]]
    );
}

#[test]
fn constant_column_has_unit_std() {
    let t = csv("x,y\n5,a\n5,b\n");
    let p = fit_all(&t, "y", &PipelineOptions::default());
    assert_eq!(
        p.transform(&t, &[0, 1]).unwrap().column(0).to_vec(),
        [0.0, 0.0]
    );
    assert_eq!(via_record(&p, r#"{"x": 6}"#).unwrap(), [1.0]);
}

#[test]
fn one_hot_with_missing_and_unknown_slots() {
    let t = csv("c,y\nb,1\na,0\nb,1\nNA,0\nc,1\n3.0,0\n");
    let p = fit_all(&t, "y", &PipelineOptions::default());
    assert_eq!(
        p.feature_names(),
        ["c=b", "c=3", "c=a", "c=c", "c=__missing__", "c=__unknown__"]
    );
    let m = p.transform(&t, &[0, 3]).unwrap();
    assert_eq!(m.row(0).to_vec(), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(m.row(1).to_vec(), [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(
        via_record(&p, r#"{"c": "zzz"}"#).unwrap(),
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        via_record(&p, r#"{"c": null}"#).unwrap(),
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    );
    for three in [
        r#"{"c": 3}"#,
        r#"{"c": 3.0}"#,
        r#"{"c": "3"}"#,
        r#"{"c": " 03 "}"#,
    ] {
        assert_eq!(
            via_record(&p, three).unwrap(),
            [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            "{three}"
        );
    }
    assert_eq!(
        via_record(&p, r#"{"c": " a "}"#).unwrap(),
        [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    );
}

#[test]
fn hashing_above_the_cap_is_stable() {
    let t = csv("c,y\nalpha,1\nbeta,0\ngamma,1\n");
    let options = PipelineOptions {
        max_one_hot: 2,
        hash_buckets: 8,
        ..Default::default()
    };
    let p = fit_all(&t, "y", &options);
    assert_eq!(p.width(), 8);
    assert_eq!(p.feature_names()[3], "c#hash3");
    let bucket_of = |json: &str| via_record(&p, json).unwrap().iter().position(|&v| v == 1.0);
    assert_eq!(super::super::canon::fnv1a("alpha") % 8, 3);
    assert_eq!(bucket_of(r#"{"c": "alpha"}"#), Some(3));
    assert_eq!(row_of(&p, &t, 0).iter().position(|&v| v == 1.0), Some(3));
    assert_eq!(
        bucket_of(r#"{"c": "never seen"}"#),
        Some((super::super::canon::fnv1a("never seen") % 8) as usize)
    );
    assert_eq!(via_record(&p, r#"{"c": null}"#).unwrap(), vec![0.0; 8]);
}

const REVIEWS: &str = "\
review,age,y
\"Great product, works great and arrived early\",31,pos
\"Terrible quality; broke after one day\",45,neg
\"Great value and great support team\",22,pos
\"Broke quickly, terrible support, not worth it\",52,neg
";

fn text_pipeline(options: &PipelineOptions) -> (Table, FeaturePipeline) {
    let t = csv(REVIEWS);
    let overrides = BTreeMap::from([("review".to_string(), ColumnKind::Text)]);
    let schema = infer_schema(&t, &overrides, &[]).unwrap();
    let p = FeaturePipeline::fit(&t, &[0, 1, 2, 3], &schema, "y", options).unwrap();
    (t, p)
}

#[test]
fn text_is_tfidf_after_the_dense_features() {
    let options = PipelineOptions {
        numeric_bins: 0,
        ..Default::default()
    };
    let (t, p) = text_pipeline(&options);
    assert_eq!(p.dense_width(), 1);
    let names = p.feature_names();
    assert_eq!(names.len(), p.width());
    assert_eq!(names[0], "age");
    // min_df 2: terms in at least two reviews, most frequent first.
    assert_eq!(
        &names[1..],
        [
            "review:and",
            "review:broke",
            "review:great",
            "review:support",
            "review:terrible"
        ]
    );
    let row = row_of(&p, &t, 0);
    let norm: f32 = row[1..].iter().map(|v| v * v).sum();
    assert!((norm - 1.0).abs() < 1e-5);
    assert_eq!(row[2], 0.0);
    assert!(
        row[3] > row[1] && row[1] > 0.0,
        "`great` twice, `and` once: {row:?}"
    );
    let (dense, sparse) = p.transform_split(&t, &[1, 3]).unwrap();
    assert_eq!(dense.dim(), (2, 1));
    assert_eq!((sparse.rows(), sparse.cols()), (2, 5));
    assert_eq!(sparse.row(0).0, [1, 4]);
    let full = p.transform(&t, &[1, 3]).unwrap();
    assert_eq!(full.slice(s![.., 1..]), sparse.to_dense());
    let shouted = via_record(
        &p,
        r#"{"review": "GREAT product, works GREAT and arrived early", "age": 31}"#,
    )
    .unwrap();
    assert_eq!(shouted, row);
    assert_eq!(
        via_record(&p, r#"{"review": null, "age": 31}"#).unwrap()[1..],
        [0.0; 5]
    );
    assert_eq!(
        via_record(&p, r#"{"review": ["a"], "age": 31}"#)
            .unwrap_err()
            .to_string(),
        "field `review`: expected a string, found an array"
    );
}

#[test]
fn text_options_shape_the_features() {
    let hashed = PipelineOptions {
        text: TextOptions {
            hashing: Some(16),
            ..TextOptions::default()
        },
        ..Default::default()
    };
    let (_, p) = text_pipeline(&hashed);
    assert_eq!(p.width() - p.dense_width(), 16);
    assert!(p.feature_names().contains(&"review#tfidf15".to_string()));
    let bigrams_only_once = PipelineOptions {
        text: TextOptions {
            min_df: 1,
            ngram_range: [1, 2],
            ..TextOptions::default()
        },
        ..Default::default()
    };
    let (_, p) = text_pipeline(&bigrams_only_once);
    assert!(p
        .feature_names()
        .contains(&"review:terrible quality".to_string()));
    let per_column = PipelineOptions {
        text_columns: BTreeMap::from([(
            "review".to_string(),
            TextOptions {
                hashing: Some(8),
                ..TextOptions::default()
            },
        )]),
        ..Default::default()
    };
    let (t, p) = text_pipeline(&per_column);
    assert_eq!(p.width() - p.dense_width(), 8);
    let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
    assert_eq!(per_column.check_columns(&schema), Ok(()));
    let not_text = PipelineOptions {
        text_columns: BTreeMap::from([("age".to_string(), TextOptions::default())]),
        ..Default::default()
    };
    let err = not_text.check_columns(&schema).unwrap_err();
    assert!(
        err.to_string()
            .contains("pipeline.text_columns names `age`"),
        "{err}"
    );
    let bad_column = PipelineOptions {
        text_columns: BTreeMap::from([(
            "review".to_string(),
            TextOptions {
                min_df: 0,
                ..TextOptions::default()
            },
        )]),
        ..Default::default()
    };
    let err = bad_column.validate().unwrap_err();
    assert!(
        err.to_string()
            .contains("pipeline.text_columns.review.min_df is 0"),
        "{err}"
    );
    let bad = PipelineOptions {
        text: TextOptions {
            min_df: 0,
            ..TextOptions::default()
        },
        ..Default::default()
    };
    let t = csv(REVIEWS);
    let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
    let err = FeaturePipeline::fit(&t, &[0, 1], &schema, "y", &bad).unwrap_err();
    assert!(err.to_string().contains("pipeline.text.min_df"), "{err}");
}

#[test]
fn text_pipeline_round_trips_through_json() {
    let (t, p) = text_pipeline(&PipelineOptions::default());
    let json = serde_json::to_string(&p).unwrap();
    let back: FeaturePipeline = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(
        back.transform(&t, &[0, 1, 2, 3]).unwrap(),
        p.transform(&t, &[0, 1, 2, 3]).unwrap()
    );
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["columns"][0]["encoder"]["idf"]
        .as_array_mut()
        .unwrap()
        .pop();
    assert!(serde_json::from_value::<FeaturePipeline>(v).is_err());
}

#[test]
fn fit_errors() {
    let t = csv(ADULTISH);
    let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
    let options = PipelineOptions::default();
    assert_eq!(
        FeaturePipeline::fit(&t, &[0], &schema, "nope", &options).unwrap_err(),
        DataError::UnknownColumn {
            name: "nope".into()
        }
    );
    assert_eq!(
        FeaturePipeline::fit(&t, &[], &schema, "y", &options).unwrap_err(),
        DataError::Empty
    );
    let bad = PipelineOptions {
        hash_buckets: 0,
        ..Default::default()
    };
    assert_eq!(
        FeaturePipeline::fit(&t, &[0], &schema, "y", &bad)
            .unwrap_err()
            .code(),
        "invalid_options"
    );
    let only_target = csv("id,y\na,1\nb,0\n");
    let ignore = ["id".to_string()];
    let schema = infer_schema(&only_target, &BTreeMap::new(), &ignore).unwrap();
    assert_eq!(
        FeaturePipeline::fit(&only_target, &[0, 1], &schema, "y", &options).unwrap_err(),
        DataError::NoFeatures
    );
}

#[test]
fn excluded_columns_are_not_inputs() {
    let mut t = csv(ADULTISH);
    t.columns.push("empty".into());
    t.cells.push(vec![Cell::Missing; 5]);
    let ignore = ["hours".to_string()];
    let schema = infer_schema(&t, &BTreeMap::new(), &ignore).unwrap();
    let p =
        FeaturePipeline::fit(&t, &[0, 1, 2], &schema, "y", &PipelineOptions::default()).unwrap();
    let names: Vec<String> = p.inputs().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["age", "workclass", "smoker"]);
    let rec = record(r#"{"age": 1, "workclass": "Private", "smoker": true}"#);
    let mut out = vec![0.0; p.width()];
    p.transform_record(&rec, &mut out).unwrap();
}

#[test]
fn image_checks_and_fitting_report_the_first_bad_cell_in_row_order() {
    let t = Table {
        columns: vec!["img".into(), "y".into()],
        cells: vec![
            vec![Cell::Text("not an image".into()), Cell::Number(3.0)],
            vec![Cell::Text("a".into()), Cell::Text("b".into())],
        ],
    };
    let overrides = BTreeMap::from([("img".to_string(), ColumnKind::Image)]);
    let schema = infer_schema(&t, &overrides, &[]).unwrap();
    let options = PipelineOptions::default();
    for (rows, code, row) in [([0, 1], "invalid_image", 1), ([1, 0], "invalid_value", 2)] {
        let checked = check_images(&t, &rows, &schema, "y", &options.image).unwrap_err();
        let fitted = FeaturePipeline::fit(&t, &rows, &schema, "y", &options).unwrap_err();
        assert_eq!(checked, fitted);
        assert_eq!(checked.code(), code);
        match checked {
            DataError::InvalidImage { row: r, .. } | DataError::InvalidValue { row: r, .. } => {
                assert_eq!(r, row)
            }
            other => panic!("{other:?}"),
        }
    }
}
