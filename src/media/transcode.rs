//! The ladder encode: one ffmpeg process, one decode, the rungs of one [`Phase`] and its audio.
//!
//! Layout written under `out_dir` (uploaded as-is to `packaged/{video_id}/hls/`):
//! `{rung}/index.m3u8`, `{rung}/init.mp4`, `{rung}/seg-00001.m4s`, … for each rung, and the same
//! under `{track}/` for each separate audio track. No master playlist: the caller writes it from
//! [`master_playlist`](super::master_playlist) last.
//!
//! Every rung and every audio track is cut on the same [`SegmentGrid`](super::SegmentGrid)
//! (1 s, 2 s, then the configured length by default): IDRs are forced at the grid's boundaries
//! and nowhere else (the GOP is longer than any segment and scene cuts are off), and the HLS
//! muxer cuts at every keyframe. Two runs over the same source therefore produce segments with
//! the same boundaries and count, so a ladder can be encoded in two phases.
//!
//! All outputs go through one `tee` muxer, so each audio bitrate is encoded once even when it is
//! muxed into several rungs. A separate audio track has no keyframes to cut at, so it is written
//! as 1 s pieces and the watcher joins the pieces of each grid segment (see `watch`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::time::{Instant, MissedTickBehavior};

use super::Tools;
use super::error::MediaError;
use super::filters::ladder_graph;
use super::ladder::AudioPackaging;
use super::ladder::{AudioTrack, LadderConfig, Phase, Rung};
use super::mp4;
use super::output::{AudioOutput, LadderOutput, RenditionOutput, SegmentStat, measure};
use super::playlist::{parse_media_playlist, render_media_playlist, target_duration};
use super::probe::{ProbedMedia, file_url};
use super::process::{Invocation, Running};
use super::watch::{INIT_NAME, PIECE_TEMPLATE, PIECES_PLAYLIST, SegmentWatcher, WatchedDir};

/// Media playlist name inside every rendition directory.
pub(crate) const PLAYLIST_NAME: &str = "index.m3u8";
/// Segment file name pattern inside every rendition directory.
const SEGMENT_TEMPLATE: &str = "seg-%05d.m4s";
/// How often the rendition directories are checked for finished segments.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// x264 preset: the measured speed/quality balance (faster presets lose 0.02–0.03 SSIM).
const X264_PRESET: &str = "veryfast";

/// Encode `phase` (from [`LadderPlan`](super::LadderPlan)) into HLS fMP4 under `out_dir`, within
/// `timeout`.
///
/// Every finished file is sent on `segments` as soon as it is complete on disk: each rendition's
/// `init.mp4` (before its first segment) and segments while ffmpeg runs, then each `index.m3u8`
/// once written with the grid's target duration. A dropped receiver does not stop the encode.
#[allow(clippy::too_many_arguments)]
pub async fn transcode(
    tools: &Tools,
    input: &Path,
    probed: &ProbedMedia,
    phase: &Phase,
    cfg: &LadderConfig,
    out_dir: &Path,
    timeout: Duration,
    segments: Sender<PathBuf>,
) -> Result<LadderOutput, MediaError> {
    if phase.rungs.is_empty() {
        return Err(MediaError::invalid_output("the phase has no rungs"));
    }
    let separate = cfg.audio == AudioPackaging::Separate;
    let tracks: &[AudioTrack] = if probed.has_audio && separate { &phase.audio } else { &[] };
    let grid = cfg.grid();
    let mut watched: Vec<WatchedDir> =
        phase.rungs.iter().map(|r| WatchedDir::segments(out_dir.join(&r.name))).collect();
    watched.extend(tracks.iter().map(|t| WatchedDir::pieces(out_dir.join(&t.name), grid.clone())));
    for dir in &watched {
        recreate(dir.path()).await?;
    }
    let mut watcher = SegmentWatcher::new(watched, segments);
    let args = ffmpeg_args(input, probed, phase, tracks, cfg, out_dir);
    let running = Invocation::new(&tools.ffmpeg, "transcode", tools.limits).args(args).spawn()?;
    supervise(running, &mut watcher, timeout).await?;
    let out = collect_output(out_dir, probed, phase, tracks, &watcher, cfg).await?;
    for (dir, segments) in playlists(&out) {
        let path = write_playlist(&dir, segments, out.target_duration).await?;
        watcher.send(path).await;
    }
    Ok(out)
}

