use std::collections::BTreeSet;

use tempfile::TempDir;
use tokio::sync::mpsc;

use super::super::testutil::{BUDGET, clip, ffprobe_json, hlg_clip, rotated_clip, tools, video_stream};
use super::super::{AudioPackaging, MediaLimits, master_playlist, plan_phases, poster, probe};
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
    let phase = plan_phases(&probed, cfg).single_phase(cfg);
    let (tx, mut rx) = mpsc::channel(1024);
    let out = transcode(&tools(), input, &probed, &phase, cfg, dir.path(), BUDGET, tx).await?;
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

/// (pts, keyframe) of every video packet of `path`, in presentation order.
fn video_packets(path: &Path) -> Vec<(f64, bool)> {
    let path = path.to_string_lossy().into_owned();
    let report = ffprobe_json(&["-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", &path]);
    let mut packets: Vec<(f64, bool)> = report["packets"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|p| {
                    let pts = p["pts_time"].as_str()?.parse().ok()?;
                    Some((pts, p["flags"].as_str()?.starts_with('K')))
                })
                .collect()
        })
        .unwrap_or_default();
    packets.sort_by(|a, b| a.0.total_cmp(&b.0));
    packets
}

/// Segment start times from EXTINF durations.
fn starts(segments: &[SegmentStat]) -> Vec<f64> {
    segments
        .iter()
        .scan(0.0, |at, s| {
            let start = *at;
            *at += s.duration;
            Some(start)
        })
        .collect()
}

/// The checks every packaging shares: graduated 1/2/4 s segments on one grid in every rung and
/// audio track, an IDR at every segment start and nowhere else, durations that add up.
fn assert_graduated_and_aligned(out: &LadderOutput, duration: f64, scratch: &Path) {
    let frame = 1.0 / 30.0;
    let reference = starts(&out.renditions[0].segments);
    let timelines =
        out.renditions.iter().map(|r| (&r.name, &r.segments)).chain(out.audio.iter().map(|a| (&a.name, &a.segments)));
    for (name, segments) in timelines {
        let first: Vec<f64> = segments.iter().take(3).map(|s| s.duration).collect();
        assert_eq!(first.len(), 3, "{name}: {segments:?}");
        for (got, want) in first.iter().zip([1.0, 2.0, 4.0]) {
            assert!((got - want).abs() <= frame, "{name}: first durations {first:?}");
        }
        let total: f64 = segments.iter().map(|s| s.duration).sum();
        assert!((total - duration).abs() <= frame, "{name}: EXTINF adds up to {total}, not {duration}");
        assert_eq!(segments.len(), reference.len(), "{name}: segment count");
        for (a, b) in starts(segments).iter().zip(&reference) {
            assert!((a - b).abs() <= frame, "{name}: boundaries differ from the first rung's");
        }
    }
    for rendition in &out.renditions {
        for segment in &rendition.segments {
            let flags = first_video_packet_flags(&joined(&rendition.dir, &segment.uri, scratch));
            assert!(flags.starts_with('K'), "{} {}: {flags}", rendition.name, segment.uri);
        }
        let keyframes: Vec<f64> = video_packets(&all_joined(&rendition.dir, &rendition.segments, scratch))
            .into_iter()
            .filter_map(|(pts, key)| key.then_some(pts))
            .collect();
        assert_eq!(keyframes.len(), reference.len(), "{}: IDRs only at segment starts: {keyframes:?}", rendition.name);
        for (key, start) in keyframes.iter().zip(&reference) {
            assert!((key - keyframes[0] - start).abs() <= frame / 2.0, "{}: IDRs {keyframes:?}", rendition.name);
        }
    }
}

fn graduated_source(dir: &Path) -> PathBuf {
    let video = "testsrc2=s=540x960:r=30:d=8,noise=alls=3:allf=t";
    clip(dir, "portrait.mp4", video, Some("sine=f=440:d=8"), &["-ac", "2"])
}

