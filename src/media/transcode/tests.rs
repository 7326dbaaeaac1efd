use std::collections::BTreeSet;

use tempfile::TempDir;
use tokio::sync::mpsc;

use super::super::testutil::{BUDGET, clip, ffprobe_json, hlg_clip, rotated_clip, tools, video_stream};
use super::super::{MediaLimits, master_playlist, plan_ladder, poster, probe};
use super::*;

/// Short segments so that 2 s clips have several.
fn one_second_segments() -> LadderConfig {
    LadderConfig { segment_seconds: 1.0, ..LadderConfig::default() }
}

struct Encoded {
    probed: ProbedMedia,
    out: LadderOutput,
    reported: Vec<PathBuf>,
    dir: TempDir,
}

async fn encode(input: &Path, cfg: &LadderConfig) -> Result<Encoded, MediaError> {
    let dir = tempfile::tempdir().map_err(MediaError::io("tempdir"))?;
    let probed = probe(&tools(), input, &MediaLimits::default(), BUDGET).await?;
    let rungs = plan_ladder(&probed, cfg);
    let (tx, mut rx) = mpsc::channel(1024);
    let out = transcode(&tools(), input, &probed, &rungs, cfg, dir.path(), BUDGET, tx).await?;
    let mut reported = Vec::new();
    while let Ok(path) = rx.try_recv() {
        reported.push(path);
    }
    Ok(Encoded { probed, out, reported, dir })
}

/// `init.mp4` + one segment as a standalone file ffprobe can read.
fn joined(dir: &Path, segment: &str, scratch: &Path) -> PathBuf {
    let mut bytes = std::fs::read(dir.join(INIT_NAME)).expect("init");
    bytes.extend(std::fs::read(dir.join(segment)).expect("segment"));
    let name = format!("{}-{segment}.mp4", dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let path = scratch.join(name);
    std::fs::write(&path, bytes).expect("write joined");
    path
}

fn all_joined(dir: &Path, segments: &[SegmentStat], scratch: &Path) -> PathBuf {
    let mut bytes = std::fs::read(dir.join(INIT_NAME)).expect("init");
    for segment in segments {
        bytes.extend(std::fs::read(dir.join(&segment.uri)).expect("segment"));
    }
    let path = scratch.join("all.mp4");
    std::fs::write(&path, bytes).expect("write joined");
    path
}

fn first_video_packet_flags(path: &Path) -> String {
    let path = path.to_string_lossy().into_owned();
    let report =
        ffprobe_json(&["-select_streams", "v:0", "-read_intervals", "%+#1", "-show_entries", "packet=flags", &path]);
    report["packets"][0]["flags"].as_str().unwrap_or_default().to_string()
}

fn files_on_disk(root: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for dir in std::fs::read_dir(root).expect("out dir").flatten() {
        for file in std::fs::read_dir(dir.path()).expect("rendition dir").flatten() {
            files.insert(file.path());
        }
    }
    files
}

#[tokio::test]
async fn portrait_ladder_is_aligned_keyframed_and_measured() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = clip(src.path(), "portrait.mp4", "testsrc2=s=1080x1920:r=30:d=2", Some("sine=d=2"), &[]);
    let Encoded { probed, out, reported, dir } = encode(&input, &one_second_segments()).await?;

    let names: Vec<(&str, u32, u32)> = out.renditions.iter().map(|r| (r.name.as_str(), r.width, r.height)).collect();
    assert_eq!(names, vec![("360p", 360, 640), ("540p", 540, 960), ("720p", 720, 1280)]);
    let counts: BTreeSet<usize> = out.renditions.iter().map(|r| r.segment_count()).collect();
    assert_eq!(counts.len(), 1, "segment counts differ: {counts:?}");
    for rendition in &out.renditions {
        let total: f64 = rendition.segments.iter().map(|s| s.duration).sum();
        assert!((total - probed.duration().as_secs_f64()).abs() <= 0.5);
        for (a, b) in rendition.segments.iter().zip(&out.renditions[0].segments) {
            assert!((a.duration - b.duration).abs() < 0.02);
        }
        assert!(rendition.codecs.starts_with("avc1.64"), "{}", rendition.codecs);
        let level = u8::from_str_radix(&rendition.codecs[9..11], 16).unwrap_or(u8::MAX);
        assert!(level <= 41, "level {level} above 4.1");
        assert!(rendition.peak_bps >= rendition.average_bps && rendition.average_bps > 0);
        for segment in &rendition.segments {
            let flags = first_video_packet_flags(&joined(&rendition.dir, &segment.uri, src.path()));
            assert!(flags.starts_with('K'), "{} {}: {flags}", rendition.name, segment.uri);
        }
    }

    let top = &out.renditions[2];
    let stream = video_stream(&joined(&top.dir, &top.segments[0].uri, src.path()));
    assert_eq!(stream["profile"], "High");
    assert_eq!(stream["pix_fmt"], "yuv420p");
    assert_eq!(stream["codec_tag_string"], "avc1");
    for key in ["color_space", "color_transfer", "color_primaries"] {
        assert_eq!(stream[key], "bt709", "{key}");
    }

    let audio = out.audio.as_ref().expect("audio rendition");
    assert_eq!(audio.codecs, "mp4a.40.2");
    for playlist in out.renditions.iter().map(|r| &r.dir).chain([&audio.dir]).map(|d| d.join(PLAYLIST_NAME)) {
        let text = std::fs::read_to_string(&playlist).expect("playlist");
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        let target = format!("#EXT-X-TARGETDURATION:{}\n", out.target_duration);
        assert!(text.contains(&target), "{text}");
        assert!(parse_media_playlist(&text).is_ok());
    }

    let master = master_playlist(&out);
    assert!(master.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\""));
    assert!(master.contains("RESOLUTION=360x640,FRAME-RATE=30.000,AUDIO=\"audio\"\n360p/index.m3u8"));
    assert!(master.contains(",mp4a.40.2\""));

    let on_disk = files_on_disk(dir.path());
    let reported: BTreeSet<PathBuf> = reported.into_iter().collect();
    assert_eq!(reported, on_disk, "every file reported, nothing else on disk");
    assert!(!dir.path().join("master.m3u8").exists());
    Ok(())
}

