//! Keeping the rollup tables exact when events go away, written once over
//! what each database's transaction offers ([`RollupTx`]).
//!
//! Sums (`daily_events`, `daily_properties`) are simply taken back (a removal
//! [`Delta`]); rows reaching zero events are deleted. What was chosen by "the
//! newest event" (a day's version, an install's environment) cannot be taken
//! back, so each touched `daily_installs` row is recomputed from the events of
//! that id and day that remain, and each touched install from its remaining
//! days and the events of its last one (its newest event is there).

use crate::error::Error;
use crate::ingest::Event;
use crate::rollup::{DailyInstall, Delta, Install};

/// Events read per chunk when backfilling or deleting by retention.
pub(crate) const CHUNK: usize = 5_000;

/// What the recomputation needs from a transaction of one database.
pub(crate) trait RollupTx {
    /// Adds `delta` to the rollups. Inserting: upserts into all four tables.
    /// Removing: takes it from `daily_events` and `daily_properties` and
    /// deletes their rows left without events; `daily_installs` and `installs`
    /// are left to [`recompute`] / [`forget`].
    fn apply(&mut self, delta: &Delta) -> Result<(), Error>;
    /// The stored events of `distinct_id` on `day` whose product (or
    /// `unknown`) is `product`, in arrival order, with their receive times.
    fn events_of(
        &mut self,
        distinct_id: &str,
        day: &str,
        product: &str,
    ) -> Result<Vec<(Event, String)>, Error>;
    /// The first and last day of the install's `daily_installs` rows.
    fn install_days(
        &mut self,
        product: &str,
        distinct_id: &str,
    ) -> Result<Option<(String, String)>, Error>;
    /// Writes (replacing) or, with `None`, deletes one `daily_installs` row.
    fn put_daily_install(
        &mut self,
        key: &DailyInstall,
        row: Option<&DailyInstall>,
    ) -> Result<(), Error>;
    /// Writes (replacing) or, with `None`, deletes one `installs` row.
    fn put_install(&mut self, key: &Install, row: Option<&Install>) -> Result<(), Error>;
}

/// After the events of `removed` were deleted and it was applied: recomputes
/// every `daily_installs` row and install it touched from what remains.
pub(crate) fn recompute(tx: &mut impl RollupTx, removed: &Delta) -> Result<(), Error> {
    for key in removed.daily_installs() {
        let now = newest_of(tx, &key.distinct_id, &key.day, &key.product)?;
        tx.put_daily_install(
            key,
            now.daily_install(&key.day, &key.product, &key.distinct_id),
        )?;
    }
    for key in removed.installs() {
        match tx.install_days(&key.product, &key.distinct_id)? {
            None => tx.put_install(key, None)?,
            Some((first_day, last_day)) => {
                let now = newest_of(tx, &key.distinct_id, &last_day, &key.product)?;
                // The last day has events (it has a daily_installs row).
                if let Some(install) = now.install(&key.product, &key.distinct_id) {
                    let mut install = install.clone();
                    install.first_day = first_day;
                    install.last_day = last_day;
                    tx.put_install(key, Some(&install))?;
                }
            }
        }
    }
    Ok(())
}

/// Deletes every `daily_installs` and `installs` row `removed` touched (all
/// of an install's events are gone).
pub(crate) fn forget(tx: &mut impl RollupTx, removed: &Delta) -> Result<(), Error> {
    for key in removed.daily_installs() {
        tx.put_daily_install(key, None)?;
    }
    for key in removed.installs() {
        tx.put_install(key, None)?;
    }
    Ok(())
}

fn newest_of(
    tx: &mut impl RollupTx,
    distinct_id: &str,
    day: &str,
    product: &str,
) -> Result<Delta, Error> {
    let mut delta = Delta::inserting();
    for (e, received_at) in tx.events_of(distinct_id, day, product)? {
        delta.add(&e, &received_at);
    }
    Ok(delta)
}
