//! How much request-body memory all connections together may hold.
//!
//! Each body may be 8 MiB, and 4,096 connections are served at once: without a
//! shared budget, senders (or an attacker with bandwidth) could make the
//! collector hold 32 GiB. Bytes are counted as they arrive, so a client that
//! trickles its body holds only what it sent; when the budget is spent, reading
//! waits until a request is done with its body (healthy small requests pass
//! quickly; the request timeout bounds the wait).
//!
//! ```ignore
//! let budget = BodyBudget::new(256 * 1024 * 1024);
//! let (bytes, _held) = budget.read(body).await?; // released when `_held` drops
//! ```

use std::sync::Arc;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies in memory at once, over all requests (256 MiB).
pub const BODY_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// Budget unit: one permit per KiB, so a whole body fits tokio's permit counts.
const UNIT: usize = 1024;

/// The shared budget; see the module documentation.
pub(crate) struct BodyBudget {
    permits: Arc<Semaphore>,
}

/// Why a body could not be read.
pub(crate) enum ReadFailure {
    /// Over the body limit (the limit layer's error).
    TooLarge,
    /// The sender went away, stalled or sent a malformed body.
    Broken(String),
}

impl BodyBudget {
    pub(crate) fn new(bytes: usize) -> Self {
        BodyBudget {
            permits: Arc::new(Semaphore::new(bytes.div_ceil(UNIT))),
        }
    }

    /// Reads the whole body, taking budget for each piece as it arrives. The
    /// returned permit gives the budget back when dropped.
    pub(crate) async fn read(
        &self,
        mut body: Body,
    ) -> Result<(Bytes, OwnedSemaphorePermit), ReadFailure> {
        let mut held = Arc::clone(&self.permits)
            .acquire_many_owned(0)
            .await
            .map_err(|_| ReadFailure::Broken("the collector is shutting down".into()))?;
        let mut parts: Vec<Bytes> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                let too_large =
                    std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                        e.source()
                    })
                    .any(|e| e.is::<http_body_util::LengthLimitError>());
                if too_large {
                    ReadFailure::TooLarge
                } else {
                    ReadFailure::Broken(e.to_string())
                }
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers carry nothing we read
            };
            let units = u32::try_from(data.len().div_ceil(UNIT)).unwrap_or(u32::MAX);
            let more = Arc::clone(&self.permits)
                .acquire_many_owned(units)
                .await
                .map_err(|_| ReadFailure::Broken("the collector is shutting down".into()))?;
            held.merge(more);
            parts.push(data);
        }
        let bytes = match parts.len() {
            1 => parts.pop().expect("one part"),
            _ => Bytes::from(parts.concat()),
        };
        Ok((bytes, held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn reading_holds_budget_until_released() {
        let budget = BodyBudget::new(4 * UNIT);
        let (bytes, held) = budget
            .read(Body::from(vec![b'x'; 3 * UNIT]))
            .await
            .ok()
            .unwrap();
        assert_eq!(bytes.len(), 3 * UNIT);
        assert_eq!(budget.permits.available_permits(), 1);
        // A second body larger than what is left waits...
        let second = budget.read(Body::from(vec![b'y'; 2 * UNIT]));
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut second)
                .await
                .is_err()
        );
        // ...until the first is done with its body.
        drop(held);
        let (bytes, _held) = second.await.ok().unwrap();
        assert_eq!(bytes.len(), 2 * UNIT);
    }
}
