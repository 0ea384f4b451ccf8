// SPDX-License-Identifier: MPL-2.0
//! What the three application examples (faces-json, transcode, live) share: option parsing, the
//! plugin's registration, model options, the decoded input and its checks, bus messages as text
//! and Ctrl-C.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gstdlc::models::swapper::SwapperFamilyChoice;

/// The options of one command line: `--name value`, `--name=value` and `--flag`, and the
/// positional arguments in order. A name given twice keeps the last value.
pub struct Args {
    program: &'static str,
    values: HashMap<String, String>,
    flags: Vec<String>,
    pub positional: Vec<String>,
}

impl Args {
    /// Parses `std::env::args()`: `valued` are the options that take a value, `flags` those that
    /// do not. `Ok(None)` when `--help`/`-h` was asked for (the caller prints its usage).
    pub fn parse(program: &'static str, valued: &[&str], flags: &[&str]) -> Result<Option<Args>, String> {
        let mut args = Args { program, values: HashMap::new(), flags: Vec::new(), positional: Vec::new() };
        let mut rest = std::env::args().skip(1);
        while let Some(arg) = rest.next() {
            if arg == "--help" || arg == "-h" {
                return Ok(None);
            }
            if arg == "--" {
                args.positional.extend(rest.by_ref());
                break;
            }
            let Some(option) = arg.strip_prefix("--") else {
                args.positional.push(arg);
                continue;
            };
            let (name, inline) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (option, None),
            };
            if flags.contains(&name) {
                if inline.is_some() {
                    return Err(format!("--{name} takes no value ({program} --help lists the options)"));
                }
                args.flags.push(name.to_string());
            } else if valued.contains(&name) {
                let value = match inline {
                    Some(value) => value,
                    None => rest.next().ok_or_else(|| format!("--{name} needs a value"))?,
                };
                args.values.insert(name.to_string(), value);
            } else {
                return Err(format!("unknown option --{name} ({program} --help lists the options)"));
            }
        }
        Ok(Some(args))
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A number option, or `default` when absent.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.value(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| format!("--{name} expects a number, got '{text}'")),
        }
    }

    /// A file that must exist (a picture, a model, a map).
    pub fn existing_file(&self, name: &str) -> Result<Option<PathBuf>, String> {
        self.value(name).map(|text| existing_file(&format!("--{name}"), text)).transpose()
    }

    pub fn program(&self) -> &'static str {
        self.program
    }
}

pub fn existing_file(what: &str, text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.is_file() { Ok(path) } else { Err(format!("{what}: '{text}' is not a file (no such file?)")) }
}

/// Initialises GStreamer and registers the `dlc` plugin from this program's own copy of the
/// crate, the way an application linking the `gstdlc` rlib does (no plugin file, no scanning).
pub fn init() -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer does not initialise: {e}"))?;
    gstdlc::plugin_register_static().map_err(|e| format!("the dlc plugin does not register: {e}"))
}

/// Creates an element, saying which package provides it when it is missing.
pub fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!("the GStreamer element '{factory}' is missing (gst-inspect-1.0 {factory}; see scripts/setup-debian.sh)")
    })
}

/// Whether a number lies within the range `pspec` declares (other kinds: whether it parsed).
fn in_range(pspec: &glib::ParamSpec, value: &glib::Value) -> bool {
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        return value.get::<u32>().is_ok_and(|v| (p.minimum()..=p.maximum()).contains(&v));
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        return value.get::<i32>().is_ok_and(|v| (p.minimum()..=p.maximum()).contains(&v));
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        return value.get::<f64>().is_ok_and(|v| (p.minimum()..=p.maximum()).contains(&v));
    }
    true
}

/// Sets a property from text the way gst-launch does, with an error instead of a panic for an
/// unknown property, a value of the wrong kind or one outside the property's range.
pub fn set_from_str(element: &gst::Element, name: &str, value: &str) -> Result<(), String> {
    let factory = element.factory().map(|f| f.name().to_string()).unwrap_or_default();
    let pspec = element.find_property(name).ok_or_else(|| format!("{factory} has no property '{name}'"))?;
    let parsed = glib::Value::deserialize_with_pspec(value, &pspec)
        .map_err(|_| format!("'{value}' is not a valid value for {name} (gst-inspect-1.0 lists the choices)"))?;
    if !in_range(&pspec, &parsed) {
        return Err(format!("'{value}' is out of range for {name} (gst-inspect-1.0 {factory} gives the range)"));
    }
    element.set_property_from_value(name, &parsed);
    Ok(())
}