#[tokio::test]
async fn rotation_is_applied_to_the_pixels() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let Encoded { out, dir: _dir, .. } = encode(&rotated_clip(src.path()), &one_second_segments()).await?;
    let rung = &out.renditions[0];
    assert_eq!((rung.width, rung.height), (180, 320));
    let stream = video_stream(&all_joined(&rung.dir, &rung.segments, src.path()));
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(180), Some(320)));
    assert!(stream.get("side_data_list").is_none(), "{stream}");
    assert!(stream["tags"].get("rotate").is_none(), "{stream}");
    Ok(())
}

#[tokio::test]
async fn hlg_is_tone_mapped_to_8_bit_bt709() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let Encoded { out, dir: _dir, .. } = encode(&hlg_clip(src.path(), "160x284"), &one_second_segments()).await?;
    let rung = &out.renditions[0];
    let stream = video_stream(&all_joined(&rung.dir, &rung.segments, src.path()));
    assert_eq!(stream["codec_name"], "h264");
    assert_eq!(stream["pix_fmt"], "yuv420p");
    assert_eq!(stream["color_transfer"], "bt709");
    assert_eq!(stream["color_primaries"], "bt709");
    assert!(out.audio.is_none());
    Ok(())
}

#[tokio::test]
async fn no_audio_means_no_audio_rendition() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = clip(src.path(), "silent.mp4", "testsrc2=s=240x426:r=30:d=1", None, &[]);
    let Encoded { out, dir, .. } = encode(&input, &one_second_segments()).await?;
    assert!(out.audio.is_none());
    assert!(!dir.path().join(AUDIO_DIR).exists());
    let master = master_playlist(&out);
    assert!(!master.contains("mp4a"));
    assert!(!master.contains("AUDIO"));
    let rung = &out.renditions[0];
    assert_eq!(out.renditions.len(), 1);
    assert_eq!((rung.name.as_str(), rung.width, rung.height), ("240p", 240, 426));
    Ok(())
}

