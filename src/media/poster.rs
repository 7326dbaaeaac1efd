//! A JPEG poster frame, upright and SDR, no larger than the top rung.

use std::path::Path;
use std::time::Duration;

use super::Tools;
use super::error::MediaError;
use super::filters::{Target, top_chain};
use super::ladder::fit_short_side;
use super::probe::ProbedMedia;
use super::process::Invocation;
use super::transcode::input_args;

/// Short side of the poster, unless the source is smaller.
const POSTER_SHORT_SIDE: u32 = 720;
/// The poster is taken this far in, or at mid-clip for shorter clips (first frames are often
/// black or a fade-in).
const POSTER_OFFSET: Duration = Duration::from_secs(1);

/// Write a JPEG thumbnail of `input` to `out_jpeg` (atomically), rotation and tone mapping
/// applied, within `timeout`.
pub async fn poster(
    tools: &Tools,
    input: &Path,
    probed: &ProbedMedia,
    out_jpeg: &Path,
    timeout: Duration,
) -> Result<(), MediaError> {
    let staging = out_jpeg.with_extension("jpeg.tmp");
    let offset = POSTER_OFFSET.min(probed.duration() / 2);
    let (width, height) = fit_short_side(probed.width, probed.height, POSTER_SHORT_SIDE);
    let graph = format!("[0:{}]{}[poster]", probed.video_stream, top_chain(probed, width, height, Target::Jpeg));
    Invocation::new(&tools.ffmpeg, "poster", tools.limits)
        .args(["-ss", &format!("{:.3}", offset.as_secs_f64())])
        .args(input_args(input, probed))
        .args(["-filter_complex", &graph, "-map", "[poster]"])
        .args(["-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3"])
        .args(["-f", "image2", "-update", "1"])
        .arg(&staging)
        .run(timeout)
        .await?
        .success()?;
    if !tokio::fs::try_exists(&staging).await.unwrap_or(false) {
        return Err(MediaError::invalid_output("ffmpeg wrote no poster frame"));
    }
    tokio::fs::rename(&staging, out_jpeg).await.map_err(MediaError::io(format!("renaming {}", staging.display())))
}