/// A model an example runs, with the option that names its file.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Model {
    Detector,
    Recognizer,
    Swapper,
    Enhancer,
    Occluder,
    Parser,
}

impl Model {
    pub fn option(self) -> &'static str {
        match self {
            Model::Detector => "detector",
            Model::Recognizer => "recognizer",
            Model::Swapper => "swapper",
            Model::Enhancer => "enhancer",
            Model::Occluder => "occluder",
            Model::Parser => "parser",
        }
    }

    /// The file the elements look for in the model directory when no path is given.
    pub fn default_name(self) -> &'static str {
        match self {
            Model::Detector => "det_10g.onnx",
            Model::Recognizer => "w600k_r50.onnx",
            Model::Swapper => "inswapper_128.onnx",
            Model::Enhancer => "GFPGANv1.4.onnx",
            Model::Occluder => "xseg_1.onnx",
            Model::Parser => "bisenet_resnet_34.onnx",
        }
    }

    /// Other names the element takes in the model directory instead (dlcswap prefers the
    /// half-precision swapper on a GPU).
    fn alternative_names(self) -> &'static [&'static str] {
        match self {
            Model::Swapper => &["inswapper_128_fp16.onnx"],
            _ => &[],
        }
    }

    fn usage(self) -> &'static str {
        match self {
            Model::Detector => {
                "  --detector PATH      SCRFD face detector (dlcdetect model-file, dlcswap detector-model)\n"
            }
            Model::Recognizer => "  --recognizer PATH    ArcFace recogniser (dlcswap recognition-model)\n",
            Model::Swapper => "  --swapper PATH       inswapper_128 (dlcswap model-file)\n",
            Model::Enhancer => "  --enhancer PATH      face restorer, e.g. GFPGANv1.4.onnx (dlcenhance model-file)\n",
            Model::Occluder => "  --occluder PATH      XSeg occluder for --masks occlusion (dlcswap occluder-model)\n",
            Model::Parser => "  --parser PATH        BiSeNet face parser for --masks region (dlcswap parser-model)\n",
        }
    }

    /// The dlcswap property that names this model's file.
    fn swap_property(self) -> &'static str {
        match self {
            Model::Detector => "detector-model",
            Model::Recognizer => "recognition-model",
            Model::Swapper => "model-file",
            Model::Enhancer => "model-file",
            Model::Occluder => "occluder-model",
            Model::Parser => "parser-model",
        }
    }
}

/// The options of the swapping examples that make faces as FaceFusion does (README, "Sharper
/// faces, and hands in front of the face"), each setting the dlcswap property it names.
pub const QUALITY_OPTIONS: [(&str, &str); 3] =
    [("swapper-family", "swapper-family"), ("pixel-boost", "pixel-boost"), ("masks", "mask-types")];

/// The `--help` text of [`QUALITY_OPTIONS`].
pub const QUALITY_USAGE: &str = "\
Sharper faces, and hands in front of them (FaceFusion's way; README, \"Sharper faces\"):
  --swapper-family F   the swapper's family (dlcswap swapper-family: hyperswap, simswap, ghost, ...);
                       without --swapper, FaceFusion's first model of F in the model folder
                       (e.g. hyperswap_1a_256.onnx)
  --pixel-boost SIZE   crop faces at SIZE px and swap them in tiles of the model's size, or auto
                       (the smallest size the model allows that covers the face: dlcswap pixel-boost)
  --masks TYPES        FaceFusion's masks, combined: box, occlusion, region, area, e.g.
                       box+occlusion+region (dlcswap mask-types); occlusion needs the occluder,
                       region the parser (below)
";