/// The floor rung is listed first and fits a cellular link: BANDWIDTH (audio included) at most
/// 192 kb/s, and a first segment under 60 KB.
fn assert_floor_first(master: &str, out: &LadderOutput) {
    let first = master.lines().find(|l| l.starts_with("#EXT-X-STREAM-INF:")).unwrap_or_default();
    assert!(first.contains("RESOLUTION=234x416"), "the floor is listed first: {master}");
    let bandwidth: u64 = first
        .split(',')
        .find_map(|a| a.strip_prefix("#EXT-X-STREAM-INF:BANDWIDTH="))
        .and_then(|b| b.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(bandwidth <= 192_000, "floor BANDWIDTH {bandwidth}");
    let floor = &out.renditions[0];
    let audio_bytes = floor.audio_group.as_deref().and_then(|g| out.audio_group(g)).map_or(0, |a| a.segments[0].bytes);
    let first_bytes = floor.segments[0].bytes + audio_bytes;
    assert!(first_bytes < 60_000, "the start rung's first segment is {first_bytes} bytes");
}

#[tokio::test]
async fn two_phases_encode_graduated_aligned_segments_with_muxed_audio() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = graduated_source(src.path());
    let dir = tempfile::tempdir().map_err(MediaError::io("tempdir"))?;
    let cfg = LadderConfig::default();
    let probed = probe(&tools(), &input, &MediaLimits::default(), BUDGET).await?;
    let plan = plan_phases(&probed, &cfg);
    let (tx, mut rx) = mpsc::channel(1024);
    let start =
        transcode(&tools(), &input, &probed, &plan.start_phase(&cfg), &cfg, dir.path(), BUDGET, tx.clone()).await?;
    let remaining = transcode(&tools(), &input, &probed, &plan.remaining_phase(), &cfg, dir.path(), BUDGET, tx).await?;
    let names = |out: &LadderOutput| out.renditions.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!((names(&start), names(&remaining)), (vec!["234p".into(), "360p".into()], vec!["540p".into()]));
    let out = start.merge(remaining);
    assert!(out.audio.is_empty(), "audio is muxed");
    assert_graduated_and_aligned(&out, probed.duration().as_secs_f64(), src.path());

    for rendition in &out.renditions {
        assert!(rendition.codecs.starts_with("avc1.64") && rendition.codecs.ends_with(",mp4a.40.2"));
        let level = u8::from_str_radix(&rendition.codecs[9..11], 16).unwrap_or(u8::MAX);
        assert!(level <= 41, "level {level} above 4.1");
        let text = std::fs::read_to_string(rendition.dir.join(PLAYLIST_NAME)).expect("playlist");
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && text.ends_with("#EXT-X-ENDLIST\n"));
        assert!(text.contains("#EXT-X-TARGETDURATION:4\n"), "{text}");
        let joined = all_joined(&rendition.dir, &rendition.segments, src.path());
        let audio = audio_stream(&joined);
        assert_eq!((audio["codec_name"].as_str(), audio["channels"].as_u64()), (Some("aac"), Some(2)));
    }
    let floor_audio = audio_stream(&all_joined(&out.renditions[0].dir, &out.renditions[0].segments, src.path()));
    let kbps = floor_audio["bit_rate"].as_str().and_then(|b| b.parse::<u64>().ok()).unwrap_or(u64::MAX) / 1000;
    assert!(kbps <= 40, "the floor plays low-rate audio: {kbps} kb/s");

    let top = &out.renditions[2];
    let stream = video_stream(&joined(&top.dir, &top.segments[0].uri, src.path()));
    assert_eq!(stream["profile"], "High");
    assert_eq!(stream["pix_fmt"], "yuv420p");
    assert_eq!(stream["codec_tag_string"], "avc1");
    for key in ["color_space", "color_transfer", "color_primaries"] {
        assert_eq!(stream[key], "bt709", "{key}");
    }

    let master = master_playlist(&out);
    assert!(!master.contains("EXT-X-MEDIA:"), "no separate audio rendition: {master}");
    assert_floor_first(&master, &out);

    let mut reported = BTreeSet::new();
    while let Ok(path) = rx.try_recv() {
        assert!(reported.insert(path.clone()), "{} reported twice", path.display());
    }
    assert_eq!(reported, files_on_disk(dir.path()), "every file reported once, nothing else on disk");
    Ok(())
}

