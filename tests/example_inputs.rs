// SPDX-License-Identifier: MPL-2.0
//! The application examples on inputs and habits of real users (issue 17): AVI files with
//! B-frames, downloads cut short, files without video, missing models, readers of faces-json
//! that leave or read live, RGB video, a face chain slower than its input, Ctrl-C, and the Python
//! example and demo script.

mod common;
mod example_runs;
#[path = "../examples/support/mod.rs"]
mod support;

use common::example;
use example_runs::*;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gst::prelude::*;

/// An AVI as DivX/XviD-era tools wrote them: MPEG-4 part 2 with B-frames (the AVI index holds
/// decode times only, so the decoder repeats timestamps) and MP3 sound.
fn avi_with_b_frames(picture: &Path, frames: u32, out: &Path) {
    launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers={frames} ! video/x-raw,framerate=30/1 \
         ! videoconvert ! avenc_mpeg4 max-bframes=2 ! avimux name=mux ! filesink location={} \
         audiotestsrc num-buffers={frames} samplesperbuffer=1470 ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc \
         ! mpegaudioparse ! mux.",
        picture.display(),
        out.display()
    ));
}

/// Whether timestamps only go up.
fn strictly_increasing(pts: &[gst::ClockTime]) -> bool {
    pts.windows(2).all(|w| w[0] < w[1])
}

#[test]
fn transcode_gives_every_frame_of_an_avi_with_b_frames_its_own_timestamp() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let avi = dir.path().join("divx.avi");
    const FRAMES: usize = 90;
    avi_with_b_frames(&picture, FRAMES as u32, &avi);
    let input = read_media(&avi);
    // The defect's cause, upstream: decoded, this AVI repeats timestamps.
    assert_eq!(input.frames, FRAMES, "{input:?}");
    assert!(!strictly_increasing(&input.pts), "the input repeats timestamps: {:?}", input.pts);
    assert!(input.audio_caps.as_deref().is_some_and(|c| c.starts_with("audio/mpeg")), "{input:?}");

    let model_args = models.args();
    for name in ["out.mp4", "out.mkv"] {
        let out = dir.path().join(name);
        let output = run_example(&binary, &transcode_args(&avi, &out, &picture, &model_args, &[]));
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        let written = read_media(&out);
        assert_eq!(written.frames, FRAMES, "{name}: every frame in the file: {:?}", written.pts);
        assert!(strictly_increasing(&written.pts), "{name}: timestamps only go up: {:?}", written.pts);
        // 90 frames at 30 fps: 3 s, as long as the sound (within a frame).
        let span = written.span().nseconds() as i64;
        assert!((span - 3_000_000_000).abs() <= 34_000_000, "{name}: the video spans {span} ns");
        assert!(written.audio == input.audio, "{name}: the MP3 sound carried over unchanged");
        assert!(stderr.contains(&format!("'{}': {FRAMES} frames", out.display())), "{name}: count:\n{stderr}");
        assert!(stderr.contains("given the next frame's time"), "{name}: the repair is noted:\n{stderr}");
    }
}

/// An MP4 as a download cut short leaves it: the index (moov) is written at the end, so the
/// first half holds frames that nothing describes.
fn truncated_mp4(picture: &Path, dir: &Path) -> PathBuf {
    let full = dir.join("full.mp4");
    clip_with_audio(picture, 90, &full);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.join("cut-short.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    cut
}

#[test]
fn a_truncated_mp4_ends_with_a_message_never_a_hang() {
    let Some(models) = fixture_models() else { return };
    let Some(transcode) = example("transcode") else { return };
    let Some(faces_json) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let cut = truncated_mp4(&picture, dir.path());
    let out = dir.path().join("out.mkv");
    let model_args = models.args();
    let detector = models.detector.to_str().unwrap();
    let runs: [Vec<&str>; 2] =
        [transcode_args(&cut, &out, &picture, &model_args, &[]), vec![cut.to_str().unwrap(), "--detector", detector]];
    // decodebin drops the demuxer's error when it comes at the wrong moment, a race: several
    // runs at once (the load widens the window), ten of each.
    for (binary, args) in [(&transcode, &runs[0]), (&faces_json, &runs[1])] {
        for _ in 0..2 {
            let outputs: Vec<Output> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..5)
                    .map(|_| scope.spawn(|| run_example_within(binary, args, Duration::from_secs(120))))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for output in outputs {
                assert_refused(&output, "damaged or incomplete", &format!("{} {args:?}", binary.display()));
                assert!(text(&output.stderr).contains("cut-short.mp4"), "names the file: {}", text(&output.stderr));
            }
        }
    }
    assert!(!out.exists(), "no unfinished output is left behind");
}

