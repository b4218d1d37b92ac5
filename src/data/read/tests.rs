//! Readers: CSV, JSON arrays, NDJSON and records, their errors and limits.

use super::*;
use crate::data::table::Cell;

fn csv(s: &str) -> Result<Table, DataError> {
    read_csv(s.as_bytes(), &ReadLimits::default())
}

fn text(s: &str) -> Cell {
    Cell::Text(s.into())
}

#[test]
fn csv_quoted_fields_with_commas_and_newlines() {
    let t = csv("name,note,n\n\"Smith, J\",\"line one\nline two\", 3 \nx,\"say \"\"hi\"\"\",NA\n")
        .unwrap();
    assert_eq!(t.columns, ["name", "note", "n"]);
    assert_eq!(t.rows(), 2);
    assert_eq!(t.cells[0][0], text("Smith, J"));
    assert_eq!(t.cells[1][0], text("line one\nline two"));
    assert_eq!(t.cells[2][0], text(" 3 "));
    assert_eq!(t.cells[1][1], text("say \"hi\""));
    assert_eq!(t.cells[2][1], Cell::Missing);
}

#[test]
fn csv_missing_tokens_become_missing() {
    let t = csv("a,b,c,d,e,f,g\n,null,NA,N/A,?,NaN,none\n").unwrap();
    for col in 0..6 {
        assert_eq!(t.cells[col][0], Cell::Missing, "column {col}");
    }
    assert_eq!(t.cells[6][0], text("none"));
}

