//! The request ids in use on one socket, shared between the session and its request tasks.
//!
//! An id stays taken until its request's `done` is about to go out: the request releases it
//! just before queueing that `done`. So a client that reuses an id on seeing the `done` is never
//! refused, and one that reuses it sooner (right after a `cancel`, while the cancelled request
//! is still winding down) gets `duplicate_request_id`, instead of two requests sharing one id
//! and the old one's `done` ending the new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use whyrefused_shared::RequestId;

/// The ids taken on one socket. Cheap to clone: every clone sees the same ids.
#[derive(Debug, Clone, Default)]
pub struct RequestIds {
    inner: Arc<Mutex<Ids>>,
}

#[derive(Debug, Default)]
struct Ids {
    /// Counts claims, so a claim released late cannot free its id's next holder.
    claims: u64,
    /// Each taken id, with its claim's number and the token that cancels its request.
    taken: HashMap<RequestId, (u64, CancellationToken)>,
}

/// Why an id could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdBusy {
    /// Its request is running.
    Running,
    /// Its request was cancelled and has not yet sent its `done`.
    Cancelling,
}

/// One request's hold on its id; dropping it (the request ended, or was aborted) releases it.
#[derive(Debug)]
pub struct Claim {
    ids: RequestIds,
    id: RequestId,
    number: u64,
    /// Cancelled by the client's `cancel`.
    pub cancel: CancellationToken,
}

impl RequestIds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ids> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `id` for a new request, unless a request holds it still.
    pub fn claim(&self, id: RequestId) -> Result<Claim, IdBusy> {
        let mut ids = self.lock();
        if let Some((_, cancel)) = ids.taken.get(&id) {
            return Err(if cancel.is_cancelled() { IdBusy::Cancelling } else { IdBusy::Running });
        }
        ids.claims += 1;
        let (number, cancel) = (ids.claims, CancellationToken::new());
        ids.taken.insert(id, (number, cancel.clone()));
        Ok(Claim { ids: self.clone(), id, number, cancel })
    }

    /// Whether `id` is taken.
    pub fn holds(&self, id: RequestId) -> bool {
        self.lock().taken.contains_key(&id)
    }

    /// Tells request `id` to stop; `false` when no request holds that id. The id stays taken
    /// until the request's `done`.
    pub fn cancel(&self, id: RequestId) -> bool {
        let ids = self.lock();
        let Some((_, cancel)) = ids.taken.get(&id) else { return false };
        cancel.cancel();
        true
    }

    /// How many ids are taken.
    pub fn len(&self) -> usize {
        self.lock().taken.len()
    }

    /// Whether no id is taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Claim {
    /// The id claimed.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Frees the id for reuse: call it just before queueing the request's `done`. Harmless when
    /// repeated, or when the id was meanwhile claimed again.
    pub fn release(&self) {
        let mut ids = self.ids.lock();
        if ids.taken.get(&self.id).is_some_and(|(number, _)| *number == self.number) {
            ids.taken.remove(&self.id);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_id_stays_taken_until_released_and_a_late_release_frees_nothing_else() {
        let ids = RequestIds::default();
        let first = ids.claim(RequestId(1)).unwrap();
        assert_eq!(ids.claim(RequestId(1)).unwrap_err(), IdBusy::Running);
        assert!(ids.cancel(RequestId(1)));
        assert!(first.cancel.is_cancelled());
        assert_eq!(ids.claim(RequestId(1)).unwrap_err(), IdBusy::Cancelling);
        first.release();
        let second = ids.claim(RequestId(1)).expect("free once the done went out");
        drop(first);
        assert!(ids.holds(RequestId(1)), "the old claim's drop leaves the new holder alone");
        assert!(!ids.cancel(RequestId(2)));
        drop(second);
        assert!(ids.is_empty());
    }
}