/// The race of the test above, made certain: the demuxer's error is dropped (as decodebin drops
/// it while typefinding), and the examples' input check still ends the wait, naming the cause.
#[test]
fn a_truncated_mp4_whose_error_is_dropped_is_still_noticed() {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = truncated_mp4(&block_picture(dir.path()), dir.path());
    let uri = support::input_uri(cut.to_str().unwrap()).unwrap();
    let video = gst::Caps::builder("video/x-raw").any_features().build();
    let input = support::Input::new(&uri, "cut-short.mp4", &video, true).unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&input.decode).unwrap();
    let bus = pipeline.bus().unwrap();
    bus.set_sync_handler(|_, message| match message.view() {
        gst::MessageView::Error(_) => gst::BusSyncReply::Drop,
        _ => gst::BusSyncReply::Pass,
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        if let Err(reason) = input.check_started(&pipeline) {
            break reason;
        }
        assert!(Instant::now() < deadline, "the wait for a stream that never starts goes on");
        std::thread::sleep(Duration::from_millis(50));
    };
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        reason.contains("'cut-short.mp4' cannot be read: the demuxer (qtdemux) found no playable stream"),
        "{reason}"
    );
}

#[test]
fn every_example_says_no_video_stream_for_sound_only_inputs() {
    let Some(models) = fixture_models() else { return };
    let binaries = [example("transcode"), example("faces-json"), example("live")];
    let [Some(transcode), Some(faces_json), Some(live)] = binaries else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let wav = dir.path().join("sound.wav");
    launch(&format!("audiotestsrc num-buffers=20 ! audioconvert ! wavenc ! filesink location={}", wav.display()));
    let aac = dir.path().join("sound.mp4");
    launch(&format!(
        "audiotestsrc num-buffers=20 ! audioconvert ! avenc_aac ! mp4mux ! filesink location={}",
        aac.display()
    ));
    let out = dir.path().join("out.mp4");
    let model_args = models.args();
    for input in [&wav, &aac] {
        let source = picture.to_str().unwrap();
        let mut live_args = vec!["--source", source, "--input", input.to_str().unwrap(), "--sink", "fakesink"];
        live_args.extend(model_args.iter().map(String::as_str));
        let runs = [
            (&transcode, transcode_args(input, &out, &picture, &model_args, &[])),
            (&faces_json, vec![input.to_str().unwrap(), "--detector", models.detector.to_str().unwrap()]),
            (&live, live_args),
        ];
        for (binary, args) in runs {
            let output = run_example_within(binary, &args, Duration::from_secs(120));
            let what = format!("{} {args:?}", binary.display());
            assert_refused(&output, "has no video stream", &what);
            let stderr = text(&output.stderr);
            assert!(!stderr.contains("missing a plug-in"), "{what}: no plug-in is missing:\n{stderr}");
            assert!(stderr.contains(input.file_name().unwrap().to_str().unwrap()), "{what}: names the file:\n{stderr}");
        }
    }
}

