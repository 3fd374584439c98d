//! `ticketlab sales`: every sale in a database, with the purchases each run
//! recorded, so an oversell that no single run could see is plain to a
//! whole class.

use std::io::Write;

use serde::Serialize;

use crate::exit::Exit;
use crate::report::{Ending, Tally, Verdict};
use crate::store::database::{self, Engine, SaleListing};

/// What `ticketlab sales` was asked.
#[derive(Debug, Clone)]
pub(crate) struct SalesConfig {
    /// The database.
    pub engine: Engine,
    /// Only this sale.
    pub sale: Option<String>,
    /// One JSON object instead of the table.
    pub json: bool,
}

/// One sale as the JSON shows it.
#[derive(Debug, Serialize)]
struct SaleJson<'a> {
    name: &'a str,
    tickets: u64,
    remaining: i64,
    sold: u64,
    oversold: u64,
    lost_updates: i64,
    vanished: i64,
    verdict: Verdict,
    runs: Vec<RunJson<'a>>,
}

#[derive(Debug, Serialize)]
struct RunJson<'a> {
    run: &'a str,
    purchases: u64,
    buyers: u64,
}

/// Lists the sales. The connection is made in a helper process, as every
/// connection of this program is.
pub(crate) fn run(cfg: &SalesConfig) -> anyhow::Result<Exit> {
    if let Engine::Sqlite(path) = &cfg.engine {
        // A SQLite connection would create a missing file: refuse first.
        if !path.is_file() {
            eprintln!(
                "ticketlab: error: --db {}: no such database file",
                path.display()
            );
            return Ok(Exit::Failure);
        }
    }
    let (engine, only) = (cfg.engine.clone(), cfg.sale.clone());
    let sales = match database::in_helper(|| database::list(&engine, only.as_deref())) {
        Ok(sales) => sales,
        Err(e) => {
            eprintln!("ticketlab: error: {e}");
            return Ok(Exit::Failure);
        }
    };
    let mut out = std::io::stdout().lock();
    if cfg.json {
        #[derive(Serialize)]
        struct Sales<'a> {
            sales: Vec<SaleJson<'a>>,
        }
        let sales = Sales {
            sales: sales.iter().map(to_json).collect(),
        };
        crate::json::write_document(&mut out, &sales)?;
        return Ok(Exit::Success);
    }
    if sales.is_empty() {
        writeln!(out, "no sales in {}", cfg.engine.describe())?;
        return Ok(Exit::Success);
    }
    for sale in &sales {
        let s = to_json(sale);
        let verdict = match s.verdict {
            Verdict::Oversold => format!("OVERSOLD by {}", s.oversold),
            Verdict::CountWrong => "COUNT WRONG".to_string(),
            v => v.to_string(),
        };
        writeln!(
            out,
            "sale {}: {} tickets, {} left, {} sold   {verdict}",
            s.name, s.tickets, s.remaining, s.sold
        )?;
        if let Some(lost) = Some(s.lost_updates).filter(|&n| n > 0) {
            writeln!(
                out,
                "  lost updates  {lost} (purchases recorded that the count forgot)"
            )?;
        }
        for run in &s.runs {
            writeln!(
                out,
                "  run {}  {} by {}",
                run.run,
                crate::report::plural(run.purchases, "purchase"),
                crate::report::plural(run.buyers, "buyer")
            )?;
        }
    }
    Ok(Exit::Success)
}

fn to_json(sale: &SaleListing) -> SaleJson<'_> {
    let f = sale.figures;
    let tally = Tally::new(f.tickets, f.purchases, Some(f.count));
    SaleJson {
        name: &sale.name,
        tickets: f.tickets,
        remaining: f.count,
        sold: tally.sold,
        oversold: tally.oversold,
        // The count is known, so both are too.
        lost_updates: tally.lost_updates.unwrap_or(0),
        vanished: tally.vanished.unwrap_or(0),
        // As the sale stands now: runs may still be buying.
        verdict: Verdict::judge(&tally, &Ending::Completed, 0, 0),
        runs: sale
            .runs
            .iter()
            .map(|(run, purchases, buyers)| RunJson {
                run,
                purchases: *purchases,
                buyers: *buyers,
            })
            .collect(),
    }
}
