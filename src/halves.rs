//! Running one function over the two halves of a slice on two threads, with
//! the results in order.
//!
//! A large reload parses its changed files (`config::parse_parallel`) and
//! compiles its changed experiments (`snapshot::compile`) this way: the items
//! are independent, and the caller concatenates the two results, so what comes
//! out (values and errors, in order) is exactly what one thread would give.
//! Two threads, not more: the sidecar shares its pod's CPU with the application,
//! and a reload must not take it all. The second thread is scoped and inherits
//! the calling thread's nice value (Linux), so a low-priority reload stays low.
//! Its own module because parsing (in `config`) and compiling (in `snapshot`)
//! both use it, and neither should depend on the other.

/// `(f(&items[..mid]), f(&items[mid..]))`, the second computed on a scoped
/// thread named `name` while the calling thread computes the first.
///
/// A thread that cannot be started (resource limits) is no reason to fail a
/// reload: the second half then runs here as well. A panic in `f` is a bug;
/// running the half again here gives the same panic on the calling thread, where
/// it is reported as it would be without the second thread.
pub fn run_in_two<T, R, F>(items: &[T], mid: usize, name: &str, f: F) -> (R, R)
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> R + Sync,
{
    let (first, second) = items.split_at(mid.min(items.len()));
    std::thread::scope(|s| {
        let f = &f;
        let other = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, move || f(second));
        let out = f(first);
        match other.map(|h| h.join()) {
            Ok(Ok(rest)) => (out, rest),
            Ok(Err(_)) | Err(_) => (out, f(second)),
        }
    })
}

/// The index that splits `weights` (one per item) into two runs of about half
/// the total weight each, at least one item in each when there are two or more.
pub fn split_point(weights: impl ExactSizeIterator<Item = usize> + Clone) -> usize {
    let n = weights.len();
    if n < 2 {
        return 0;
    }
    let total: usize = weights.clone().sum();
    let mut acc = 0;
    for (i, w) in weights.enumerate() {
        if acc + w / 2 >= total / 2 {
            return i.clamp(1, n - 1);
        }
        acc += w;
    }
    n - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_give_the_halves_in_order() {
        let items: Vec<u32> = (0..10).collect();
        let (a, b) = run_in_two(&items, 4, "test-halves", |h| h.to_vec());
        assert_eq!(a, vec![0, 1, 2, 3]);
        assert_eq!(b, vec![4, 5, 6, 7, 8, 9]);
        let (a, b) = run_in_two(&items, 99, "test-halves", |h| h.len());
        assert_eq!((a, b), (10, 0));
    }

    #[test]
    fn split_point_halves_by_weight_and_keeps_an_item_on_each_side() {
        let at = |v: &[usize]| split_point(v.iter().copied());
        assert_eq!(at(&[10, 10, 10, 10]), 2);
        assert_eq!(at(&[1000, 1, 1]), 1);
        assert_eq!(at(&[1, 1, 1000]), 2);
        assert_eq!(at(&[5, 5]), 1);
        assert_eq!(at(&[0, 0, 0, 0]), 1);
        assert_eq!(at(&[1, 0, 0, 1]), 1);
        assert_eq!(at(&[7]), 0);
        assert_eq!(at(&[]), 0);
    }
}