#[test]
fn every_example_lists_every_missing_model_with_its_option() {
    let binaries = [example("transcode"), example("faces-json"), example("live")];
    let [Some(transcode), Some(faces_json), Some(live)] = binaries else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let clip = dir.path().join("clip.mkv");
    still_clip(&picture, 3, "width=640,height=480", &clip);
    let empty = dir.path().join("no-models");
    std::fs::create_dir(&empty).unwrap();
    let out = dir.path().join("out.mp4");
    let (clip_arg, picture_arg, empty_arg) =
        (clip.to_str().unwrap(), picture.to_str().unwrap(), empty.to_str().unwrap());
    let swap_models =
        [("--detector", "det_10g.onnx"), ("--recognizer", "w600k_r50.onnx"), ("--swapper", "inswapper_128.onnx")];
    let enhancer = [("--enhancer", "GFPGANv1.4.onnx")];
    let detector_only = [("--detector", "det_10g.onnx")];
    let runs = [
        (
            &transcode,
            vec![clip_arg, out.to_str().unwrap(), "--source", picture_arg, "--models", empty_arg],
            swap_models.to_vec(),
        ),
        (
            &transcode,
            vec![clip_arg, out.to_str().unwrap(), "--source", picture_arg, "--models", empty_arg, "--enhance"],
            swap_models.iter().chain(&enhancer).copied().collect(),
        ),
        (&live, vec!["--source", picture_arg, "--input", clip_arg, "--models", empty_arg], swap_models.to_vec()),
        (&faces_json, vec![clip_arg, "--models", empty_arg], detector_only.to_vec()),
    ];
    for (binary, args, expected) in runs {
        let output = run_example(binary, &args);
        let what = format!("{} {args:?}", binary.display());
        assert_refused(&output, &format!("{} model file", expected.len()), &what);
        let stderr = text(&output.stderr);
        for (option, file) in expected {
            assert!(
                stderr.contains(&format!("{option}: {file} is not in '{empty_arg}'")),
                "{what}: {option}:\n{stderr}"
            );
        }
        assert!(!stderr.contains("property"), "{what}: options, not element words:\n{stderr}");
    }
    // A file given that is not there is listed with the missing defaults.
    let output = run_example(
        &transcode,
        &[
            clip_arg,
            out.to_str().unwrap(),
            "--source",
            picture_arg,
            "--models",
            empty_arg,
            "--swapper",
            "/nonexistent.onnx",
        ],
    );
    let stderr = text(&output.stderr);
    assert_refused(&output, "3 model files are missing", "transcode --swapper /nonexistent.onnx");
    assert!(stderr.contains("--swapper: '/nonexistent.onnx' is not a file"), "{stderr}");
    assert!(stderr.contains("--detector: det_10g.onnx"), "{stderr}");
}

#[test]
fn faces_json_stops_quietly_when_its_reader_goes() {
    let detector = require_fixture!("scrfd.onnx");
    let Some(binary) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("blocks.mkv");
    still_clip(&block_picture(dir.path()), 300, "width=640,height=480", &clip);
    // `faces-json clip | head -1`: one line read, then the pipe closed.
    let mut child = Command::new(&binary)
        .args([clip.to_str().unwrap(), "--detector", detector.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"frame\":0,"), "{first}");
    drop(stdout);
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let Ok(output) = receiver.recv_timeout(Duration::from_secs(120)) else {
        // SAFETY: kill(2) on the child this test started and has not reaped.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        panic!("faces-json went on after its reader left");
    };
    let output = output.unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "nothing on standard error: {stderr}");
}

/// Serves `body` over HTTP on a local port to one client: the bytes before `pause_at`, then the
/// rest once `resume` says so. Returns the URI.
fn serve_in_two_parts(body: Vec<u8>, pause_at: usize, resume: mpsc::Receiver<()>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}/clip.mkv", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut request = [0u8; 4096];
        let _ = std::io::Read::read(&mut stream, &mut request);
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: video/x-matroska\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(header.as_bytes());
        let _ = stream.write_all(&body[..pause_at]);
        let _ = stream.flush();
        let _ = resume.recv_timeout(RUN_LIMIT);
        let _ = stream.write_all(&body[pause_at..]);
    });
    uri
}

