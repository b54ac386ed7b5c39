//! The data directory's tiers (design §4): *hot* segments (one per flush window), *warm* hour
//! files (an hour's segments compacted into one, `hour-<sha16>.parquet` in the hour's own
//! directory) and day files (a day's hour files compacted into one,
//! `day-<sha16>.parquet` under `hour=__HIVE_DEFAULT_PARTITION__`, Hive's NULL partition value,
//! so every file keeps the same partition depth).
//!
//! This module decides, from the manifest alone, what is due for compaction: an hour once it
//! has closed plus a grace (one rotation window), a day once it has closed plus the grace and
//! its hours are compacted. It does no I/O; [`crate::compactor`] runs the jobs.

use std::collections::BTreeMap;

use karmor_contract::bundle::{
    ManifestFile, DAY_FILE_PREFIX, DAY_PARTITION_HOUR, HOUR_FILE_PREFIX,
};

const HOUR_NS: i64 = 3_600_000_000_000;
const DAY_NS: i64 = 24 * HOUR_NS;

/// The tier of a data directory file, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// A segment written from a flush window.
    Hot,
    /// An hour's segments compacted into one file.
    Hour,
    /// A day's hour files compacted into one file.
    Day,
}

impl Tier {
    /// The tier of the file at `rel` (a bundle-relative path).
    pub fn of(rel: &str) -> Tier {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name.starts_with(HOUR_FILE_PREFIX) {
            Tier::Hour
        } else if name.starts_with(DAY_FILE_PREFIX) {
            Tier::Day
        } else {
            Tier::Hot
        }
    }

    /// Lower-case name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Hour => "hour",
            Tier::Day => "day",
        }
    }
}

/// Where a file sits: its node directory, date and hour (`None` for a day file's partition).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// Start of the date (ns since epoch, UTC).
    pub day_start: i64,
    /// The hour of the day, or `None` for `hour=__HIVE_DEFAULT_PARTITION__`.
    pub hour: Option<u32>,
    /// `node=<node>`.
    pub node_dir: String,
    /// `date=<YYYY-MM-DD>` as written.
    pub date_dir: String,
}

impl Place {
    /// Parses `node=N/date=YYYY-MM-DD/hour=HH/<file>`; `None` for any other layout.
    pub fn parse(rel: &str) -> Option<Place> {
        let mut parts = rel.split('/');
        let (node_dir, date_dir, hour_dir) = (parts.next()?, parts.next()?, parts.next()?);
        let _file = parts.next()?;
        if parts.next().is_some() || !node_dir.starts_with("node=") {
            return None;
        }
        let day_start = parse_date(date_dir.strip_prefix("date=")?)?;
        let hour = match hour_dir.strip_prefix("hour=")? {
            DAY_PARTITION_HOUR => None,
            h => Some(h.parse::<u32>().ok().filter(|h| *h < 24)?),
        };
        Some(Place {
            day_start,
            hour,
            node_dir: node_dir.to_string(),
            date_dir: date_dir.to_string(),
        })
    }

    /// `node=N/date=D/hour=HH` (or the day partition's directory).
    pub fn dir(&self) -> String {
        match self.hour {
            Some(h) => format!("{}/{}/hour={h:02}", self.node_dir, self.date_dir),
            None => format!(
                "{}/{}/hour={DAY_PARTITION_HOUR}",
                self.node_dir, self.date_dir
            ),
        }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, times a day in ns.
fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * DAY_NS)
}

/// A compaction to run: its inputs (manifest entries, oldest first) and where the output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// [`Tier::Hour`] or [`Tier::Day`]: the tier of the output.
    pub tier: Tier,
    /// The partition directory of the output, relative to the data directory.
    pub dir: String,
    /// Start of the hour or day compacted (ns).
    pub start_ns: i64,
    /// The files whose rows the output will hold.
    pub inputs: Vec<ManifestFile>,
}

impl Job {
    /// The output's path, relative to the data directory, for its content's sha256.
    pub fn output_rel(&self, sha256: &str) -> String {
        let prefix = match self.tier {
            Tier::Day => DAY_FILE_PREFIX,
            _ => HOUR_FILE_PREFIX,
        };
        format!(
            "{}/{prefix}{}.parquet",
            self.dir,
            &sha256[..16.min(sha256.len())]
        )
    }

    /// Bytes of the inputs.
    pub fn input_bytes(&self) -> u64 {
        self.inputs.iter().map(|f| f.bytes).sum()
    }