/// A retry must not report a previous attempt's segments as fresh.
async fn recreate(dir: &Path) -> Result<(), MediaError> {
    if tokio::fs::try_exists(dir).await.unwrap_or(false) {
        tokio::fs::remove_dir_all(dir).await.map_err(MediaError::io(format!("clearing {}", dir.display())))?;
    }
    tokio::fs::create_dir_all(dir).await.map_err(MediaError::io(format!("creating {}", dir.display())))
}

/// Wait for ffmpeg while reporting finished segments; a watcher error kills ffmpeg (on drop).
async fn supervise(running: Running, watcher: &mut SegmentWatcher, timeout: Duration) -> Result<(), MediaError> {
    let wait = running.wait_until(Instant::now() + timeout, timeout);
    tokio::pin!(wait);
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            done = &mut wait => {
                done?.success()?;
                return watcher.finish().await;
            }
            _ = ticks.tick() => watcher.poll().await?,
        }
    }
}

/// Output streams, in order: one video per rung (`0..n`), then one audio per distinct bitrate
/// (muxed: the rungs' bitrates; separate: the tracks'). Each tee slave selects its streams.
fn ffmpeg_args(
    input: &Path,
    probed: &ProbedMedia,
    phase: &Phase,
    tracks: &[AudioTrack],
    cfg: &LadderConfig,
    out_dir: &Path,
) -> Vec<OsString> {
    let mut args = input_args(input, probed);
    args.extend(strings(["-filter_complex", &ladder_graph(probed, &phase.rungs)]));
    let force_key_frames = cfg.grid().force_key_frames(probed.fps());
    for (index, rung) in phase.rungs.iter().enumerate() {
        args.extend(video_output_args(index, rung, probed, cfg, &force_key_frames));
    }
    let muxed = cfg.audio == AudioPackaging::Muxed;
    let mut rates: Vec<u32> = match probed.audio_stream {
        None => Vec::new(),
        Some(_) if muxed => phase.rungs.iter().map(|r| r.audio_kbps).collect(),
        Some(_) => tracks.iter().map(|t| t.kbps).collect(),
    };
    rates.sort_unstable();
    rates.dedup();
    if let Some(stream) = probed.audio_stream {
        for (index, kbps) in rates.iter().enumerate() {
            args.extend(audio_output_args(stream, index, *kbps));
        }
    }
    let audio_index = |kbps: u32| rates.iter().position(|&r| r == kbps).map(|i| i + phase.rungs.len());
    let mut slaves = Vec::new();
    for (index, rung) in phase.rungs.iter().enumerate() {
        let mut streams = vec![index];
        if muxed {
            streams.extend(audio_index(rung.audio_kbps));
        }
        slaves.push(hls_slave(&streams, &out_dir.join(&rung.name), SEGMENT_TEMPLATE, PLAYLIST_NAME));
    }
    for track in tracks {
        let streams: Vec<usize> = audio_index(track.kbps).into_iter().collect();
        slaves.push(hls_slave(&streams, &out_dir.join(&track.name), PIECE_TEMPLATE, PIECES_PLAYLIST));
    }
    args.extend(metadata_args());
    args.extend(strings(["-f", "tee"]));
    args.push(OsString::from(slaves.join("|")));
    args
}

/// One tee slave: fMP4 HLS VOD of `streams` into `dir`, segments through `.tmp` + rename (see the
/// `watch` module). `hls_time=1` with IDRs only on the grid cuts video at every grid boundary,
/// and audio alone every second.
fn hls_slave(streams: &[usize], dir: &Path, template: &str, playlist: &str) -> String {
    let select = streams.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let segment_path = format!("{}/{template}", dir.to_string_lossy().replace('%', "%%"));
    let options = [
        ("select", select.as_str()),
        ("f", "hls"),
        ("hls_time", "1"),
        ("hls_playlist_type", "vod"),
        ("hls_segment_type", "fmp4"),
        ("hls_flags", "temp_file"),
        ("hls_fmp4_init_filename", INIT_NAME),
        ("start_number", "1"),
        ("hls_segment_filename", &segment_path),
    ]
    .iter()
    .map(|(key, value)| format!("{key}={}", tee_escape(value)))
    .collect::<Vec<_>>()
    .join(":");
    let slave = format!("[{options}]{}", dir.join(playlist).to_string_lossy());
    tee_escape(&slave)
}

/// Backslash-escape everything but plainly safe characters: the tee muxer unescapes its list
/// once when splitting slaves at `|`, and option values once more when parsing `[k=v:…]`.
fn tee_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '%')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Read only the upload, with the demuxer pinned to the probed one.
pub(crate) fn input_args(input: &Path, probed: &ProbedMedia) -> Vec<OsString> {
    let mut args = strings([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-protocol_whitelist",
        "file",
        "-f",
        probed.container.demuxer(),
        "-i",
    ]);
    args.push(file_url(input));
    args
}