#[test]
fn faces_json_writes_each_line_as_its_frame_is_done() {
    let detector = require_fixture!("scrfd.onnx");
    let Some(binary) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("blocks.mkv");
    still_clip(&block_picture(dir.path()), 12, "width=640,height=480", &clip);
    let body = std::fs::read(&clip).unwrap();
    // Half the file is a few frames: their lines (well under a block of output) must reach the
    // reader while the input still waits for the rest.
    let (resume, resumed) = mpsc::channel();
    let uri = serve_in_two_parts(body.clone(), body.len() / 2, resumed);
    let mut child = Command::new(&binary)
        .args([uri.as_str(), "--detector", detector.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    let first = received.recv_timeout(Duration::from_secs(120));
    // The line must come while the input still waits, not with the output flushed at the end
    // (souphttpsrc gives up on a silent server after 15 s, ending the program).
    let ended_first = child.try_wait().unwrap();
    resume.send(()).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let first = first.unwrap_or_else(|_| panic!("no line while the input waited (block-buffered?):\n{stderr}"));
    assert!(ended_first.is_none(), "the first line came only as faces-json ended (block-buffered?):\n{stderr}");
    assert!(first.starts_with("{\"frame\":0,"), "{first}");
    assert!(status.success(), "{stderr}");
    assert_eq!(1 + received.try_iter().count(), 12, "a line per frame in the end");
}

/// A video of raw RGB frames (a screen recording, a render, a lossless capture) in Matroska: a
/// moving, noisy picture, so that the bit rate shows in the file size.
fn rgb_clip(frames: u32, out: &Path) {
    launch(&format!(
        "videotestsrc pattern=snow num-buffers={frames} ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 \
         ! matroskamux ! filesink location={}",
        out.display()
    ));
}

#[test]
fn transcode_encodes_4_2_0_at_a_bit_rate_for_the_frame_size() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let clip = dir.path().join("rgb.mkv");
    rgb_clip(60, &clip);
    let model_args = models.args();
    let mut sizes = Vec::new();
    for (name, extra, chroma) in [
        ("auto.mp4", &[][..], "4:2:0"),
        ("low.mp4", &["--bitrate", "300"][..], "4:2:0"),
        ("high.mp4", &["--bitrate", "4000"][..], "4:2:0"),
        ("kept.mkv", &["--keep-chroma"][..], "4:4:4"),
    ] {
        let out = dir.path().join(name);
        let output = run_example(&binary, &transcode_args(&clip, &out, &picture, &model_args, extra));
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        let caps = read_media(&out).video_caps.unwrap_or_default();
        assert!(caps.contains(&format!("chroma-format=(string){chroma}")), "{name}: {chroma}: {caps}");
        if chroma == "4:2:0" {
            assert!(!caps.contains("4:4:4"), "{name}: a profile every player plays: {caps}");
        }
        sizes.push(std::fs::metadata(&out).unwrap().len());
        if extra.is_empty() {
            // 640×480 at 30 fps × 0.1 bit per pixel.
            assert!(stderr.contains("x264enc at 922 kbit/s for 640x480 (auto"), "{name}: {stderr}");
        }
    }
    // Two seconds of video: the file holds about what the bit rate says (x264enc's default rate
    // control is constant bit rate), far from its 2048 kbit/s default. A rate too low for the
    // noise leaves x264 at its coarsest quantiser, under the rate: only "smaller" holds there.
    let expected = |kbits: u64| kbits * 1000 / 8 * 2;
    for (size, kbits) in [(sizes[0], 922u64), (sizes[2], 4000)] {
        let ratio = size as f64 / expected(kbits) as f64;
        assert!((0.6..1.4).contains(&ratio), "{kbits} kbit/s: {size} bytes in 2 s (sizes {sizes:?})");
    }
    assert!(sizes[1] < sizes[0] / 2, "--bitrate 300 gives a smaller file than auto's 922: {sizes:?}");
}

#[test]
fn live_counts_dropped_frames_and_exits_130_on_ctrl_c() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("live") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    // 500 frames a second: more than the face chain takes on the CPU, so the queue before the
    // detector drops frames, as it does when a camera outruns a slow GPU.
    let fast_clip = |frames: u32, name: &str| {
        let clip = dir.path().join(name);
        launch(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers={frames} \
             ! video/x-raw,framerate=500/1 ! videoconvert ! jpegenc quality=90 ! matroskamux ! filesink location={}",
            picture.display(),
            clip.display()
        ));
        clip
    };
    let live_args = |clip: &Path| {
        let mut args = vec![
            "--source".to_string(),
            picture.display().to_string(),
            "--input".into(),
            clip.display().to_string(),
            "--sink".into(),
            "fakesink".into(),
        ];
        args.extend(models.args());
        args
    };
    let number_before = |line: &str, word: &str| -> u64 {
        let before = line.split(word).next().unwrap().trim_end();
        before.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("{word} in: {line}"))
    };

    // To its end: every frame of the clip is shown or counted as dropped.
    const FRAMES: u64 = 1500;
    let short = fast_clip(FRAMES as u32, "short.mkv");
    let args = live_args(&short);
    let output = run_example(&binary, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", text(&output.stderr));
    let seconds: Vec<&str> = stdout.lines().filter(|l| l.contains(" fps, latency ")).collect();
    assert!(seconds.iter().all(|l| l.ends_with(" dropped")), "each second's line counts drops:\n{stdout}");
    let totals = stdout.lines().find(|l| l.starts_with("live: in all ")).unwrap_or_else(|| panic!("{stdout}"));
    let (shown, dropped) = (number_before(totals, " frames shown"), number_before(totals, " dropped"));
    assert!(dropped > 0, "frames dropped and counted: {totals}");
    assert_eq!(shown + dropped, FRAMES, "every frame shown or counted dropped: {totals}");
    let per_second: u64 = seconds.iter().map(|l| number_before(l, " dropped")).sum();
    assert!(per_second <= dropped, "the seconds' drops add up to no more than the total:\n{stdout}");

    // Ctrl-C: the same end as transcode's, exit status 130.
    // 30 s at 30 fps: far longer than the test needs, it stops it before.
    let long = dir.path().join("long.mkv");
    still_clip(&picture, 900, "width=640,height=480", &long);
    let mut child = Command::new(&binary)
        .args(live_args(&long))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        seen.push(line.clone());
        if line.contains(" fps, latency ") {
            break;
        }
    }
    // Its last lines are read too: a closed pipe would end it differently.
    std::thread::spawn(move || lines.for_each(drop));
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C ends with 130, as in transcode: {seen:#?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let help = text(&run_example(&binary, &["--help"]).stdout);
    assert!(help.contains("exit status 130"), "--help says so:\n{help}");
}

