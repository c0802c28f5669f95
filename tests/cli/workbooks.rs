//! Spreadsheets (calamine) and Arrow IPC files (polars), made here with
//! rust_xlsxwriter and polars and loaded by the real binary: each value
//! checked against what the file holds, each bad case one clear error with
//! the ring unchanged.

use crate::Env;
use polars::prelude::*;
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
use serde_json::{Value, json};
use std::path::Path;

/// A workbook with two sheets. "Prices": a header, numbers (whole and
/// not), text, a boolean, a date, a date and time, a time of day, a formula
/// with its saved result, an empty cell and a merged range. "Stock": other
/// columns, to be picked by name or position.
fn workbook(path: &Path) {
    let mut wb = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let stamp = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let clock = Format::new().set_num_format("hh:mm:ss");
    let prices = wb.add_worksheet();
    prices.set_name("Prices").unwrap();
    for (c, h) in [
        "name", "price", "qty", "organic", "added", "seen", "at", "double", "note",
    ]
    .iter()
    .enumerate()
    {
        prices.write_string(0, c as u16, *h).unwrap();
    }
    let rows: [(&str, f64, f64, bool); 3] = [
        ("apple", 1.2, 10.0, true),
        ("Ærøskøbing pear", 0.1 + 0.2, 3.0, false),
        ("kiwi", 1e-7, 0.0, true),
    ];
    for (i, (name, price, qty, organic)) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        prices.write_string(r, 0, *name).unwrap();
        prices.write_number(r, 1, *price).unwrap();
        prices.write_number(r, 2, *qty).unwrap();
        prices.write_boolean(r, 3, *organic).unwrap();
        let day = ExcelDateTime::from_ymd(2024, 1, 15 + i as u8).unwrap();
        prices
            .write_datetime_with_format(r, 4, &day, &date)
            .unwrap();
        let seen = day.clone().and_hms(10, 30, 0).unwrap();
        prices
            .write_datetime_with_format(r, 5, &seen, &stamp)
            .unwrap();
        let at = ExcelDateTime::from_hms(8, 15, 30).unwrap();
        prices
            .write_datetime_with_format(r, 6, &at, &clock)
            .unwrap();
        let formula = Formula::new(format!("=B{}*2", r + 1)).set_result((price * 2.0).to_string());
        prices.write_formula(r, 7, formula).unwrap();
    }
    // Row 5 (the spreadsheet's numbering): the note spans two columns.
    prices.write_string(4, 0, "fig").unwrap();
    prices.write_number(4, 1, 5.2).unwrap();
    prices
        .merge_range(4, 7, 4, 8, "merged note", &Format::new())
        .unwrap();
    let stock = wb.add_worksheet();
    stock.set_name("Stock").unwrap();
    stock.write_string(0, 0, "sku").unwrap();
    stock.write_string(0, 1, "count").unwrap();
    stock.write_string(1, 0, "A-1").unwrap();
    stock.write_number(1, 1, 7).unwrap();
    wb.save(path).unwrap();
}

#[test]
fn a_workbook_loads_value_for_value_from_the_sheet_asked_for() {
    let e = Env::new();
    let book = e.path("fruit.xlsx");
    workbook(&book);
    // --source left out: the extension says it.
    e.ok(&[
        "load",
        "--path",
        book.to_str().unwrap(),
        "--key-col",
        "name",
    ]);
    let got = e.dump();
    assert_eq!(got.len(), 4);
    assert_eq!(
        got["apple"],
        json!({"price": 1.2, "qty": 10, "organic": true, "added": "2024-01-15",
               "seen": "2024-01-15T10:30:00", "at": "08:15:30", "double": 2.4, "note": null})
    );
    // The stored double, with its shortest digits, not a rounded one.
    assert_eq!(
        got["Ærøskøbing pear"]["price"].to_string(),
        "0.30000000000000004"
    );
    assert_eq!(got["kiwi"]["price"].to_string(), "1e-7");
    assert_eq!(got["kiwi"]["qty"], json!(0));
    // A merged range's value is in its first cell; the rest are empty.
    assert_eq!(got["fig"]["double"], json!("merged note"));
    assert_eq!(got["fig"]["note"], Value::Null);
    assert_eq!(got["fig"]["added"], Value::Null);

    // The second sheet, by name and by position from 0.
    for sheet in ["Stock", "1"] {
        let e = Env::new();
        e.ok(&[
            "load",
            "--source",
            "xlsx",
            "--path",
            book.to_str().unwrap(),
            "--sheet",
            sheet,
        ]);
        assert_eq!(e.dump(), [("A-1".to_owned(), json!(7))].into());
    }

    // Without a header the first row is data and columns are numbered.
    let e = Env::new();
    e.ok(&[
        "load",
        "--path",
        book.to_str().unwrap(),
        "--sheet",
        "Stock",
        "--no-header",
        "--key-col",
        "column_1",
        "--value-col",
        "column_2",
    ]);
    assert_eq!(
        e.dump(),
        [
            ("A-1".to_owned(), json!(7)),
            ("sku".to_owned(), json!("count"))
        ]
        .into()
    );

    // From standard input, as a file piped from another program.
    let e = Env::new();
    e.dht()
        .args([
            "load", "--source", "xlsx", "--path", "-", "--sheet", "Stock",
        ])
        .write_stdin(std::fs::read(&book).unwrap())
        .assert()
        .success();
    assert_eq!(e.dump()["A-1"], json!(7));
}

