//! Capped multivariant playlists: the published master with the variants above a viewer's
//! ceiling removed. Served at `{master stem}~{N}p.m3u8` beside the full master (see
//! `storage::keys::capped_master`), so each cap has its own cacheable URL and the variant URIs
//! (relative) resolve the same.

/// `master` without the variants whose short side exceeds `cap`. Everything else (header, audio
/// groups) is kept as published. Only the caps the policy hands out exist: `cap` must be the
/// short side of one of the variants and below the largest one (otherwise the full master is
/// the URL), so `None` for any other cap; the set of capped URLs per master stays bounded.
pub fn cap_master(master: &str, cap: u32) -> Option<String> {
    let sides: Vec<u32> = master.lines().filter_map(variant_short_side).collect();
    if !sides.contains(&cap) || sides.iter().all(|side| *side <= cap) {
        return None;
    }
    let mut out = String::with_capacity(master.len());
    let mut kept = 0;
    let mut lines = master.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("#EXT-X-STREAM-INF:") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let uri = lines.next().unwrap_or_default();
        if variant_short_side(line).is_some_and(|side| side <= cap) {
            out.push_str(line);
            out.push('\n');
            out.push_str(uri);
            out.push('\n');
            kept += 1;
        }
    }
    (kept > 0).then_some(out)
}

fn variant_short_side(stream_inf: &str) -> Option<u32> {
    let attributes = stream_inf.strip_prefix("#EXT-X-STREAM-INF:")?;
    let resolution = attributes.split(',').find_map(|attr| attr.trim().strip_prefix("RESOLUTION="))?;
    let (w, h) = resolution.split_once('x')?;
    Some(w.parse::<u32>().ok()?.min(h.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=360x640,FRAME-RATE=30.000,AUDIO=\"aac\"\n360p/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=1900000,AVERAGE-BANDWIDTH=1700000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=540x960,FRAME-RATE=30.000,AUDIO=\"aac\"\n540p/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=3300000,AVERAGE-BANDWIDTH=3000000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=720x1280,FRAME-RATE=30.000,AUDIO=\"aac\"\n720p/index.m3u8\n";

    #[test]
    fn drops_only_the_variants_above_the_cap() {
        let capped = cap_master(MASTER, 540).expect("two variants fit");
        assert!(capped.contains("360p/index.m3u8") && capped.contains("540p/index.m3u8"));
        assert!(!capped.contains("720p") && !capped.contains("720x1280"));
        assert!(capped.contains("#EXT-X-MEDIA:TYPE=AUDIO") && capped.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
        assert_eq!(cap_master(MASTER, 100), None);
    }

    #[test]
    fn only_the_caps_the_policy_hands_out_exist() {
        assert!(cap_master(MASTER, 360).is_some());
        for cap in [720, 1080, 539, 541, 400, 1] {
            assert_eq!(cap_master(MASTER, cap), None, "cap {cap}");
        }
    }

    #[test]
    fn caps_keep_the_cellular_floor_first() {
        let floor = "#EXT-X-STREAM-INF:BANDWIDTH=180000,AVERAGE-BANDWIDTH=150000,CODECS=\"avc1.64000d,mp4a.40.2\",RESOLUTION=234x416,FRAME-RATE=30.000\n234p/index.m3u8\n";
        let (header, variants) = MASTER.split_at(MASTER.find("#EXT-X-STREAM-INF").unwrap_or(0));
        let with_floor = format!("{header}{floor}{variants}");
        for cap in [360, 540] {
            let capped = cap_master(&with_floor, cap).unwrap_or_default();
            let first = capped.lines().find(|l| l.starts_with("#EXT-X-STREAM-INF:")).unwrap_or_default();
            assert!(first.contains("RESOLUTION=234x416"), "cap {cap}: {capped}");
            assert!(!capped.contains("720x1280"));
        }
        assert!(cap_master(&with_floor, 234).is_some_and(|m| m.contains("234p/index.m3u8") && !m.contains("360p")));
        assert_eq!(cap_master(&with_floor, 300), None);
    }
}