/// H.264 High 8-bit BT.709, VBV-capped; IDRs on the segment grid only: closed GOPs, no scene
/// cuts, and a maximum GOP of two segments so x264 never adds one of its own.
fn video_output_args(
    index: usize,
    rung: &Rung,
    probed: &ProbedMedia,
    cfg: &LadderConfig,
    force_key_frames: &str,
) -> Vec<OsString> {
    let gop = (probed.fps() * f64::from(cfg.segment_duration()) * 2.0).round().max(1.0).to_string();
    let v = |option: &str| format!("-{option}:v:{index}");
    strings([
        "-map",
        &format!("[v{index}]"),
        &v("c"),
        "libx264",
        &v("preset"),
        X264_PRESET,
        &v("profile"),
        "high",
        &v("pix_fmt"),
        "yuv420p",
        &v("b"),
        &format!("{}k", rung.video_kbps),
        &v("maxrate"),
        &format!("{}k", rung.maxrate_kbps),
        &v("bufsize"),
        &format!("{}k", rung.bufsize_kbps),
        &v("g"),
        &gop,
        &v("sc_threshold"),
        "0",
        &v("flags"),
        "+cgop",
        &v("forced-idr"),
        "1",
        &v("force_key_frames"),
        force_key_frames,
        &v("color_primaries"),
        "bt709",
        &v("color_trc"),
        "bt709",
        &v("colorspace"),
        "bt709",
        &v("color_range"),
        "tv",
    ])
}

