//! Applying fitted pipelines to table rows and records, and their serialized form.

use super::*;

#[test]
fn stored_bag_of_words_columns_still_load() {
    let json = r#"{"columns": [{"name": "t", "kind": "text", "encoder": {"encoding": "bag_of_words", "buckets": 8}}]}"#;
    let p: FeaturePipeline = serde_json::from_str(json).unwrap();
    assert_eq!((p.width(), p.dense_width()), (8, 8));
    let row = via_record(&p, r#"{"t": "hello world"}"#).unwrap();
    let norm: f32 = row.iter().map(|v| v * v).sum();
    assert!((norm - 1.0).abs() < 1e-5);
}

#[test]
fn record_path_matches_table_path() {
    let t = csv(ADULTISH);
    let p = fit_all(&t, "y", &PipelineOptions::default());
    assert_eq!(
        p.inputs(),
        [
            ("age".to_string(), ColumnKind::Numeric),
            ("workclass".to_string(), ColumnKind::Categorical),
            ("hours".to_string(), ColumnKind::Numeric),
            ("smoker".to_string(), ColumnKind::Boolean),
        ]
    );
    assert_eq!(p.width(), p.feature_names().len());
    let records = [
        r#"{"age": 39, "workclass": "State-gov", "hours": 40, "smoker": true}"#,
        r#"{"age": "50", "workclass": "Self-emp", "hours": 13.0, "smoker": "false"}"#,
        r#"{"age": 38.0, "workclass": " Private", "hours": "40", "smoker": null}"#,
        r#"{"age": 53, "workclass": "Private", "hours": null, "smoker": 1}"#,
        r#"{"age": 28, "workclass": "Private", "hours": "40", "smoker": "no", "y": "<=50K"}"#,
    ];
    let all = p.transform(&t, &[0, 1, 2, 3, 4]).unwrap();
    for (r, json) in records.iter().enumerate() {
        assert_eq!(
            via_record(&p, json).unwrap(),
            all.row(r).to_vec(),
            "row {r}"
        );
    }
    let rec = record(records[4]);
    assert_eq!(p.unknown_fields(&rec), ["y"]);
}

#[test]
fn record_errors() {
    let t = csv(ADULTISH);
    let p = fit_all(&t, "y", &PipelineOptions::default());
    assert_eq!(
        via_record(
            &p,
            r#"{"workclass": "Private", "hours": 1, "smoker": true}"#
        )
        .unwrap_err(),
        RecordError::MissingField {
            field: "age".into()
        }
    );
    let wrong = |json: &str| via_record(&p, json).unwrap_err().to_string();
    assert_eq!(
        wrong(r#"{"age": "old", "workclass": "x", "hours": 1, "smoker": true}"#),
        "field `age`: expected a number, found the string \"old\""
    );
    assert_eq!(
        wrong(r#"{"age": true, "workclass": "x", "hours": 1, "smoker": true}"#),
        "field `age`: expected a number, found the boolean true"
    );
    assert_eq!(
        wrong(r#"{"age": "inf", "workclass": "x", "hours": 1, "smoker": true}"#),
        "field `age`: expected a number, found the string \"inf\""
    );
    assert_eq!(
        wrong(r#"{"age": 1, "workclass": {"a": 1}, "hours": 1, "smoker": true}"#),
        "field `workclass`: expected a string, number or boolean, found an object"
    );
    assert_eq!(
        wrong(r#"{"age": 1, "workclass": "x", "hours": [1], "smoker": true}"#),
        "field `hours`: expected a number, found an array"
    );
    assert_eq!(
        wrong(r#"{"age": 1, "workclass": "x", "hours": 1, "smoker": 2}"#),
        "field `smoker`: expected a boolean (true/false, yes/no, 1/0), found the number 2"
    );
}

#[test]
fn table_transform_errors_name_row_and_column() {
    let t = csv(ADULTISH);
    let p = fit_all(&t, "y", &PipelineOptions::default());
    let other = csv("age,workclass,hours,smoker\n1,a,2,true\nx,a,2,true\n");
    assert_eq!(
        p.transform(&other, &[0, 1]).unwrap_err(),
        DataError::InvalidValue {
            column: "age".into(),
            row: 2,
            value: "x".into(),
            expected: "a number"
        }
    );
    let missing = csv("age,workclass\n1,a\n");
    assert_eq!(
        p.transform(&missing, &[0]).unwrap_err(),
        DataError::MissingColumn {
            name: "hours".into()
        }
    );
    assert_eq!(
        p.transform(&other, &[5]).unwrap_err(),
        DataError::RowOutOfRange { row: 5, rows: 2 }
    );
}

#[test]
fn serde_round_trip_transforms_identically() {
    let t = csv(ADULTISH);
    let p = fit_all(
        &t,
        "y",
        &PipelineOptions {
            max_one_hot: 2,
            ..Default::default()
        },
    );
    let json = serde_json::to_string(&p).unwrap();
    let back: FeaturePipeline = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let rows = [0, 1, 2, 3, 4];
    assert_eq!(
        back.transform(&t, &rows).unwrap(),
        p.transform(&t, &rows).unwrap()
    );
    assert_eq!(back.feature_names(), p.feature_names());
    let rec = record(r#"{"age": 1, "workclass": "Private", "hours": 2, "smoker": true, "x": 1}"#);
    assert_eq!(back.unknown_fields(&rec), ["x"]);

    let p = fit_all(&t, "y", &PipelineOptions::default());
    let json = serde_json::to_string(&p).unwrap();
    let back: FeaturePipeline = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back.transform(&t, &rows).unwrap(),
        p.transform(&t, &rows).unwrap()
    );
    let tampered = json.replace("\"std\":", "\"sd\":");
    assert!(serde_json::from_str::<FeaturePipeline>(&tampered).is_err());
    let extra = json.replace("\"median\":", "\"extra\":1,\"median\":");
    assert!(serde_json::from_str::<FeaturePipeline>(&extra).is_err());
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["columns"][1]["encoder"]["vocabulary"][1] =
        v["columns"][1]["encoder"]["vocabulary"][0].clone();
    assert!(serde_json::from_value::<FeaturePipeline>(v).is_err());
}

#[test]
fn transform_is_fast_enough_for_a_large_table() {
    let n = 40_000;
    let mut text = String::from("a,b,c,d,y\n");
    for i in 0..n {
        text.push_str(&format!(
            "{},{},cat{},{},{}\n",
            i % 90,
            (i * 7) % 13,
            i % 9,
            i % 2 == 0,
            i % 2
        ));
    }
    let t = csv(&text);
    let p = fit_all(&t, "y", &PipelineOptions::default());
    let rows: Vec<usize> = (0..n).collect();
    let start = std::time::Instant::now();
    let m = p.transform(&t, &rows).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(m.dim(), (n, p.width()));
    assert!(elapsed.as_millis() < 2_000, "{elapsed:?}");
}
