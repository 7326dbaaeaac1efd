//! Shows [`UploadEvent`]s on stderr: an `indicatif` bar (bytes, rate, ETA) then the pipeline
//! stage on a terminal; one plain line per event otherwise, so logs and pipes stay parseable.
//! The completed upload's facts go to stdout from here too, so they never cut through a bar.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use super::upload::{UploadEvent, UploadPhase};

const BAR_TEMPLATE: &str = "{spinner} uploading [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";
const SPINNER_TEMPLATE: &str = "{spinner} {msg} [{elapsed}]";

/// Renders events until the sending side is dropped.
pub async fn render(mut events: UnboundedReceiver<UploadEvent>) {
    let mut view = if std::io::stderr().is_terminal() { View::Bar(None) } else { View::Plain(Plain::default()) };
    while let Some(event) = events.recv().await {
        view.show(event);
    }
    view.close();
}

enum View {
    /// A terminal: the current bar or spinner, once there is one.
    Bar(Option<ProgressBar>),
    /// Anything else.
    Plain(Plain),
}

impl View {
    fn show(&mut self, event: UploadEvent) {
        if let UploadEvent::Completed { upload_id, video_id, resumed_parts } = &event {
            if let View::Bar(Some(bar)) = self {
                bar.finish_and_clear();
                *self = View::Bar(None);
            }
            println!("upload_id: {upload_id}\nresumed_parts: {resumed_parts}\nvideo_id: {video_id}");
        }
        match self {
            View::Bar(bar) => show_bar(bar, event),
            View::Plain(plain) => plain.show(event),
        }
    }

    fn close(self) {
        if let View::Bar(Some(bar)) = self {
            bar.finish_and_clear();
        }
    }
}

fn show_bar(slot: &mut Option<ProgressBar>, event: UploadEvent) {
    match event {
        UploadEvent::Session { total_bytes, resumed_parts, resumed_bytes, .. } => {
            let bar = styled(ProgressBar::new(total_bytes), BAR_TEMPLATE).with_position(resumed_bytes);
            if resumed_parts > 0 {
                bar.println(format!("resuming: {resumed_parts} parts already on the server"));
            }
            replace(slot, bar);
        }
        UploadEvent::Stage { stage, .. } => {
            let bar = slot.get_or_insert_with(|| styled(ProgressBar::new_spinner(), SPINNER_TEMPLATE));
            bar.set_message(format!("processing: {}", stage.as_deref().unwrap_or("queued")));
        }
        UploadEvent::Phase(UploadPhase::Ready | UploadPhase::Failed) => {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
        event => {
            if let Some(bar) = slot {
                update(bar, event);
            }
        }
    }
}

fn update(bar: &ProgressBar, event: UploadEvent) {
    match event {
        UploadEvent::PartSent { bytes, .. } => bar.inc(bytes),
        UploadEvent::Retrying { delay, error, .. } => bar.println(format!("retrying in {delay:.1?}: {error}")),
        UploadEvent::Session { .. }
        | UploadEvent::Completed { .. }
        | UploadEvent::Stage { .. }
        | UploadEvent::Phase(_) => {}
    }
}

fn styled(bar: ProgressBar, template: &str) -> ProgressBar {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn replace(slot: &mut Option<ProgressBar>, next: ProgressBar) {
    if let Some(previous) = slot.replace(next) {
        previous.finish_and_clear();
    }
}

/// Plain-line state: parts stored so far, and the last stage shown (each is shown once).
#[derive(Default)]
struct Plain {
    stored: u32,
    stage: Option<String>,
}

impl Plain {
    fn show(&mut self, event: UploadEvent) {
        if let Some(line) = self.line(event) {
            eprintln!("{line}");
        }
    }

    fn line(&mut self, event: UploadEvent) -> Option<String> {
        Some(match event {
            UploadEvent::Session { upload_id, part_count, total_bytes, resumed_parts, .. } => {
                self.stored = resumed_parts;
                format!(
                    "upload {upload_id}: {part_count} parts, {total_bytes} bytes, {resumed_parts} already on the server"
                )
            }
            UploadEvent::PartSent { part_number, .. } => {
                self.stored += 1;
                format!("part {part_number} sent ({} stored)", self.stored)
            }
            UploadEvent::Retrying { attempt, delay, error } => format!("retry {attempt} in {delay:.1?}: {error}"),
            UploadEvent::Stage { stage, .. } => {
                let stage = stage.unwrap_or_else(|| "queued".into());
                if self.stage.as_ref() == Some(&stage) {
                    return None;
                }
                self.stage = Some(stage.clone());
                format!("processing: {stage}")
            }
            UploadEvent::Completed { .. } => return None,
            UploadEvent::Phase(phase) => format!("{phase:?}").to_lowercase(),
        })
    }
}