/// The models the swapping examples run with these options: detector, recogniser and swapper,
/// the restorer with `enhance`, and the mask models `--masks` asks for.
pub fn swap_models_used(args: &Args, enhance: bool) -> Vec<Model> {
    let masks: Vec<String> = args
        .value("masks")
        .map(|m| m.split(['+', '|', ',']).map(|t| t.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let mut used = vec![Model::Detector, Model::Recognizer, Model::Swapper];
    used.extend(enhance.then_some(Model::Enhancer));
    used.extend(masks.iter().any(|m| m == "occlusion").then_some(Model::Occluder));
    used.extend(masks.iter().any(|m| m == "region").then_some(Model::Parser));
    used
}

/// The models of the face-swapping examples (transcode, live); faces-json runs the detector only.
pub const SWAP_MODELS: [Model; 6] =
    [Model::Detector, Model::Recognizer, Model::Swapper, Model::Enhancer, Model::Occluder, Model::Parser];

/// The model options of a program running `models`: `--models`, one per model, `--provider`.
pub fn model_options(models: &[Model]) -> Vec<&'static str> {
    let mut options = vec!["models"];
    options.extend(models.iter().map(|m| m.option()));
    options.push("provider");
    options
}

/// The `--help` text of [`model_options`].
pub fn model_usage(models: &[Model]) -> String {
    let defaults = models.iter().map(|m| m.default_name()).collect::<Vec<_>>().join(", ");
    let mut usage = format!(
        "Models (unset: the elements' default files in $DLC_MODELS_DIR, else ~/.local/share/gstdlc/models,\n\
         i.e. {defaults}; models/README.md):\n\
         \x20 --models DIR         look the default file names up in DIR instead\n"
    );
    for model in models {
        usage.push_str(model.usage());
    }
    usage.push_str(
        "  --provider NAME      ONNX Runtime execution provider of every element: auto, cpu, cuda,\n\
         \x20                      tensorrt, rocm, ... (default auto)\n",
    );
    usage
}

/// The model files chosen by [`model_options`] (`None` leaves an element's default), and the
/// values of the [`QUALITY_OPTIONS`] given.
pub struct Models {
    pub detector: Option<PathBuf>,
    pub recognizer: Option<PathBuf>,
    pub swapper: Option<PathBuf>,
    pub enhancer: Option<PathBuf>,
    pub occluder: Option<PathBuf>,
    pub parser: Option<PathBuf>,
    pub provider: Option<String>,
    quality: Vec<(&'static str, &'static str, String)>,
}

impl Models {
    /// Reads the model options and checks that every model in `used` is there: the file given,
    /// else its default name in `--models DIR` or the elements' model directory. All the missing
    /// files are listed at once, each with the option that names it.
    pub fn from_args(args: &Args, used: &[Model]) -> Result<Models, String> {
        let dir = args.value("models").map(PathBuf::from);
        if let Some(dir) = &dir
            && !dir.is_dir()
        {
            return Err(format!("--models: '{}' is not a folder", dir.display()));
        }
        let lookup_dir = dir.clone().unwrap_or_else(gstdlc::runtime::default_models_dir);
        // Another swapper family, with no swapper named, means FaceFusion's first file of it.
        let family = match args.value("swapper-family") {
            Some(nick) => Some(SwapperFamilyChoice::from_nick(nick.trim()).ok_or_else(|| {
                let all: Vec<&str> = SwapperFamilyChoice::ALL.iter().map(|c| c.nick()).collect();
                format!("--swapper-family '{nick}': one of {}", all.join(", "))
            })?),
            None => None,
        };
        let family_file = family.and_then(SwapperFamilyChoice::spec).map(|spec| format!("{}.onnx", spec.models[0]));
        let mut missing = Vec::new();
        let mut pick = |model: Model| -> Option<PathBuf> {
            if !used.contains(&model) {
                return None;
            }
            let option = model.option();
            if let Some(text) = args.value(option) {
                let path = PathBuf::from(text);
                if !path.is_file() {
                    missing.push(format!("  --{option}: '{text}' is not a file (no such file?)"));
                }
                return Some(path);
            }
            let (default, alternatives) = match (model, &family_file) {
                (Model::Swapper, Some(file)) => (file.as_str(), &[][..]),
                _ => (model.default_name(), model.alternative_names()),
            };
            let found = std::iter::once(default)
                .chain(alternatives.iter().copied())
                .any(|name| lookup_dir.join(name).is_file());
            if !found {
                missing.push(format!("  --{option}: {default} is not in '{}'", lookup_dir.display()));
            }
            // Without --models the element looks the file up itself (and may prefer a variant).
            dir.as_ref().map(|d| d.join(default))
        };
        let mut models = Models {
            detector: pick(Model::Detector),
            recognizer: pick(Model::Recognizer),
            swapper: pick(Model::Swapper),
            enhancer: pick(Model::Enhancer),
            occluder: pick(Model::Occluder),
            parser: pick(Model::Parser),
            provider: args.value("provider").map(str::to_string),
            quality: Vec::new(),
        };
        for (option, property) in QUALITY_OPTIONS {
            if let Some(value) = args.value(option) {
                let value = if option == "pixel-boost" && value.trim() == "auto" { "0" } else { value.trim() };
                models.quality.push((option, property, value.to_string()));
            }
        }
        if missing.is_empty() {
            return Ok(models);
        }
        Err(format!(
            "{} model file{} missing:\n{}\nPut the files in '{}', name another folder with --models DIR, or give each \
             file with its option (models/README.md says where to get them).",
            missing.len(),
            if missing.len() == 1 { " is" } else { "s are" },
            missing.join("\n"),
            lookup_dir.display()
        ))
    }

    fn set_path(element: &gst::Element, property: &str, path: &Option<PathBuf>) {
        if let Some(path) = path {
            element.set_property(property, path.display().to_string());
        }
    }

    fn set_provider(&self, element: &gst::Element) -> Result<(), String> {
        match &self.provider {
            Some(provider) => {
                set_from_str(element, "execution-provider", provider).map_err(|e| format!("--provider: {e}"))
            }
            None => Ok(()),
        }
    }

    pub fn detect(&self) -> Result<gst::Element, String> {
        let element = make("dlcdetect")?;
        Self::set_path(&element, "model-file", &self.detector);
        self.set_provider(&element)?;
        Ok(element)
    }

    pub fn swap(&self) -> Result<gst::Element, String> {
        let element = make("dlcswap")?;
        for (model, path) in [
            (Model::Swapper, &self.swapper),
            (Model::Detector, &self.detector),
            (Model::Recognizer, &self.recognizer),
            (Model::Occluder, &self.occluder),
            (Model::Parser, &self.parser),
        ] {
            Self::set_path(&element, model.swap_property(), path);
        }
        for (option, property, value) in &self.quality {
            set_from_str(&element, property, value).map_err(|e| format!("--{option}: {e}"))?;
        }
        self.set_provider(&element)?;
        Ok(element)
    }

    pub fn enhance(&self) -> Result<gst::Element, String> {
        let element = make("dlcenhance")?;
        Self::set_path(&element, "model-file", &self.enhancer);
        self.set_provider(&element)?;
        Ok(element)
    }
}

/// A URI for `text`: taken as it is when it has a scheme (`file:///…`, `rtsp://…`), else a
/// path that must name an existing file.
pub fn input_uri(text: &str) -> Result<String, String> {
    let has_scheme = text.split_once("://").is_some_and(|(scheme, _)| {
        scheme.len() > 1 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return Ok(text.to_string());
    }
    let path = Path::new(text);
    if !path.exists() {
        return Err(format!("input '{text}': no such file"));
    }
    if !path.is_file() {
        return Err(format!("input '{text}' is not a file"));
    }
    let absolute = path.canonicalize().map_err(|e| format!("input '{text}': {e}"))?;
    glib::filename_to_uri(&absolute, None).map(|u| u.to_string()).map_err(|e| format!("input '{text}': {e}"))
}

/// How long a decoded input may take to show its streams before the program gives up on it.
/// Typefinding and demuxing a file take well under a second; the models load before this
/// clock starts (in the state change to PLAYING), so it does not count them.
const STREAMS_WITHIN: Duration = Duration::from_secs(30);
/// How long a demuxer must stay stopped without a stream before [`Input::check_started`] calls
/// the input unreadable. One look is not enough: it can catch qtdemux paused and streamless a
/// moment before it exposes a stream (2 runs in 180 of a sound-only MP4 here; it failed CI).
const GAVE_UP_FOR: Duration = Duration::from_secs(2);

/// A file or URI decoded by uridecodebin, with what the three examples check about it: that its
/// streams start at all (a truncated file can leave decodebin waiting forever, see
/// [`Input::check_started`]) and that one of them is video.
pub struct Input {
    pub decode: gst::Element,
    /// The input as the user wrote it, for messages.
    name: String,
    /// Set when decodebin exposes its first stream (or tells that there are none).
    started: Arc<AtomicBool>,
    /// The media types of the streams exposed, for "no video stream" messages.
    kinds: Arc<Mutex<Vec<String>>>,
    waiting_since: Mutex<Option<Instant>>,
    /// Since when a demuxer has been seen stopped without a stream, in every look.
    gave_up_since: Mutex<Option<Instant>>,
}

impl Input {
    /// uridecodebin for `uri`, decoding video to raw and stopping at `caps` for the rest. With
    /// `keep_audio_compressed` audio streams come out as the demuxer gives them: decoding audio
    /// that is thrown away costs time, and raw audio (a WAV) would send decodebin looking for a
    /// "decoder" that cannot exist.
    pub fn new(uri: &str, name: &str, caps: &gst::Caps, keep_audio_compressed: bool) -> Result<Input, String> {
        let decode = make("uridecodebin")?;
        decode.set_property("uri", uri);
        decode.set_property("caps", caps);
        decode.set_property("expose-all-streams", false);
        if keep_audio_compressed {
            decode.connect("autoplug-continue", false, |values| {
                let audio = values
                    .get(2)
                    .and_then(|v| v.get::<gst::Caps>().ok())
                    .and_then(|caps| caps.structure(0).map(|s| s.name().starts_with("audio/")))
                    .unwrap_or(false);
                Some((!audio).to_value())
            });
        }
        let started = Arc::new(AtomicBool::new(false));
        let kinds = Arc::new(Mutex::new(Vec::new()));
        let (seen, pad_started) = (kinds.clone(), started.clone());
        decode.connect_pad_added(move |_, pad| {
            pad_started.store(true, Ordering::SeqCst);
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            if let Some(kind) = caps.structure(0).map(|s| s.name().to_string()) {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(kind);
            }
        });
        let ended = started.clone();
        decode.connect_no_more_pads(move |_| ended.store(true, Ordering::SeqCst));
        Ok(Input {
            decode,
            name: name.to_string(),
            started,
            kinds,
            waiting_since: Mutex::new(None),
            gave_up_since: Mutex::new(None),
        })
    }

    /// Posts an error "'IN' has no video stream" when decodebin has exposed all its streams and
    /// none reached `video_entry`.
    pub fn expect_video(&self, video_entry: gst::Pad) {
        let (name, kinds) = (self.name.clone(), self.kinds.clone());
        self.decode.connect_no_more_pads(move |decode| {
            if !video_entry.is_linked() {
                let kinds = kinds.lock().unwrap_or_else(|e| e.into_inner()).join(", ");
                let found = if kinds.is_empty() { "no stream at all".to_string() } else { format!("only {kinds}") };
                // The explanation is the message itself: applications show the message.
                gst::element_error!(
                    decode,
                    gst::StreamError::WrongType,
                    ("'{}' has no video stream (it holds {}): give a video file", name, found)
                );
            }
        });
    }

    /// Links the first video stream to `video_entry` and every other stream to a fakesink of its
    /// own (an unlinked stream would stop the demuxer), and expects a video stream.
    pub fn link_video(&self, pipeline: &gst::Pipeline, video_entry: gst::Pad) {
        let pipeline = pipeline.downgrade();
        let entry = video_entry.clone();
        self.decode.connect_pad_added(move |decode, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let video = caps.structure(0).is_some_and(|s| s.name().starts_with("video/"));
            if video && !entry.is_linked() {
                if let Err(e) = pad.link(&entry) {
                    gst::element_error!(decode, gst::CoreError::Negotiation, ["cannot link the video stream: {}", e]);
                }
                return;
            }
            let Some(pipeline) = pipeline.upgrade() else { return };
            if let Err(reason) = discard(&pipeline, pad) {
                gst::element_error!(decode, gst::CoreError::Pad, ["{}", reason]);
            }
        });
        self.expect_video(video_entry);
    }

    /// Called every turn of the bus loop: an error when the input never shows its streams. A
    /// demuxer that found nothing playable (qtdemux on an MP4 cut short before its index) posts
    /// an error, but decodebin drops it when it comes while decodebin is still setting the
    /// demuxer up; the demuxer's task then sits paused, without a stream, forever. That is
    /// recognised once it has lasted [`GAVE_UP_FOR`]; anything else that shows no stream gets
    /// [`STREAMS_WITHIN`].
    pub fn check_started(&self, pipeline: &gst::Pipeline) -> Result<(), String> {
        if self.started.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut since = self.waiting_since.lock().unwrap_or_else(|e| e.into_inner());
        let waited = since.get_or_insert_with(Instant::now).elapsed();
        let gave_up = gave_up_demuxer(pipeline);
        let mut gave_up_since = self.gave_up_since.lock().unwrap_or_else(|e| e.into_inner());
        *gave_up_since = gave_up.as_ref().map(|_| gave_up_since.unwrap_or_else(Instant::now));
        let settled = gave_up_since.is_some_and(|since| since.elapsed() >= GAVE_UP_FOR);
        if let Some(demuxer) = gave_up.filter(|_| settled) {
            return Err(format!(
                "'{}' cannot be read: the demuxer ({demuxer}) found no playable stream in it and stopped. The file is \
                 damaged or incomplete (a download or copy cut short?)",
                self.name
            ));
        }
        if waited > STREAMS_WITHIN {
            return Err(format!(
                "'{}' showed no stream within {} s: GStreamer cannot read it (a damaged or incomplete file, or a \
                 source that sends nothing)",
                self.name,
                STREAMS_WITHIN.as_secs()
            ));
        }
        Ok(())
    }

    /// An error message as one line; an error from a demuxer before any stream started says
    /// that the file is at fault.
    pub fn explain(&self, message: &gst::MessageRef) -> String {
        let text = describe(message).unwrap_or_default();
        let from_demuxer = message
            .src()
            .and_then(|s| s.downcast_ref::<gst::Element>())
            .and_then(|e| e.factory())
            .is_some_and(|f| f.klass().contains("Demux"));
        if from_demuxer && !self.started.load(Ordering::SeqCst) {
            format!(
                "'{}' cannot be read: {text}. The file is damaged or incomplete (a download or copy cut short?)",
                self.name
            )
        } else {
            text
        }
    }
}

/// The first demuxer that reads its input itself (pull mode), has stopped doing so and has
/// exposed no stream.
fn gave_up_demuxer(pipeline: &gst::Pipeline) -> Option<String> {
    pipeline.iterate_recurse().into_iter().flatten().find_map(|element| {
        let factory = element.factory()?;
        if !factory.klass().contains("Demux") || !element.src_pads().is_empty() {
            return None;
        }
        let stopped = element
            .sink_pads()
            .iter()
            .any(|pad| pad.mode() == gst::PadMode::Pull && pad.task_state() == gst::TaskState::Paused);
        stopped.then(|| factory.name().to_string())
    })
}

/// Links `pad` to a fakesink of its own that neither waits for the clock nor for preroll.
pub fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    pipeline.add(&sink).map_err(|e| e.to_string())?;
    let sink_pad = sink.static_pad("sink").ok_or("fakesink has no sink pad")?;
    pad.link(&sink_pad).map_err(|e| format!("cannot link a stream to be left out: {e}"))?;
    sink.sync_state_with_parent().map_err(|e| e.to_string())?;
    Ok(())
}

