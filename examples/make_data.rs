//! Regenerates the sample sources in `data/`: the same produce catalog as
//! CSV (two columns), Parquet (typed columns), a JSON object, NDJSON rows,
//! and an SQLite database with the two-column table `items` (the default
//! `dht load --source sql --table items`) and the typed table `catalog`.
//!
//! Run from the project root: `cargo run --example make_data`.

use polars::prelude::*;
use sqlx::{Connection, SqliteConnection};
use std::fs;
use std::io::Write;

/// (sku, name, price in cents, unit, in stock, origin)
type Item = (
    &'static str,
    &'static str,
    i64,
    &'static str,
    bool,
    Option<&'static str>,
);

const ITEMS: &[Item] = &[
    ("A-100", "apple", 120, "kg", true, Some("Italy")),
    ("A-101", "apricot", 380, "kg", true, Some("Spain")),
    ("B-200", "banana", 99, "kg", true, Some("Ecuador")),
    ("B-201", "blackberry", 450, "box", false, None),
    ("B-202", "blueberry", 399, "box", true, Some("Chile")),
    ("C-300", "cherry", 790, "kg", true, Some("Turkey")),
    ("C-301", "clementine", 210, "kg", true, Some("Morocco")),
    ("C-302", "coconut", 159, "piece", true, Some("Sri Lanka")),
    ("D-400", "date", 650, "box", false, Some("Tunisia")),
    ("D-401", "dragon fruit", 299, "piece", true, Some("Vietnam")),
    ("F-500", "fig", 520, "kg", true, Some("Greece")),
    ("G-600", "grape", 340, "kg", true, Some("South Africa")),
    ("G-601", "grapefruit", 180, "kg", true, Some("Israel")),
    ("G-602", "guava", 430, "kg", false, None),
    ("K-700", "kiwi", 250, "kg", true, Some("New Zealand")),
    ("K-701", "kumquat", 610, "box", true, Some("China")),
    ("L-800", "lemon", 230, "kg", true, Some("Spain")),
    ("L-801", "lime", 310, "kg", true, Some("Mexico")),
    ("L-802", "lychee", 890, "kg", false, Some("Madagascar")),
    ("M-900", "mango", 199, "piece", true, Some("Peru")),
    ("M-901", "melon", 249, "piece", true, Some("Brazil")),
    ("N-910", "nectarine", 320, "kg", true, Some("Italy")),
    ("O-920", "orange", 170, "kg", true, Some("Spain")),
    ("P-930", "papaya", 350, "piece", true, Some("Brazil")),
    (
        "P-931",
        "passion fruit",
        60,
        "piece",
        true,
        Some("Colombia"),
    ),
    ("P-932", "peach", 330, "kg", true, Some("France")),
    ("P-933", "pear", 190, "kg", true, Some("Belgium")),
    ("P-934", "pineapple", 229, "piece", true, Some("Costa Rica")),
    ("P-935", "plum", 280, "kg", false, Some("Serbia")),
    ("P-936", "pomegranate", 149, "piece", true, Some("India")),
    ("Q-940", "quince", 400, "kg", false, None),
    ("R-950", "raspberry", 499, "box", true, Some("Portugal")),
    ("S-960", "strawberry", 350, "box", true, Some("Netherlands")),
    ("T-970", "tangerine", 220, "kg", true, Some("Spain")),
    ("W-980", "watermelon", 89, "kg", true, Some("Greece")),
];

fn price(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    fs::create_dir_all("data")?;

    // CSV: two columns, name -> price, as the old tool's two-column frames.
    let mut csv = fs::File::create("data/items.csv")?;
    writeln!(csv, "name,price")?;
    for (_, name, cents, ..) in ITEMS {
        writeln!(csv, "{name},{}", price(*cents))?;
    }

    // JSON object: each member a key, nested values kept.
    let mut obj = serde_json::Map::new();
    for (sku, name, cents, unit, stock, origin) in ITEMS {
        obj.insert(
            (*name).to_owned(),
            serde_json::json!({ "sku": sku, "price": price(*cents).parse::<serde_json::Number>()?, "unit": unit, "in_stock": stock, "origin": origin }),
        );
    }
    fs::write(
        "data/items.json",
        serde_json::to_string_pretty(&obj)? + "\n",
    )?;

    // NDJSON rows.
    let mut nd = fs::File::create("data/items.ndjson")?;
    for (sku, name, cents, unit, stock, origin) in ITEMS {
        let row = serde_json::json!({ "sku": sku, "name": name, "price": price(*cents).parse::<serde_json::Number>()?, "unit": unit, "in_stock": stock, "origin": origin });
        writeln!(nd, "{row}")?;
    }

    // Parquet with typed columns.
    let mut df = df!(
        "sku" => ITEMS.iter().map(|i| i.0).collect::<Vec<_>>(),
        "name" => ITEMS.iter().map(|i| i.1).collect::<Vec<_>>(),
        "price" => ITEMS.iter().map(|i| i.2 as f64 / 100.0).collect::<Vec<_>>(),
        "unit" => ITEMS.iter().map(|i| i.3).collect::<Vec<_>>(),
        "in_stock" => ITEMS.iter().map(|i| i.4).collect::<Vec<_>>(),
        "origin" => ITEMS.iter().map(|i| i.5).collect::<Vec<_>>(),
    )?;
    ParquetWriter::new(fs::File::create("data/items.parquet")?).finish(&mut df)?;

    // SQLite: `items` (name, price) and `catalog` (typed columns).
    let _ = fs::remove_file("data/items.db");
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let mut conn = SqliteConnection::connect("sqlite://data/items.db?mode=rwc").await?;
        sqlx::query("CREATE TABLE items (name TEXT PRIMARY KEY, price REAL NOT NULL)").execute(&mut conn).await?;
        sqlx::query(
            "CREATE TABLE catalog (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL, unit TEXT NOT NULL, in_stock INTEGER NOT NULL, origin TEXT)",
        )
        .execute(&mut conn)
        .await?;
        for (sku, name, cents, unit, stock, origin) in ITEMS {
            sqlx::query("INSERT INTO items VALUES (?, ?)").bind(name).bind(*cents as f64 / 100.0).execute(&mut conn).await?;
            sqlx::query("INSERT INTO catalog VALUES (?, ?, ?, ?, ?, ?)")
                .bind(sku)
                .bind(name)
                .bind(cents)
                .bind(unit)
                .bind(stock)
                .bind(origin)
                .execute(&mut conn)
                .await?;
        }
        Ok::<_, sqlx::Error>(())
    })?;
    println!(
        "wrote data/items.{{csv,json,ndjson,parquet,db}} ({} items)",
        ITEMS.len()
    );
    Ok(())
}
