//! Shutdown, explicitly: a signal starts it, a [`Shutdown`] handle tells every
//! long-lived task (the gRPC and HTTP servers, Watch streams) to finish.
//!
//! The sequence lives in [`crate::server::Running::shutdown`]: health goes
//! NOT_SERVING, the listeners close, streams end, in-flight calls finish within
//! the grace period, and the process exits 0.

use tokio::sync::watch;

/// Fires the shutdown. Dropping it fires it too, so a crashed owner never leaves
/// streams waiting forever.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// Waits for shutdown. Cheap to clone; one per task.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A connected trigger and handle.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    /// Tells every [`Shutdown`] handle to finish.
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// Completes once shutdown has been fired (or the trigger dropped).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone: shut down as well.
        let _ = self.rx.wait_for(|fired| *fired).await;
    }

    /// Whether shutdown has been fired.
    pub fn is_fired(&self) -> bool {
        *self.rx.borrow()
    }
}

// The signal handlers that fire the trigger live in `crate::signals`.

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_handle_sees_the_trigger() {
        let (t, s) = channel();
        let mut a = s.clone();
        assert!(!s.is_fired());
        let waiter = tokio::spawn(async move { a.wait().await });
        t.fire();
        waiter.await.unwrap();
        assert!(s.is_fired());
        let (t, mut s) = channel();
        drop(t);
        s.wait().await;
    }
}