/// AAC-LC stereo 48 kHz at `kbps`, the `index`-th audio output; mono is upmixed and 5.1 downmixed
/// by `-ac 2`.
fn audio_output_args(stream: usize, index: usize, kbps: u32) -> Vec<OsString> {
    let a = |option: &str| format!("-{option}:a:{index}");
    strings([
        "-map",
        &format!("0:{stream}"),
        &a("c"),
        "aac",
        &a("profile"),
        "aac_low",
        &a("b"),
        &format!("{kbps}k"),
        &a("ac"),
        "2",
        &a("ar"),
        "48000",
    ])
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<OsString> {
    items.into_iter().map(OsString::from).collect()
}

/// Shared output options: no metadata or chapters carried over from the upload.
fn metadata_args() -> Vec<OsString> {
    strings(["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"])
}

async fn collect_output(
    out_dir: &Path,
    probed: &ProbedMedia,
    phase: &Phase,
    tracks: &[AudioTrack],
    watcher: &SegmentWatcher,
    cfg: &LadderConfig,
) -> Result<LadderOutput, MediaError> {
    let mut renditions = Vec::with_capacity(phase.rungs.len());
    for rung in &phase.rungs {
        let separate = cfg.audio == AudioPackaging::Separate && probed.has_audio;
        let group = separate.then(|| AudioTrack::for_rung(rung, cfg).name);
        renditions.push(collect_rendition(&out_dir.join(&rung.name), rung, probed, group).await?);
    }
    check_alignment(&renditions, probed.fps())?;
    let mut audio = Vec::with_capacity(tracks.len());
    for track in tracks {
        let dir = out_dir.join(&track.name);
        let segments = watcher.joined(&dir).to_vec();
        audio.push(collect_audio(&dir, track, segments).await?);
    }
    let grid_target = cfg.grid().target_duration();
    let all_segments = renditions.iter().flat_map(|r| &r.segments).chain(audio.iter().flat_map(|a| &a.segments));
    let target_duration = target_duration(all_segments).max(grid_target);
    Ok(LadderOutput { renditions, audio, target_duration })
}

async fn collect_rendition(
    dir: &Path,
    rung: &Rung,
    probed: &ProbedMedia,
    audio_group: Option<String>,
) -> Result<RenditionOutput, MediaError> {
    let segments = read_segments(dir, PLAYLIST_NAME).await?;
    let (peak_bps, average_bps) = measure(&segments);
    Ok(RenditionOutput {
        name: rung.name.clone(),
        dir: dir.to_path_buf(),
        width: rung.width,
        height: rung.height,
        frame_rate: probed.frame_rate,
        codecs: read_codecs(dir).await?,
        audio_group,
        segments,
        peak_bps,
        average_bps,
    })
}

/// A separate audio track, whose `segments` the watcher joined from ffmpeg's 1 s pieces.
async fn collect_audio(dir: &Path, track: &AudioTrack, segments: Vec<SegmentStat>) -> Result<AudioOutput, MediaError> {
    if segments.is_empty() {
        return Err(MediaError::invalid_output(format!("{}: no audio segments", dir.display())));
    }
    let (peak_bps, average_bps) = measure(&segments);
    Ok(AudioOutput {
        name: track.name.clone(),
        dir: dir.to_path_buf(),
        codecs: read_codecs(dir).await?,
        channels: 2,
        segments,
        peak_bps,
        average_bps,
    })
}

/// The playlist `name` in `dir` (ffmpeg's), with each segment's size on disk.
pub(crate) async fn read_segments(dir: &Path, name: &str) -> Result<Vec<SegmentStat>, MediaError> {
    let path = dir.join(name);
    let text = tokio::fs::read_to_string(&path).await.map_err(MediaError::io(format!("reading {}", path.display())))?;
    let entries =
        parse_media_playlist(&text).map_err(|e| MediaError::invalid_output(format!("{}: {e}", path.display())))?;
    let mut segments = Vec::with_capacity(entries.len());
    for (duration, uri) in entries {
        let file = dir.join(&uri);
        let bytes =
            tokio::fs::metadata(&file).await.map_err(MediaError::io(format!("reading {}", file.display())))?.len();
        segments.push(SegmentStat { uri, duration, bytes });
    }
    Ok(segments)
}

/// `segment` (a `seg-NNNNN.m4s` just reported) with its size and its exact duration, read from
/// its fragments and the `init.mp4` beside it: what a growing EVENT playlist lists, equal to what
/// the finished playlist will say.
pub async fn segment_stat(segment: &Path) -> Result<SegmentStat, MediaError> {
    let dir = segment.parent().ok_or_else(|| MediaError::invalid_output("a segment path without a directory"))?;
    let init_path = dir.join(INIT_NAME);
    let init = tokio::fs::read(&init_path).await.map_err(MediaError::io(format!("reading {}", init_path.display())))?;
    let bytes = tokio::fs::read(segment).await.map_err(MediaError::io(format!("reading {}", segment.display())))?;
    let duration = mp4::segment_duration(&init, &bytes)
        .map_err(|e| MediaError::invalid_output(format!("{}: {e}", segment.display())))?;
    let uri = segment.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(SegmentStat { uri, duration, bytes: bytes.len() as u64 })
}

/// The RFC 6381 codecs of the rendition or audio track in `dir`, from its `init.mp4` (complete
/// once its first segment has been reported): "avc1.64001e" or "avc1.64001e,mp4a.40.2".
pub async fn init_codecs(dir: &Path) -> Result<String, MediaError> {
    read_codecs(dir).await
}

async fn read_codecs(dir: &Path) -> Result<String, MediaError> {
    let path = dir.join(INIT_NAME);
    let init = tokio::fs::read(&path).await.map_err(MediaError::io(format!("reading {}", path.display())))?;
    mp4::init_codecs(&init).map_err(|e| MediaError::invalid_output(format!("{}: {e}", path.display())))
}

/// Every rung must have the same segments, boundaries within half a frame of each other.
fn check_alignment(renditions: &[RenditionOutput], fps: f64) -> Result<(), MediaError> {
    let Some((first, rest)) = renditions.split_first() else {
        return Ok(());
    };
    let tolerance = 0.5 / fps.max(1.0);
    for other in rest {
        let aligned = other.segments.len() == first.segments.len()
            && first.segments.iter().zip(&other.segments).all(|(a, b)| (a.duration - b.duration).abs() <= tolerance);
        if !aligned {
            return Err(MediaError::invalid_output(format!(
                "segments of {} and {} are not aligned",
                first.name, other.name
            )));
        }
    }
    Ok(())
}

fn playlists(out: &LadderOutput) -> Vec<(PathBuf, &[SegmentStat])> {
    let video = out.renditions.iter().map(|r| (r.dir.clone(), r.segments.as_slice()));
    let audio = out.audio.iter().map(|a| (a.dir.clone(), a.segments.as_slice()));
    video.chain(audio).collect()
}

/// Replace ffmpeg's playlist with reel's (shared target duration), atomically.
async fn write_playlist(dir: &Path, segments: &[SegmentStat], target_duration: u32) -> Result<PathBuf, MediaError> {
    let path = dir.join(PLAYLIST_NAME);
    let staging = dir.join(format!("{PLAYLIST_NAME}.tmp"));
    let text = render_media_playlist(segments, target_duration);
    tokio::fs::write(&staging, text).await.map_err(MediaError::io(format!("writing {}", staging.display())))?;
    tokio::fs::rename(&staging, &path).await.map_err(MediaError::io(format!("renaming {}", staging.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests;