#[test]
fn csv_invalid_utf8_names_the_line() {
    let mut bytes = b"a,b\n1,2\n3,".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.push(b'\n');
    let e = read_csv(&bytes[..], &ReadLimits::default()).unwrap_err();
    match &e {
        DataError::Csv { line: 3, reason } => {
            assert!(reason.contains("column 2 (`b`)"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("line 3"));
    assert_eq!(e.code(), "csv_invalid");
}

#[test]
fn csv_ragged_row_names_the_line() {
    let e = csv("a,b,c,d\n1,2,3,4\n1,2,3\n").unwrap_err();
    assert_eq!(
        e,
        DataError::Csv {
            line: 3,
            reason: "row has 3 fields, header has 4".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid CSV at line 3: row has 3 fields, header has 4"
    );
}

#[test]
fn csv_header_problems() {
    assert_eq!(
        csv("a,,c\n1,2,3\n").unwrap_err(),
        DataError::EmptyHeader { column: 2 }
    );
    assert_eq!(
        csv("a, b ,b\n1,2,3\n").unwrap_err(),
        DataError::DuplicateHeader { name: "b".into() }
    );
    assert_eq!(csv("a,b\n").unwrap_err(), DataError::Empty);
    assert_eq!(csv("").unwrap_err(), DataError::Empty);
    let t = csv("\u{feff}age , workclass\n39, State-gov\n").unwrap();
    assert_eq!(t.columns, ["age", "workclass"]);
}

#[test]
fn csv_limits() {
    let limits = ReadLimits {
        max_rows: 2,
        max_columns: 2,
        max_field_bytes: 4,
    };
    assert_eq!(
        read_csv(&b"a,b\n1,2\n3,4\n5,6\n"[..], &limits).unwrap_err(),
        DataError::TooManyRows { limit: 2 }
    );
    assert_eq!(
        read_csv(&b"a,b,c\n1,2,3\n"[..], &limits).unwrap_err(),
        DataError::TooManyColumns { limit: 2, found: 3 }
    );
    assert_eq!(
        read_csv(&b"a,b\n1,2\n3,12345\n"[..], &limits).unwrap_err(),
        DataError::FieldTooLarge { line: 3, limit: 4 }
    );
}

#[test]
fn json_array_keeps_types_and_first_seen_key_order() {
    let t = read_json_rows(
        br#"[{"z": 1, "a": "x", "b": true},
                 {"a": null, "c": 2.5},
                 {"z": "NA", "b": false}]"#,
        &ReadLimits::default(),
    )
    .unwrap();
    assert_eq!(t.columns, ["z", "a", "b", "c"]);
    assert_eq!(t.rows(), 3);
    assert_eq!(
        t.cells[0],
        [Cell::Number(1.0), Cell::Missing, Cell::Missing]
    );
    assert_eq!(t.cells[1], [text("x"), Cell::Missing, Cell::Missing]);
    assert_eq!(
        t.cells[2],
        [Cell::Bool(true), Cell::Missing, Cell::Bool(false)]
    );
    assert_eq!(
        t.cells[3],
        [Cell::Missing, Cell::Number(2.5), Cell::Missing]
    );
}

#[test]
fn json_errors_name_line_and_record() {
    let limits = ReadLimits::default();
    let e = read_json_rows(b"[{\"a\": 1},\n {\"a\": {\"b\": 2}}]", &limits).unwrap_err();
    match &e {
        DataError::Json {
            line: Some(2),
            reason,
        } => {
            assert!(reason.contains("record 2, field `a`"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let pixels = read_json_rows(b"[{\"a\": [0, 2.5, 255]}]", &limits).unwrap();
    assert_eq!(pixels.cells[0], [text("[0,2.5,255]")]);
    let records: Vec<serde_json::Map<String, serde_json::Value>> =
        vec![serde_json::from_str(r#"{"a": [0, 2.5, 255]}"#).unwrap()];
    let t = table_from_records(&records, &limits).unwrap();
    assert_eq!(t.cells[0], [text("[0,2.5,255]")]);
    let e = read_json_rows(b"[{\"a\": 1},\n {\"a\": [\"x\"]}]", &limits).unwrap_err();
    assert!(e.to_string().contains("nested arrays"), "{e}");
    let e = read_json_rows(b"[{\"a\": 1},\n\n {\"a\": 1,}]", &limits).unwrap_err();
    assert!(matches!(e, DataError::Json { line: Some(3), .. }), "{e:?}");
    let e = read_json_rows(b"{\"a\": 1}", &limits).unwrap_err();
    assert!(e.to_string().contains("a JSON array of objects"), "{e}");
    let e = read_json_rows(b"[{\"a\": 1}, 3]", &limits).unwrap_err();
    assert!(e.to_string().contains("a JSON object"), "{e}");
    let e = read_json_rows(b"[{\"a\": 1, \"a\": 2}]", &limits).unwrap_err();
    assert!(e.to_string().contains("appears more than once"), "{e}");
    assert_eq!(
        read_json_rows(b"[]", &limits).unwrap_err(),
        DataError::Empty
    );
    assert_eq!(
        read_json_rows(b"  ", &limits).unwrap_err(),
        DataError::Empty
    );
    let e = read_json_rows(b"[{\"a\": 1}] x", &limits).unwrap_err();
    assert_eq!(e.code(), "json_invalid");
}

#[test]
fn json_limits() {
    let limits = ReadLimits {
        max_rows: 1,
        max_columns: 2,
        max_field_bytes: 3,
    };
    assert_eq!(
        read_json_rows(b"[{\"a\": 1}, {\"a\": 2}]", &limits).unwrap_err(),
        DataError::TooManyRows { limit: 1 }
    );
    assert_eq!(
        read_json_rows(b"[{\"a\": 1, \"b\": 2, \"c\": 3}]", &limits).unwrap_err(),
        DataError::TooManyColumns { limit: 2, found: 3 }
    );
    assert_eq!(
        read_json_rows(b"[\n{\"a\": \"abcd\"}]", &limits).unwrap_err(),
        DataError::FieldTooLarge { line: 2, limit: 3 }
    );
}

#[test]
fn ndjson_skips_blank_lines_and_names_bad_line() {
    let limits = ReadLimits::default();
    let t = read_ndjson(
        &b"{\"a\": 1, \"b\": \"x\"}\n\n  \n{\"b\": \"y\"}\n"[..],
        &limits,
    )
    .unwrap();
    assert_eq!(t.columns, ["a", "b"]);
    assert_eq!(t.cells[0], [Cell::Number(1.0), Cell::Missing]);
    assert_eq!(t.cells[1], [text("x"), text("y")]);
    let e = read_ndjson(&b"{\"a\": 1}\n\n{\"a\": 2\n{\"a\": 3}\n"[..], &limits).unwrap_err();
    assert!(matches!(e, DataError::Json { line: Some(3), .. }), "{e:?}");
    let e = read_ndjson(&b"{\"a\": 1}\n[1]\n"[..], &limits).unwrap_err();
    assert!(matches!(e, DataError::Json { line: Some(2), .. }), "{e:?}");
    let e = read_ndjson(&b"{\"a\": 1}\n{\"a\": 1} {}\n"[..], &limits).unwrap_err();
    assert!(matches!(e, DataError::Json { line: Some(2), .. }), "{e:?}");
    let e = read_ndjson(&b"{\"a\": 1}\n{\"a\": {}}\n"[..], &limits).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid JSON at line 2: record 2, field `a`"),
        "{e}"
    );
    assert_eq!(
        read_ndjson(&b"\n\n"[..], &limits).unwrap_err(),
        DataError::Empty
    );
}

#[test]
fn records_become_a_table() {
    let records: Vec<serde_json::Map<String, serde_json::Value>> = vec![
        serde_json::from_str(r#"{"b": 1, "a": "x"}"#).unwrap(),
        serde_json::from_str(r#"{"c": null, "a": "?"}"#).unwrap(),
    ];
    let t = table_from_records(&records, &ReadLimits::default()).unwrap();
    assert_eq!(t.columns, ["a", "b", "c"]);
    assert_eq!(t.cells[0], [text("x"), Cell::Missing]);
    assert_eq!(t.cells[1], [Cell::Number(1.0), Cell::Missing]);
    assert_eq!(t.cells[2], [Cell::Missing, Cell::Missing]);
    let nested: Vec<serde_json::Map<String, serde_json::Value>> =
        vec![serde_json::from_str(r#"{"a": {"b": 1}}"#).unwrap()];
    let e = table_from_records(&nested, &ReadLimits::default()).unwrap_err();
    assert!(matches!(e, DataError::Json { line: None, .. }));
    assert!(e.to_string().contains("record 1, field `a`"), "{e}");
    assert_eq!(
        table_from_records(&[], &ReadLimits::default()).unwrap_err(),
        DataError::Empty
    );
}

#[test]
fn limits_deserialize_with_defaults() {
    let l: ReadLimits = serde_json::from_str(r#"{"max_rows": 10}"#).unwrap();
    assert_eq!(l.max_rows, 10);
    assert_eq!(l.max_columns, 2_000);
    assert!(serde_json::from_str::<ReadLimits>(r#"{"rows": 1}"#).is_err());
}

#[test]
fn formats_by_name_and_extension() {
    for format in [TableFormat::Csv, TableFormat::Json, TableFormat::Ndjson] {
        assert_eq!(format.name().parse::<TableFormat>(), Ok(format));
    }
    let unknown = "tsv".parse::<TableFormat>().unwrap_err();
    assert_eq!(unknown.code(), "unknown_format");
    assert_eq!(
        unknown.to_string(),
        "unknown table format `tsv`; the formats are csv, json and ndjson"
    );
    assert!("".parse::<TableFormat>().is_err());
    assert!("CSV".parse::<TableFormat>().is_err());
    assert_eq!(TableFormat::from_extension("JSON"), TableFormat::Json);
    assert_eq!(TableFormat::from_extension("jsonl"), TableFormat::Ndjson);
    assert_eq!(TableFormat::from_extension("ndjson"), TableFormat::Ndjson);
    assert_eq!(TableFormat::from_extension("txt"), TableFormat::Csv);
    assert_eq!(TableFormat::from_extension(""), TableFormat::Csv);
}

#[test]
fn read_table_dispatches_on_the_format() {
    let limits = ReadLimits::default();
    let csv = b"a,b\n1,x\n";
    let json = b"[{\"a\": 1, \"b\": \"x\"}]";
    let ndjson = b"{\"a\": 1, \"b\": \"x\"}\n";
    let cells = |t: Table| (t.columns, t.cells);
    assert_eq!(
        cells(read_table(csv, TableFormat::Csv, &limits).unwrap()),
        cells(read_csv(&csv[..], &limits).unwrap())
    );
    assert_eq!(
        cells(read_table(json, TableFormat::Json, &limits).unwrap()),
        cells(read_json_rows(json, &limits).unwrap())
    );
    assert_eq!(
        cells(read_table(ndjson, TableFormat::Ndjson, &limits).unwrap()),
        cells(read_ndjson(&ndjson[..], &limits).unwrap())
    );
    assert!(read_table(csv, TableFormat::Json, &limits).is_err());
}
