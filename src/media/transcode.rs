//! The ladder encode: one ffmpeg process, one decode, every rung and the audio rendition.
//!
//! Layout written under `out_dir` (uploaded as-is to `packaged/{video_id}/hls/`):
//! `{rung}/index.m3u8`, `{rung}/init.mp4`, `{rung}/seg-00001.m4s`, … for each rung, and the same
//! under `audio/` when the source has audio. No master playlist: the caller writes
//! `master.m3u8` from [`master_playlist`](super::master_playlist) last.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::time::{Instant, MissedTickBehavior};

use super::Tools;
use super::error::MediaError;
use super::filters::ladder_graph;
use super::ladder::{LadderConfig, Rung};
use super::mp4::{aac_codecs, avc_codecs};
use super::output::{AudioOutput, LadderOutput, RenditionOutput, SegmentStat, measure};
use super::playlist::{parse_media_playlist, render_media_playlist, target_duration};
use super::probe::{ProbedMedia, file_url};
use super::process::{Invocation, Running};
use super::watch::{INIT_NAME, SegmentWatcher};

/// Directory of the audio rendition.
const AUDIO_DIR: &str = "audio";
/// Media playlist name inside every rendition directory.
const PLAYLIST_NAME: &str = "index.m3u8";
/// How often the rendition directories are checked for finished segments.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// x264 preset: the measured speed/quality balance (faster presets lose 0.02–0.03 SSIM).
const X264_PRESET: &str = "veryfast";

/// Encode `rungs` (from [`plan_ladder`](super::plan_ladder)) and the audio into HLS fMP4 under
/// `out_dir`, within `timeout`.
///
/// Every finished file is sent on `segments` as soon as it is complete on disk: each rendition's
/// `init.mp4` and segments while ffmpeg runs, then each `index.m3u8` once rewritten with the
/// shared target duration. A dropped receiver does not stop the encode.
#[allow(clippy::too_many_arguments)]
pub async fn transcode(
    tools: &Tools,
    input: &Path,
    probed: &ProbedMedia,
    rungs: &[Rung],
    cfg: &LadderConfig,
    out_dir: &Path,
    timeout: Duration,
    segments: Sender<PathBuf>,
) -> Result<LadderOutput, MediaError> {
    if rungs.is_empty() {
        return Err(MediaError::invalid_output("the ladder has no rungs"));
    }
    let dirs = create_dirs(out_dir, rungs, probed.has_audio).await?;
    let mut watcher = SegmentWatcher::new(dirs, segments);
    let running =
        Invocation::new(&tools.ffmpeg, "transcode").args(ffmpeg_args(input, probed, rungs, cfg, out_dir)).spawn()?;
    supervise(running, &mut watcher, timeout).await?;
    let out = collect_output(out_dir, probed, rungs).await?;
    for (dir, segments) in playlists(&out) {
        let path = write_playlist(&dir, segments, out.target_duration).await?;
        watcher.send(path).await;
    }
    Ok(out)
}

async fn create_dirs(out_dir: &Path, rungs: &[Rung], has_audio: bool) -> Result<Vec<PathBuf>, MediaError> {
    let mut dirs: Vec<PathBuf> = rungs.iter().map(|r| out_dir.join(&r.name)).collect();
    if has_audio {
        dirs.push(out_dir.join(AUDIO_DIR));
    }
    for dir in &dirs {
        // A retry must not report a previous attempt's segments as fresh.
        if tokio::fs::try_exists(dir).await.unwrap_or(false) {
            tokio::fs::remove_dir_all(dir).await.map_err(MediaError::io(format!("clearing {}", dir.display())))?;
        }
        tokio::fs::create_dir_all(dir).await.map_err(MediaError::io(format!("creating {}", dir.display())))?;
    }
    Ok(dirs)
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
                return watcher.poll().await;
            }
            _ = ticks.tick() => watcher.poll().await?,
        }
    }
}