#[tokio::test]
async fn separate_audio_is_joined_onto_the_same_grid() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = graduated_source(src.path());
    let cfg = LadderConfig { audio: AudioPackaging::Separate, ..LadderConfig::default() };
    let Encoded { probed, out, reported, dir } = encode(&input, &cfg).await?;
    let tracks: Vec<(&str, u64)> = out.audio.iter().map(|a| (a.name.as_str(), a.average_bps / 1000)).collect();
    assert_eq!(tracks.iter().map(|t| t.0).collect::<Vec<_>>(), ["audio-32k", "audio"]);
    assert!(tracks[0].1 < 40 && tracks[1].1 > 100, "{tracks:?}");
    let groups: Vec<Option<&str>> = out.renditions.iter().map(|r| r.audio_group.as_deref()).collect();
    assert_eq!(groups, [Some("audio-32k"), Some("audio"), Some("audio")]);
    assert_graduated_and_aligned(&out, probed.duration().as_secs_f64(), src.path());
    for audio in &out.audio {
        assert_eq!(audio.codecs, "mp4a.40.2");
        let joined = all_joined(&audio.dir, &audio.segments, src.path());
        let stream = audio_stream(&joined);
        assert_eq!((stream["channels"].as_u64(), stream["sample_rate"].as_str()), (Some(2), Some("48000")));
        let seconds: f64 =
            ffprobe_json(&["-show_entries", "format=duration", &joined.to_string_lossy()])["format"]["duration"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .unwrap_or_default();
        assert!((seconds - probed.duration().as_secs_f64()).abs() < 0.1, "joined audio lasts {seconds}");
        let text = std::fs::read_to_string(audio.dir.join(PLAYLIST_NAME)).expect("playlist");
        assert!(text.contains("#EXT-X-TARGETDURATION:4\n") && text.ends_with("#EXT-X-ENDLIST\n"));
    }
    for rendition in &out.renditions {
        assert!(!rendition.codecs.contains("mp4a"), "video renditions carry no audio");
    }
    let master = master_playlist(&out);
    assert!(master.contains("GROUP-ID=\"audio-32k\"") && master.contains("GROUP-ID=\"audio\""));
    assert_floor_first(&master, &out);
    let reported: BTreeSet<PathBuf> = reported.into_iter().collect();
    assert_eq!(reported, files_on_disk(dir.path()), "every file reported, no piece left on disk");
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
    assert!(!rung.codecs.contains("mp4a"));
    Ok(())
}

#[tokio::test]
async fn no_audio_means_no_audio_rendition() -> Result<(), MediaError> {
    let src = tempfile::tempdir().expect("tempdir");
    let input = clip(src.path(), "silent.mp4", "testsrc2=s=240x426:r=30:d=1", None, &[]);
    let cfg = LadderConfig { audio: AudioPackaging::Separate, ..one_second_segments() };
    let Encoded { out, dir, .. } = encode(&input, &cfg).await?;
    assert!(out.audio.is_empty());
    assert!(!dir.path().join("audio").exists());
    let master = master_playlist(&out);
    assert!(!master.contains("mp4a"));
    assert!(!master.contains("AUDIO"));
    let names: Vec<(&str, u32, u32)> = out.renditions.iter().map(|r| (r.name.as_str(), r.width, r.height)).collect();
    assert_eq!(names, [("234p", 234, 416), ("240p", 240, 426)]);
    assert!(out.renditions.iter().all(|r| r.audio_group.is_none() && !r.codecs.contains("mp4a")));
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
    let stream = audio_stream(&all_joined(&rung.dir, &rung.segments, src.path()));
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
    let rung = &out.renditions[0];
    let stream = audio_stream(&all_joined(&rung.dir, &rung.segments, src.path()));
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
    let phase = plan_phases(&probed, &cfg).single_phase(&cfg);
    let (tx, _rx) = mpsc::channel(16);
    let started = std::time::Instant::now();
    let result =
        transcode(&tools(), &input, &probed, &phase, &cfg, out_dir.path(), Duration::from_millis(100), tx).await;
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
