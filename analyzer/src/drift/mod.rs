//! Drift (design §7): has learning converged (`kubectl karmor coverage`, and the verdict
//! `recommend` prints), and what changed since a baseline (`kubectl karmor diff`).
//!
//! - [`items`]: the distinct behaviour items of every workload, one `GROUP BY` over `events`;
//! - [`generalised`]: items folded as drafts fold paths, and coverage of raw items;
//! - [`stability`]: saturation curves, start-up, drops and the stable/learning/partial verdict;
//! - [`diff`]: new, gone and volume changes against baseline data or a policy;
//! - [`delta`]: the rules to add to a draft for what is new (`--as-policy-delta`).

pub mod delta;
pub mod diff;
mod digest;
pub mod generalised;
pub mod items;
pub mod stability;

pub use diff::{diff, policy_baseline, Change, ChangeKind, DiffOptions, DiffReport};
pub use items::{Category, Group, Items, RawItem};
pub use stability::{stability, Stability, StabilityOptions, Verdict};

/// Makes the item and start-up digests of every file a store file lists that has none yet
/// (merging does this, so that the first `coverage` or `diff` need not); a store in memory
/// keeps none.
pub fn keep_digests(store: &crate::Store) -> crate::error::Result<()> {
    if store.is_persistent() {
        digest::ensure(store, &items::item_sql())?;
    }
    Ok(())
}

/// `f` over `items` on as many threads as there are cores (at most 8), results in order.
/// Workloads are independent, so folding and comparing them runs in parallel.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    in_chunks(items.chunks(chunk_len(items.len())), |part| {
        part.iter().map(f).collect()
    })
}

/// [`par_map`] over owned items (each moved into `f`), results in order.
pub(crate) fn par_map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let chunk = chunk_len(items.len());
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut rest = items.into_iter();
    loop {
        let part: Vec<T> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        chunks.push(part);
    }
    let f = &f;
    in_chunks(chunks.into_iter(), |part| part.into_iter().map(f).collect())
}

/// Items per thread for `n` items: one chunk per core, at most 8.
fn chunk_len(n: usize) -> usize {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    n.div_ceil(threads).max(1)
}

/// `work` on each chunk in a thread of its own; the chunks' results concatenated in order (a
/// panic in one is raised again here).
fn in_chunks<C: Send, R: Send>(
    chunks: impl Iterator<Item = C>,
    work: impl Fn(C) -> Vec<R> + Sync,
) -> Vec<R> {
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks.map(|part| scope.spawn(move || work(part))).collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}