#[test]
fn make_demo_writes_its_video_where_git_ignores_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/demo.sh")).unwrap();
    let out = script
        .lines()
        .find_map(|l| l.strip_prefix("OUT=${DEMO_OUT:-"))
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("scripts/demo.sh sets OUT=${DEMO_OUT:-…}");
    // The plain entries anchored at the top (`/target`): a file, or a folder and what it holds.
    let gitignore = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    let ignored: Vec<&str> = gitignore
        .lines()
        .filter(|l| l.starts_with('/') && !l.contains('*'))
        .map(|l| l.trim_start_matches('/').trim_end_matches('/'))
        .collect();
    assert!(
        ignored.iter().any(|entry| out == *entry || out.strip_prefix(entry).is_some_and(|rest| rest.starts_with('/'))),
        "make demo writes '{out}', which none of .gitignore's entries covers: {ignored:?}"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains(&format!("({out})")), "README.md names where make demo writes ({out})");
}

#[test]
fn the_python_example_prints_bus_warnings() {
    let detector = require_fixture!("scrfd.onnx");
    let python = "/usr/bin/python3";
    let bindings = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstVideo', '1.0'); \
         from gi.repository import Gst, GstVideo";
    if !Command::new(python).args(["-c", bindings]).output().is_ok_and(|o| o.status.success()) {
        common::skip("Debian's PyGObject with the GStreamer bindings is missing (scripts/setup-debian.sh installs it)");
        return;
    }
    // The plugin file cargo builds beside this test's binaries (target/<profile>/libgstdlc.so).
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    if !profile_dir.join("libgstdlc.so").is_file() {
        common::skip(&format!("no libgstdlc.so in {} (cargo build --lib)", profile_dir.display()));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    // CUDA on a machine without it: the detector runs on the CPU, with a warning on the bus.
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/faces.py"))
        .arg(&picture)
        .arg(format!("model-file={}", detector.display()))
        .arg("execution-provider=cuda")
        .env("GST_PLUGIN_PATH", &profile_dir)
        .env("GST_REGISTRY", dir.path().join("registry.bin"))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    if !stderr.contains("running on the CPU instead") && text(&output.stdout).contains("message pts") {
        // A machine with CUDA gives no warning to show; the check needs one without.
        let cuda = Command::new(python).args(["-c", "import ctypes; ctypes.CDLL('libcuda.so.1')"]).output();
        if cuda.is_ok_and(|o| o.status.success()) {
            eprintln!("skipped: this machine has CUDA, so execution-provider=cuda gives no warning");
            return;
        }
    }
    assert!(stderr.contains("faces.py: warning: dlcdetect"), "the warning is printed:\n{stderr}");
    assert!(stderr.contains("running on the CPU instead"), "{stderr}");
    assert!(text(&output.stdout).contains("message pts"), "and the faces still come");
}