#[tokio::test]
async fn vfr_becomes_cfr_and_mono_becomes_stereo() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = clip(
        src.path(),
        "vfr.mkv",
        "testsrc2=s=160x284:r=30:d=2",
        Some("sine=d=2"),
        &["-vf", "setpts=(N/30+0.012*mod(N\\,2))/TB", "-fps_mode", "passthrough"],
    );
    let Encoded { probed, out, dir: _dir, .. } = encode(&input, &one_second_segments()).await?;
    let rung = &out.renditions[0];
    let joined = all_joined(&rung.dir, &rung.segments, src.path());
    let report =
        ffprobe_json(&["-select_streams", "v:0", "-show_entries", "packet=pts_time", &joined.to_string_lossy()]);
    let mut pts: Vec<f64> = report["packets"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["pts_time"].as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    pts.sort_by(f64::total_cmp);
    let frame = 1.0 / probed.fps();
    assert!(pts.len() > 30);
    for pair in pts.windows(2) {
        assert!((pair[1] - pair[0] - frame).abs() < 0.002, "{pair:?}");
    }
    let audio = out.audio.as_ref().expect("audio");
    let stream = audio_stream(&all_joined(&audio.dir, &audio.segments, src.path()));
    assert_eq!(stream["channels"], 2);
    assert_eq!(stream["sample_rate"], "48000");
    Ok(())
}

#[tokio::test]
async fn surround_is_downmixed_to_stereo_aac_lc() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = clip(src.path(), "surround.mp4", "testsrc2=s=160x90:r=30:d=1", Some("sine=d=1"), &["-ac", "6"]);
    let Encoded { probed, out, dir: _dir, .. } = encode(&input, &one_second_segments()).await?;
    assert_eq!(probed.audio_channels, 6);
    let audio = out.audio.as_ref().expect("audio");
    let stream = audio_stream(&all_joined(&audio.dir, &audio.segments, src.path()));
    assert_eq!(stream["channels"], 2);
    assert_eq!(stream["profile"], "LC");
    Ok(())
}

#[tokio::test]
async fn odd_dimensions_become_even() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = clip(src.path(), "odd.mp4", "testsrc2=s=201x357:r=30:d=1", None, &["-pix_fmt", "yuv444p"]);
    let Encoded { out, dir: _dir, .. } = encode(&input, &one_second_segments()).await?;
    let rung = &out.renditions[0];
    assert_eq!((rung.width, rung.height), (200, 356));
    let stream = video_stream(&all_joined(&rung.dir, &rung.segments, src.path()));
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(200), Some(356)));
    Ok(())
}

#[tokio::test]
async fn timeout_kills_the_encode_and_names_it() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let input = clip(src.path(), "c.mp4", "testsrc2=s=360x640:r=30:d=2", None, &[]);
    let probed = probe(&tools(), &input, &MediaLimits::default(), BUDGET).await?;
    let cfg = LadderConfig::default();
    let rungs = plan_ladder(&probed, &cfg);
    let (tx, _rx) = mpsc::channel(16);
    let started = std::time::Instant::now();
    let result =
        transcode(&tools(), &input, &probed, &rungs, &cfg, out_dir.path(), Duration::from_millis(100), tx).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    match result {
        Err(MediaError::TimedOut { command, .. }) => assert!(command.contains("transcode")),
        other => panic!("expected a timeout, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn poster_is_an_upright_jpeg() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = rotated_clip(src.path());
    let probed = probe(&tools(), &input, &MediaLimits::default(), BUDGET).await?;
    let jpeg = src.path().join("poster.jpg");
    poster(&tools(), &input, &probed, &jpeg, BUDGET).await?;
    let bytes = std::fs::read(&jpeg).expect("poster");
    assert_eq!(&bytes[..2], &[0xff, 0xd8]);
    let stream = video_stream(&jpeg);
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(180), Some(320)));
    Ok(())
}

fn audio_stream(path: &Path) -> serde_json::Value {
    let path = path.to_string_lossy().into_owned();
    let report = ffprobe_json(&["-select_streams", "a:0", "-show_streams", &path]);
    report["streams"][0].clone()
}
