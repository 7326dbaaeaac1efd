//! Real-world phone media through the whole pipeline, on both backends: rotation, HDR, no audio,
//! odd sizes, 5.1 audio, variable frame rate. (The media engine's own tests cover each in depth.)

use crate::helpers::{Backend, TestApp, ffmpeg_output, spawn_app, token};
use crate::on_both_backends;

on_both_backends!(phone_media_variants_publish_correct_ladders);

/// One stream's fields from ffprobe, as `key=value` lines.
fn probe_stream(bytes: &[u8], selector: &str, entries: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("media.mp4");
    std::fs::write(&path, bytes).expect("write");
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", selector, "-show_entries", entries, "-of", "default=nw=1"])
        .arg(&path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestApp {
    /// Uploads `clip`, runs the pipeline, and returns the master playlist and the first rung's
    /// init + first segment.
    async fn publish(&self, clip: &[u8]) -> (String, Vec<u8>, Option<Vec<u8>>) {
        let (_, video_id) = self.upload(&token("phone"), clip).await;
        self.drain().await;
        let video = self.video(&video_id).await;
        assert_eq!(video.status.as_str(), "ready", "{:?}", video.failed_reason);
        let root = format!("packaged/{video_id}/hls");
        let master = self.text(&format!("{root}/master.m3u8")).await;
        let rung = master
            .lines()
            .find(|l| l.ends_with("/index.m3u8") && !l.starts_with('#'))
            .expect("a variant")
            .trim_end_matches("index.m3u8")
            .to_owned();
        let video_segment = [
            self.object(&format!("{root}/{rung}init.mp4")).await,
            self.object(&format!("{root}/{rung}seg-00001.m4s")).await,
        ]
        .concat();
        let audio_segment = if self.keys_under(&format!("{root}/audio")).await.is_empty() {
            None
        } else {
            Some(
                [
                    self.object(&format!("{root}/audio/init.mp4")).await,
                    self.object(&format!("{root}/audio/seg-00001.m4s")).await,
                ]
                .concat(),
            )
        };
        (master, video_segment, audio_segment)
    }
}

async fn phone_media_variants_publish_correct_ladders(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let landscape = dir.path().join("landscape.mp4");
    std::fs::write(
        &landscape,
        ffmpeg_output(
            "l.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=30:duration=1",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ],
        ),
    )
    .expect("write");
    let landscape = landscape.to_string_lossy().into_owned();

    let rotated = ffmpeg_output("r.mp4", &["-i", &landscape, "-c", "copy", "-metadata:s:v:0", "rotate=90"]);
    let (master, segment, _) = app.publish(&rotated).await;
    assert!(master.contains("RESOLUTION=180x320"), "rotation is applied to the pixels: {master}");
    let side = probe_stream(&segment, "v:0", "stream_side_data=rotation:stream_tags=rotate");
    assert!(!side.contains("rotat"), "no rotation metadata left: {side}");

    let hlg = ffmpeg_output(
        "h.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=180x320:rate=30:duration=1",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "arib-std-b67",
            "-colorspace",
            "bt2020nc",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
        ],
    );
    let (master, segment, _) = app.publish(&hlg).await;
    assert!(master.contains("CODECS=\"avc1.64"), "HEVC HLG becomes H.264 High: {master}");
    let format = probe_stream(&segment, "v:0", "stream=pix_fmt,color_transfer,color_primaries");
    assert!(
        format.contains("pix_fmt=yuv420p\n") && format.contains("color_transfer=bt709"),
        "8-bit SDR BT.709: {format}"
    );

    let silent_odd = ffmpeg_output(
        "s.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=201x357:rate=30:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let (master, _, audio) = app.publish(&silent_odd).await;
    assert!(master.contains("RESOLUTION=200x356"), "odd sizes become even, never upscaled: {master}");
    assert!(
        !master.contains("mp4a") && !master.contains("TYPE=AUDIO") && audio.is_none(),
        "no audio track declared: {master}"
    );

    let surround_vfr = ffmpeg_output(
        "v.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=180x320:rate=30:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=48000:duration=2",
            "-filter_complex",
            "[0:v]setpts='PTS+0.02*sin(N)/TB'[v];[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]",
            "-map",
            "[v]",
            "-map",
            "[a]",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    );
    let (master, segment, audio) = app.publish(&surround_vfr).await;
    assert!(master.contains("FRAME-RATE=30.000"), "variable frame rate becomes constant: {master}");
    let rate = probe_stream(&segment, "v:0", "stream=r_frame_rate,avg_frame_rate");
    assert!(rate.contains("r_frame_rate=30/1"), "{rate}");
    let audio = audio.unwrap_or(segment);
    let channels = probe_stream(&audio, "a:0", "stream=channels,sample_rate,profile");
    assert!(
        channels.contains("channels=2") && channels.contains("sample_rate=48000") && channels.contains("profile=LC"),
        "5.1 becomes AAC-LC stereo 48 kHz: {channels}"
    );
}