    /// The output's `replaces`: every input's sha256 and, transitively, what they replaced.
    pub fn replaces(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .inputs
            .iter()
            .flat_map(|f| std::iter::once(f.sha256.clone()).chain(f.replaces.iter().cloned()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// When hours and days are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Time after an hour's (or day's) end before it is compacted: rows of a closed hour still
    /// arrive for about one rotation window.
    pub grace_ns: i64,
    /// Compact a day's hour files into a day file too (`--compact-days`).
    pub days: bool,
}

/// The compactions due at `now_ns`, oldest first. `skip` leaves files out (files already being
/// compacted, inputs found corrupt): a skipped hot segment does not keep its hour "open", and a
/// day whose hours hold only skipped segments is due all the same.
///
/// - an hour is due once `now ≥ hour end + grace` and it holds a hot segment; its inputs are
///   its hot segments and its hour file (rows that arrived after an earlier compaction);
/// - a day is due once `now ≥ day end + grace`, none of its hours holds a hot segment (they
///   are compacted first) and it holds an hour file; its inputs are its hour files and its day
///   file.
pub fn plan(
    files: &[ManifestFile],
    skip: impl Fn(&ManifestFile) -> bool,
    now_ns: i64,
    policy: CompactionPolicy,
) -> Vec<Job> {
    // Per (node, date): per hour (None: the day partition) the files, and whether any file of
    // the date is skipped while hot (not a reason to wait) or any is unparseable (ignored).
    #[derive(Default)]
    struct Date<'a> {
        hours: BTreeMap<Option<u32>, Vec<&'a ManifestFile>>,
    }
    let mut dates: BTreeMap<(i64, String, String), Date> = BTreeMap::new();
    for f in files {
        if skip(f) {
            // A file being compacted or known corrupt: its hour or day waits for nothing.
            if Tier::of(&f.path) == Tier::Hot {
                continue;
            }
            // A skipped hour or day file is being compacted: its date is busy.
            if let Some(p) = Place::parse(&f.path) {
                dates
                    .entry((p.day_start, p.node_dir, p.date_dir))
                    .or_default()
                    .hours
                    .entry(Some(u32::MAX))
                    .or_default();
            }
            continue;
        }
        let Some(p) = Place::parse(&f.path) else {
            continue;
        };
        dates
            .entry((p.day_start, p.node_dir.clone(), p.date_dir.clone()))
            .or_default()
            .hours
            .entry(p.hour)
            .or_default()
            .push(f);
    }
    let mut jobs = Vec::new();
    for ((day_start, node_dir, date_dir), date) in dates {
        let busy = date.hours.contains_key(&Some(u32::MAX));
        let mut hot_left = false;
        for (hour, files) in &date.hours {
            let Some(h) = *hour else { continue };
            if h == u32::MAX {
                continue;
            }
            let hot = files.iter().any(|f| Tier::of(&f.path) == Tier::Hot);
            hot_left |= hot;
            let start = day_start + h as i64 * HOUR_NS;
            if hot && now_ns >= start + HOUR_NS + policy.grace_ns {
                let place = Place {
                    day_start,
                    hour: Some(h),
                    node_dir: node_dir.clone(),
                    date_dir: date_dir.clone(),
                };
                jobs.push(job(Tier::Hour, place.dir(), start, files));
            }
        }
        let hour_files: Vec<&ManifestFile> = date
            .hours
            .iter()
            .filter(|(h, _)| h.is_some_and(|h| h != u32::MAX))
            .flat_map(|(_, fs)| fs.iter().copied())
            .filter(|f| Tier::of(&f.path) == Tier::Hour)
            .collect();
        if policy.days
            && !busy
            && !hot_left
            && !hour_files.is_empty()
            && now_ns >= day_start + DAY_NS + policy.grace_ns
        {
            let mut inputs = hour_files;
            if let Some(days) = date.hours.get(&None) {
                inputs.extend(days.iter().copied());
            }
            let place = Place {
                day_start,
                hour: None,
                node_dir: node_dir.clone(),
                date_dir: date_dir.clone(),
            };
            jobs.push(job(Tier::Day, place.dir(), day_start, &inputs));
        }
    }
    jobs.sort_by_key(|j| (j.start_ns, j.tier, j.dir.clone()));
    jobs
}

fn job(tier: Tier, dir: String, start_ns: i64, files: &[&ManifestFile]) -> Job {
    let mut inputs: Vec<ManifestFile> = files.iter().map(|f| (*f).clone()).collect();
    inputs.sort_by(|a, b| (&a.first, &a.path).cmp(&(&b.first, &b.path)));
    Job {
        tier,
        dir,
        start_ns,
        inputs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use karmor_contract::bundle::partition_dir;

    const T0: i64 = 1_763_625_600_000_000_000; // 2025-11-20T08:00:00Z
    const MIN: i64 = 60_000_000_000;

    fn file(rel: String) -> ManifestFile {
        ManifestFile {
            sha256: format!(
                "{:064x}",
                rel.len() * 7919 + rel.bytes().map(|b| b as usize).sum::<usize>()
            ),
            path: rel,
            node: "n".into(),
            bytes: 10,
            rows: 1,
            first: String::new(),
            last: String::new(),
            events_seen: 1,
            events_dropped: 0,
            replaces: Vec::new(),
        }
    }

    fn seg(ts: i64, i: usize) -> ManifestFile {
        file(format!("{}/seg-{i:016x}.parquet", partition_dir("n", ts)))
    }

    const POLICY: CompactionPolicy = CompactionPolicy {
        grace_ns: MIN,
        days: true,
    };

    #[test]
    fn places_parse_as_the_contract_writes_them() {
        let p = Place::parse(&seg(T0 + 30 * MIN, 1).path).unwrap();
        assert_eq!(p.day_start, T0 - 8 * 60 * MIN);
        assert_eq!(p.hour, Some(8));
        assert_eq!(p.dir(), "node=n/date=2025-11-20/hour=08");
        let d =
            Place::parse("node=n/date=2025-11-20/hour=__HIVE_DEFAULT_PARTITION__/day-x.parquet")
                .unwrap();
        assert_eq!(d.hour, None);
        assert_eq!(
            d.dir(),
            "node=n/date=2025-11-20/hour=__HIVE_DEFAULT_PARTITION__"
        );
        assert!(Place::parse("stray.parquet").is_none());
        assert!(Place::parse("node=n/date=2025-13-01/hour=01/x.parquet").is_none());
        // Leap years and the epoch.
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-03-01"), Some(19_783 * DAY_NS));
    }

    #[test]
    fn an_hour_is_due_after_its_end_and_the_grace_only() {
        let files = vec![seg(T0, 1), seg(T0 + 59 * MIN, 2)];
        let at = |now| plan(&files, |_| false, now, POLICY);
        assert!(at(T0 + 60 * MIN).is_empty(), "closed, but within the grace");
        assert!(at(T0 + 60 * MIN + MIN - 1).is_empty());
        let jobs = at(T0 + 61 * MIN);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].tier, Tier::Hour);
        assert_eq!(jobs[0].inputs.len(), 2);
        assert_eq!(jobs[0].dir, "node=n/date=2025-11-20/hour=08");
        assert!(jobs[0]
            .output_rel(&"ab".repeat(32))
            .ends_with("hour=08/hour-abababababababab.parquet"));
    }

    #[test]
    fn a_day_waits_for_its_hours_and_lists_them_transitively() {
        let mut hour = file("node=n/date=2025-11-20/hour=08/hour-aaaa.parquet".into());
        hour.replaces = vec!["s1".into(), "s2".into()];
        let late = seg(T0 + 3600 * 1_000_000_000, 9);
        let files = vec![hour.clone(), late.clone()];
        let next_day = T0 + 16 * 60 * MIN + 2 * MIN;
        let jobs = plan(&files, |_| false, next_day, POLICY);
        assert_eq!(jobs.len(), 1, "the 09 hour first: {jobs:?}");
        assert_eq!(jobs[0].tier, Tier::Hour);
        // Once the late hour is compacted (or its segment is known corrupt), the day is due.
        let jobs = plan(&files, |f| f.path == late.path, next_day, POLICY);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].tier, Tier::Day);
        assert_eq!(
            jobs[0].dir,
            "node=n/date=2025-11-20/hour=__HIVE_DEFAULT_PARTITION__"
        );
        let mut want = vec!["s1".to_string(), "s2".into(), hour.sha256.clone()];
        want.sort();
        assert_eq!(jobs[0].replaces(), want);
        let off = CompactionPolicy {
            days: false,
            ..POLICY
        };
        assert!(plan(&files, |f| f.path == late.path, next_day, off).is_empty());
        // Not before the day's end plus the grace.
        let before = T0 + 16 * 60 * MIN;
        assert!(plan(&files, |f| f.path == late.path, before, POLICY).is_empty());
        // Not while one of its hour files is being compacted (its late hour is due, though).
        let jobs = plan(&files, |f| f.path == hour.path, next_day, POLICY);
        assert!(jobs.iter().all(|j| j.tier == Tier::Hour), "{jobs:?}");
        let both = |f: &ManifestFile| f.path == hour.path || f.path == late.path;
        assert!(plan(&files, both, next_day, POLICY).is_empty());
    }
}