#[test]
fn bad_workbooks_are_one_clear_error_and_change_nothing() {
    let e = Env::new();
    let book = e.path("fruit.xlsx");
    workbook(&book);
    e.ok(&["init", "--nodes", "4"]);
    let before = e.copies();
    let b = book.to_str().unwrap();
    let err = e.fails(&["load", "--path", b, "--sheet", "Costs"]);
    assert!(
        err.contains("no sheet \"Costs\"") && err.contains("\"Prices\", \"Stock\""),
        "{err}"
    );
    let err = e.fails(&["load", "--path", b, "--sheet", "7"]);
    assert!(err.contains("no sheet \"7\""), "{err}");
    // A null key (fig's row has no "qty"), named by the sheet's row number.
    let err = e.fails(&["load", "--path", b, "--key-col", "qty"]);
    assert!(err.contains("sheet \"Prices\", row 5"), "{err}");
    let err = e.fails(&["load", "--path", b, "--key-col", "nope"]);
    assert!(err.contains("\"nope\" not found"), "{err}");
    // Not a workbook at all, and one cut short.
    let fake = e.write("fake.xlsx", "name,price\napple,1\n");
    let err = e.fails(&["load", "--path", fake.to_str().unwrap()]);
    assert!(
        err.contains("fake.xlsx") && err.contains("spreadsheet"),
        "{err}"
    );
    let bytes = std::fs::read(&book).unwrap();
    let cut = e.path("cut.xlsx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = e.fails(&["load", "--path", cut.to_str().unwrap()]);
    assert!(err.contains("cut.xlsx"), "{err}");
    assert_eq!(e.copies(), before);
    // With --skip-bad-rows the good rows load and the bad one is listed.
    let out = e.ok(&[
        "load",
        "--path",
        b,
        "--key-col",
        "qty",
        "--skip-bad-rows",
        "--json",
    ]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["rejected"], 1, "{summary}");
    assert_eq!(summary["inserted"], 3, "{summary}");
}

/// A frame with the types Arrow files carry: text, floats, integers,
/// booleans, dates, nulls, and dictionary-encoded (categorical) text.
fn frame() -> DataFrame {
    let cat = Series::new("grade".into(), &["A", "B", "A"])
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap();
    let day = Series::new("day".into(), &[19737i32, 19738, 19739])
        .cast(&DataType::Date)
        .unwrap();
    DataFrame::new_infer_height(vec![
        Series::new("name".into(), &["apple", "pear", "kiwi"]).into(),
        Series::new("price".into(), &[1.2f64, 0.1 + 0.2, 5.0]).into(),
        Series::new("qty".into(), &[Some(10i64), None, Some(-3)]).into(),
        Series::new("organic".into(), &[true, false, true]).into(),
        day.into(),
        cat.into(),
    ])
    .unwrap()
}

#[test]
fn arrow_ipc_files_and_streams_load_value_for_value() {
    let e = Env::new();
    let mut df = frame();
    let file = e.path("fruit.feather");
    IpcWriter::new(std::fs::File::create(&file).unwrap())
        .finish(&mut df)
        .unwrap();
    let stream = e.path("fruit.arrows");
    IpcStreamWriter::new(std::fs::File::create(&stream).unwrap())
        .finish(&mut df)
        .unwrap();
    let want = json!({"price": 1.2, "qty": 10, "organic": true, "day": "2024-01-15", "grade": "A"});
    for path in [&file, &stream] {
        let e = Env::new();
        e.ok(&[
            "load",
            "--path",
            path.to_str().unwrap(),
            "--key-col",
            "name",
        ]);
        let got = e.dump();
        assert_eq!(got["apple"], want, "{}", path.display());
        assert_eq!(got["pear"]["qty"], Value::Null);
        assert_eq!(got["pear"]["price"].to_string(), "0.30000000000000004");
        assert_eq!(got["kiwi"]["grade"], json!("A"));
    }
    // Standard input, and a file cut short (an error, the ring unchanged).
    let e = Env::new();
    e.dht()
        .args([
            "load",
            "--source",
            "ipc",
            "--path",
            "-",
            "--key-col",
            "name",
        ])
        .write_stdin(std::fs::read(&file).unwrap())
        .assert()
        .success();
    assert_eq!(e.dump()["apple"], want);
    let before = e.copies();
    let bytes = std::fs::read(&file).unwrap();
    let cut = e.path("cut.arrow");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = e.fails(&["load", "--path", cut.to_str().unwrap(), "--key-col", "name"]);
    assert!(
        err.contains("cut.arrow") && err.contains("Arrow IPC"),
        "{err}"
    );
    assert_eq!(e.copies(), before);
}
