//! Cradles on PostgreSQL: route assignments, route load history, recorder watermarks (stored as
//! given: the never-lower rule is the caller's, src/store/rules.rs) and skipped meters.

use super::rows::{column, from_json, json};
use super::{PgTxn, params};
use crate::model::{RouteLoad, RouteSkip};
use crate::store::{CradleQueries, CradleWrites, Result, StoreError};

fn seq_of(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        what: "recorder sequence",
        detail: format!("{v} is not a u32"),
    })
}

impl CradleQueries for PgTxn<'_> {
    fn route_assignments(&self) -> Result<Vec<(String, String)>> {
        self.rows(
            "reading route assignments",
            "SELECT route, serial FROM route_assignments ORDER BY route COLLATE \"C\"",
            params![],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(column)?, r.try_get(1).map_err(column)?)))
        .collect()
    }

    fn route_loads(&self) -> Result<Vec<RouteLoad>> {
        self.rows(
            "reading route loads",
            "SELECT route, serial, loaded_at, meters, cleared_at FROM route_loads \
             ORDER BY route COLLATE \"C\", loaded_at",
            params![],
        )?
        .iter()
        .map(|r| {
            let meters: i64 = r.try_get(3).map_err(column)?;
            Ok(RouteLoad {
                route: r.try_get(0).map_err(column)?,
                serial: r.try_get(1).map_err(column)?,
                loaded_at: r.try_get(2).map_err(column)?,
                meters: u32::try_from(meters).map_err(|_| StoreError::Corrupt {
                    what: "route load meters",
                    detail: format!("{meters} is not a u32"),
                })?,
                cleared_at: r.try_get(4).map_err(column)?,
            })
        })
        .collect()
    }

    fn cradle_watermark(&self, serial: &str) -> Result<Option<u32>> {
        self.row(
            "reading a recorder watermark",
            "SELECT seq FROM cradle_watermarks WHERE serial = $1",
            params![serial.to_owned()],
        )?
        .map(|r| seq_of(r.try_get(0).map_err(column)?))
        .transpose()
    }

    fn route_skips(&self, route: &str) -> Result<Vec<RouteSkip>> {
        self.rows(
            "reading route skips",
            "SELECT route, meter_id, at, code, trouble_codes, serial, seq, received_at FROM route_skips \
             WHERE route = $1 ORDER BY meter_id COLLATE \"C\", serial COLLATE \"C\", seq",
            params![route.to_owned()],
        )?
        .iter()
        .map(|r| {
            Ok(RouteSkip {
                route: r.try_get(0).map_err(column)?,
                meter_id: r.try_get(1).map_err(column)?,
                at: r.try_get(2).map_err(column)?,
                code: r.try_get(3).map_err(column)?,
                trouble_codes: from_json("route skip trouble codes", r.try_get(4).map_err(column)?)?,
                serial: r.try_get(5).map_err(column)?,
                seq: seq_of(r.try_get(6).map_err(column)?)?,
                received_at: r.try_get(7).map_err(column)?,
            })
        })
        .collect()
    }
}

impl CradleWrites for PgTxn<'_> {
    fn assign_route(&mut self, route: &str, serial: Option<&str>) -> Result<()> {
        match serial {
            Some(s) => self.exec(
                "assigning a route",
                "INSERT INTO route_assignments (route, serial) VALUES ($1, $2) \
                 ON CONFLICT (route) DO UPDATE SET serial = EXCLUDED.serial",
                params![route.to_owned(), s.to_owned()],
            )?,
            None => self.exec(
                "unassigning a route",
                "DELETE FROM route_assignments WHERE route = $1",
                params![route.to_owned()],
            )?,
        };
        Ok(())
    }

    fn put_route_load(&mut self, load: &RouteLoad) -> Result<()> {
        self.exec(
            "storing a route load",
            "INSERT INTO route_loads (route, loaded_at, serial, meters, cleared_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (route, loaded_at) DO UPDATE SET serial = EXCLUDED.serial, meters = EXCLUDED.meters, \
               cleared_at = EXCLUDED.cleared_at",
            params![
                load.route.clone(),
                load.loaded_at,
                load.serial.clone(),
                i64::from(load.meters),
                load.cleared_at
            ],
        )?;
        Ok(())
    }

    fn remove_route_load(&mut self, load: &RouteLoad) -> Result<()> {
        self.exec(
            "removing a route load",
            "DELETE FROM route_loads WHERE route = $1 AND loaded_at = $2",
            params![load.route.clone(), load.loaded_at],
        )?;
        Ok(())
    }

    fn put_cradle_watermark(&mut self, serial: &str, seq: u32) -> Result<()> {
        self.exec(
            "storing a recorder watermark",
            "INSERT INTO cradle_watermarks (serial, seq) VALUES ($1, $2) \
             ON CONFLICT (serial) DO UPDATE SET seq = EXCLUDED.seq",
            params![serial.to_owned(), i64::from(seq)],
        )?;
        Ok(())
    }

    fn put_route_skip(&mut self, skip: &RouteSkip) -> Result<()> {
        // The same (route, meter, serial, seq) again replaces it, as the embedded store's does.
        self.exec(
            "storing a route skip",
            "INSERT INTO route_skips (route, meter_id, serial, seq, at, code, trouble_codes, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (route, meter_id, serial, seq) DO UPDATE SET at = EXCLUDED.at, code = EXCLUDED.code, \
               trouble_codes = EXCLUDED.trouble_codes, received_at = EXCLUDED.received_at",
            params![
                skip.route.clone(),
                skip.meter_id.clone(),
                skip.serial.clone(),
                i64::from(skip.seq),
                skip.at,
                skip.code.clone(),
                json(&skip.trouble_codes)?,
                skip.received_at
            ],
        )?;
        Ok(())
    }
}