/// An error or warning message as one line: the element that posted it, the message and its
/// details.
pub fn describe(message: &gst::MessageRef) -> Option<String> {
    let (error, debug) = match message.view() {
        gst::MessageView::Error(e) => (e.error(), e.debug()),
        gst::MessageView::Warning(w) => (w.error(), w.debug()),
        _ => return None,
    };
    let source = message.src().map(|s| s.name().to_string()).unwrap_or_else(|| "the pipeline".into());
    // The details start with where in the code the message was posted; a reason, where one was
    // given apart from the message, follows after ":\n". gstdlc's own messages hold their whole
    // explanation in the message, so their details are only the code location: not shown.
    let details = debug
        .and_then(|d| d.rsplit_once(":\n").map(|(_, reason)| reason.trim().to_string()))
        .filter(|reason| !reason.is_empty())
        .map(|reason| format!(" ({reason})"))
        .unwrap_or_default();
    Some(format!("{source}: {}{details}", error.message()))
}

/// Exit status after Ctrl-C, as a shell reports a process stopped by SIGINT (transcode and live).
pub const INTERRUPTED: i32 = 130;

static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_interrupt(_signal: libc::c_int) {
    // Only an atomic store: the one kind of work a signal handler may do.
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// Counts Ctrl-C (SIGINT) instead of dying of it; read the count with [`interrupts`].
pub fn catch_interrupts() {
    let handler = count_interrupt as extern "C" fn(libc::c_int);
    // SAFETY: the handler only touches an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// How many times Ctrl-C was pressed since [`catch_interrupts`].
pub fn interrupts() -> u32 {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// A clock time as h:mm:ss.
pub fn clock(time: Option<gst::ClockTime>) -> String {
    match time {
        Some(t) => {
            let s = t.seconds();
            format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        None => "?:??:??".into(),
    }
}
