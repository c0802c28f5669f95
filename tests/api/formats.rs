//! `POST /api/v1/load` with the binary formats: a spreadsheet (one sheet
//! picked by name) and an Arrow IPC file, each read back through the API.

use super::client::{call, send};
use super::{ring, serve};
use polars::prelude::*;

#[test]
fn spreadsheets_and_arrow_files_upload() {
    let r = ring();
    let s = serve(&r.state, &[]);
    let w = Some(r.writer.as_str());
    let dir = tempfile::tempdir().unwrap();

    let book = dir.path().join("stock.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    wb.add_worksheet().set_name("Other").unwrap();
    let sheet = wb.add_worksheet();
    sheet.set_name("Stock").unwrap();
    sheet.write_string(0, 0, "sku").unwrap();
    sheet.write_string(0, 1, "count").unwrap();
    sheet.write_string(1, 0, "A-1").unwrap();
    sheet.write_number(1, 1, 7).unwrap();
    wb.save(&book).unwrap();
    let bytes = std::fs::read(&book).unwrap();
    let a = send(
        s.addr,
        "POST",
        b"/api/v1/load?format=xlsx&sheet=Stock",
        w,
        &bytes,
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["inserted"], 1);
    assert_eq!(
        call(s.addr, "GET", "/api/v1/keys/A-1", w, "").json()["value"],
        7
    );
    let a = send(
        s.addr,
        "POST",
        b"/api/v1/load?format=xlsx&sheet=Nope",
        w,
        &bytes,
    );
    assert_eq!(a.status, 400);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("no sheet \"Nope\"")
    );

    let mut df = DataFrame::new_infer_height(vec![
        Series::new("sku".into(), &["B-2"]).into(),
        Series::new("price".into(), &[0.5f64]).into(),
    ])
    .unwrap();
    let mut arrow = Vec::new();
    IpcWriter::new(&mut arrow).finish(&mut df).unwrap();
    let a = send(s.addr, "POST", b"/api/v1/load?format=ipc", w, &arrow);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        call(s.addr, "GET", "/api/v1/keys/B-2", w, "").json()["value"],
        0.5
    );
}
