//! Delivery policy (seed §1.3, §4.4, §5.2): which rungs a viewer may play, how hot a video is
//! for caches, and how eagerly clients should prefetch it. Pure functions.

use serde::{Deserialize, Serialize};

use crate::db::RenditionRow;
use crate::model::CacheTier;
use crate::storage::keys;

/// Global defaults, from config unless an admin stored others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Defaults {
    /// Feed autoplay ceiling by short side (720 = 720p).
    #[schema(minimum = 1, maximum = 8192)]
    pub feed_max_short_side: u32,
    /// Ceiling for the low-conversion cohort.
    #[schema(minimum = 1, maximum = 8192)]
    pub low_conversion_max_short_side: u32,
    /// Upcoming videos a client may prefetch.
    #[schema(maximum = 10)]
    pub prefetch_cap: u32,
}

/// The short side of a rendition (`720` for 720×1280).
pub fn short_side(rendition: &RenditionRow) -> u32 {
    u32::try_from(rendition.width.min(rendition.height)).unwrap_or(0)
}

/// The ceiling for a viewer: the feed ceiling, lowered for the low-conversion cohort.
pub fn ceiling(defaults: &Defaults, low_conversion_cohort: &str, viewer_cohort: Option<&str>) -> u32 {
    if viewer_cohort == Some(low_conversion_cohort) {
        defaults.feed_max_short_side.min(defaults.low_conversion_max_short_side)
    } else {
        defaults.feed_max_short_side
    }
}

/// The renditions a viewer may play (lowest first): within the ceiling and the video's bitrate
/// cap. Never empty when the video has renditions: the lowest one always remains.
pub fn allowed(renditions: &[RenditionRow], ceiling: u32, max_bitrate_kbps: Option<i64>) -> Vec<&RenditionRow> {
    let within =
        |r: &&RenditionRow| short_side(r) <= ceiling && max_bitrate_kbps.is_none_or(|cap| r.bitrate_kbps <= cap);
    let allowed: Vec<&RenditionRow> = renditions.iter().filter(within).collect();
    if allowed.is_empty() { renditions.iter().min_by_key(|r| r.bitrate_kbps).into_iter().collect() } else { allowed }
}

/// The master file serving `allowed` out of `all`: the published `master` itself (e.g.
/// `master.v2.m3u8`), or a capped `master.v2~{short side}p.m3u8` beside it (one distinct,
/// cacheable URL per cap).
pub fn master_file(master: &str, allowed: &[&RenditionRow], all: &[RenditionRow]) -> String {
    let cap = allowed.iter().map(|r| short_side(r)).max().unwrap_or(0);
    if all.iter().all(|r| short_side(r) <= cap) { master.to_owned() } else { keys::capped_master(master, cap) }
}

/// The cache tier: an admin's hint, else by value score.
pub fn cache_tier(hint: Option<CacheTier>, score: f64, hot_score: f64, warm_score: f64) -> CacheTier {
    match hint {
        Some(tier) => tier,
        None if score >= hot_score => CacheTier::Hot,
        None if score >= warm_score => CacheTier::Warm,
        None => CacheTier::Cold,
    }
}

/// Prefetch priority: an admin's override, else the value score on a 0–100 scale.
pub fn prefetch_priority(overridden: Option<i64>, score: f64) -> i64 {
    overridden.unwrap_or_else(|| (score * 100.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(short: i64, kbps: i64) -> RenditionRow {
        RenditionRow {
            profile: format!("{short}p"),
            width: short,
            height: short * 16 / 9,
            bitrate_kbps: kbps,
            playlist_key: String::new(),
            segment_count: 1,
            codec: String::new(),
            status: "ready".into(),
        }
    }

    fn ladder() -> Vec<RenditionRow> {
        vec![rung(360, 900), rung(540, 1800), rung(720, 3200)]
    }

    const DEFAULTS: Defaults =
        Defaults { feed_max_short_side: 720, low_conversion_max_short_side: 540, prefetch_cap: 2 };

    #[test]
    fn the_low_conversion_cohort_is_capped_at_540p() {
        assert_eq!(ceiling(&DEFAULTS, "low_conversion", None), 720);
        assert_eq!(ceiling(&DEFAULTS, "low_conversion", Some("other")), 720);
        assert_eq!(ceiling(&DEFAULTS, "low_conversion", Some("low_conversion")), 540);
    }

    #[test]
    fn caps_pick_rungs_and_a_distinct_master() {
        let all = ladder();
        let full = allowed(&all, 720, None);
        assert_eq!(full.len(), 3);
        assert_eq!(master_file("master.m3u8", &full, &all), "master.m3u8");
        assert_eq!(master_file("master.v2.m3u8", &full, &all), "master.v2.m3u8");
        let capped = allowed(&all, 540, None);
        assert_eq!(capped.iter().map(|r| r.profile.as_str()).collect::<Vec<_>>(), ["360p", "540p"]);
        assert_eq!(master_file("master.m3u8", &capped, &all), "master~540p.m3u8");
        assert_eq!(master_file("master.v2.m3u8", &capped, &all), "master.v2~540p.m3u8");
        let by_bitrate = allowed(&all, 720, Some(1000));
        assert_eq!(master_file("master.m3u8", &by_bitrate, &all), "master~360p.m3u8");
        assert_eq!(allowed(&all, 100, None).len(), 1, "the lowest rung always remains");
    }

    #[test]
    fn ceilings_and_caps_apply_above_the_cellular_floor() {
        let mut all = ladder();
        all.insert(0, rung(234, 180));
        let names = |rungs: &[&RenditionRow]| rungs.iter().map(|r| r.profile.clone()).collect::<Vec<_>>();
        assert_eq!(names(&allowed(&all, 540, None)), ["234p", "360p", "540p"]);
        assert_eq!(master_file("master.m3u8", &allowed(&all, 540, None), &all), "master~540p.m3u8");
        assert_eq!(names(&allowed(&all, 720, Some(1000))), ["234p", "360p"]);
        assert_eq!(names(&allowed(&all, 720, Some(100))), ["234p"], "the floor is the last to go");
    }

    #[test]
    fn tiers_follow_hints_then_scores() {
        assert_eq!(cache_tier(Some(CacheTier::Cold), 0.9, 0.6, 0.3), CacheTier::Cold);
        assert_eq!(cache_tier(None, 0.7, 0.6, 0.3), CacheTier::Hot);
        assert_eq!(cache_tier(None, 0.4, 0.6, 0.3), CacheTier::Warm);
        assert_eq!(prefetch_priority(None, 0.456), 46);
        assert_eq!(prefetch_priority(Some(7), 0.9), 7);
    }
}