fn ffmpeg_args(
    input: &Path,
    probed: &ProbedMedia,
    rungs: &[Rung],
    cfg: &LadderConfig,
    out_dir: &Path,
) -> Vec<OsString> {
    let mut args = input_args(input, probed);
    args.extend(strings(["-filter_complex", &ladder_graph(probed, rungs)]));
    for (index, rung) in rungs.iter().enumerate() {
        args.extend(video_output_args(index, rung, probed, cfg));
        args.extend(hls_args(&out_dir.join(&rung.name), cfg));
    }
    if let Some(stream) = probed.audio_stream {
        args.extend(audio_output_args(stream, cfg));
        args.extend(hls_args(&out_dir.join(AUDIO_DIR), cfg));
    }
    args
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

/// H.264 High 8-bit BT.709, IDR pinned to the segment grid, closed GOPs, VBV-capped.
fn video_output_args(index: usize, rung: &Rung, probed: &ProbedMedia, cfg: &LadderConfig) -> Vec<OsString> {
    let gop = (probed.fps() * 2.0).round().max(1.0).to_string();
    let force_key_frames = format!("expr:gte(t,n_forced*{})", cfg.segment_duration());
    strings([
        "-map",
        &format!("[v{index}]"),
        "-an",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        "-c:v",
        "libx264",
        "-preset",
        X264_PRESET,
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        &format!("{}k", rung.video_kbps),
        "-maxrate",
        &format!("{}k", rung.maxrate_kbps),
        "-bufsize",
        &format!("{}k", rung.bufsize_kbps),
        "-g",
        &gop,
        "-sc_threshold",
        "0",
        "-flags",
        "+cgop",
        "-forced-idr",
        "1",
        "-force_key_frames",
        &force_key_frames,
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-colorspace",
        "bt709",
        "-color_range",
        "tv",
    ])
}

/// AAC-LC stereo 48 kHz, encoded once; mono is upmixed and 5.1 downmixed by `-ac 2`.
fn audio_output_args(stream: usize, cfg: &LadderConfig) -> Vec<OsString> {
    strings([
        "-map",
        &format!("0:{stream}"),
        "-vn",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        "-c:a",
        "aac",
        "-profile:a",
        "aac_low",
        "-b:a",
        &format!("{}k", cfg.audio_kbps()),
        "-ac",
        "2",
        "-ar",
        "48000",
    ])
}

/// fMP4 HLS VOD into `dir`; segments go through `.tmp` + rename (see the `watch` module).
fn hls_args(dir: &Path, cfg: &LadderConfig) -> Vec<OsString> {
    let template = dir.join("seg-%05d.m4s");
    let template = escape_percent(&template);
    let mut args = strings([
        "-f",
        "hls",
        "-hls_time",
        &cfg.segment_duration().to_string(),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "temp_file",
        "-hls_fmp4_init_filename",
        INIT_NAME,
        "-start_number",
        "1",
        "-hls_segment_filename",
    ]);
    args.push(template);
    args.push(dir.join(PLAYLIST_NAME).into_os_string());
    args
}

/// `%` in the directory would be read as part of the segment-number pattern.
fn escape_percent(template: &Path) -> OsString {
    let text = template.to_string_lossy();
    let dir_part = text.strip_suffix("seg-%05d.m4s").unwrap_or(&text);
    OsString::from(format!("{}seg-%05d.m4s", dir_part.replace('%', "%%")))
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<OsString> {
    items.into_iter().map(OsString::from).collect()
}

async fn collect_output(out_dir: &Path, probed: &ProbedMedia, rungs: &[Rung]) -> Result<LadderOutput, MediaError> {
    let mut renditions = Vec::with_capacity(rungs.len());
    for rung in rungs {
        renditions.push(collect_rendition(&out_dir.join(&rung.name), rung, probed).await?);
    }
    check_alignment(&renditions, probed.fps())?;
    let audio = if probed.has_audio { Some(collect_audio(&out_dir.join(AUDIO_DIR)).await?) } else { None };
    let all_segments = renditions.iter().flat_map(|r| &r.segments).chain(audio.iter().flat_map(|a| &a.segments));
    let target_duration = target_duration(all_segments);
    Ok(LadderOutput { renditions, audio, target_duration })
}

async fn collect_rendition(dir: &Path, rung: &Rung, probed: &ProbedMedia) -> Result<RenditionOutput, MediaError> {
    let segments = read_segments(dir).await?;
    let (peak_bps, average_bps) = measure(&segments);
    Ok(RenditionOutput {
        name: rung.name.clone(),
        dir: dir.to_path_buf(),
        width: rung.width,
        height: rung.height,
        frame_rate: probed.frame_rate,
        codecs: read_codecs(dir, avc_codecs).await?,
        segments,
        peak_bps,
        average_bps,
    })
}

async fn collect_audio(dir: &Path) -> Result<AudioOutput, MediaError> {
    let segments = read_segments(dir).await?;
    let (peak_bps, average_bps) = measure(&segments);
    Ok(AudioOutput {
        name: AUDIO_DIR.to_string(),
        dir: dir.to_path_buf(),
        codecs: read_codecs(dir, aac_codecs).await?,
        channels: 2,
        segments,
        peak_bps,
        average_bps,
    })
}

/// ffmpeg's playlist for `dir`, with each segment's size on disk.
async fn read_segments(dir: &Path) -> Result<Vec<SegmentStat>, MediaError> {
    let path = dir.join(PLAYLIST_NAME);
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

async fn read_codecs(dir: &Path, parse: fn(&[u8]) -> Result<String, String>) -> Result<String, MediaError> {
    let path = dir.join(INIT_NAME);
    let init = tokio::fs::read(&path).await.map_err(MediaError::io(format!("reading {}", path.display())))?;
    parse(&init).map_err(|e| MediaError::invalid_output(format!("{}: {e}", path.display())))
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
