// SPDX-License-Identifier: MPL-2.0
//! What the three application examples (faces-json, transcode, live) share: option parsing, the
//! plugin's registration, model options, input URIs, bus messages as text and Ctrl-C.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use gst::glib;
use gst::prelude::*;

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

/// Sets a property from text the way gst-launch does, with an error instead of a panic for an
/// unknown property or a value of the wrong kind.
pub fn set_from_str(element: &gst::Element, name: &str, value: &str) -> Result<(), String> {
    let pspec = element.find_property(name).ok_or_else(|| {
        format!("{} has no property '{name}'", element.factory().map(|f| f.name()).unwrap_or_default())
    })?;
    let value = glib::Value::deserialize_with_pspec(value, &pspec)
        .map_err(|_| format!("'{value}' is not a valid value for {name} (gst-inspect-1.0 lists the choices)"))?;
    element.set_property_from_value(name, &value);
    Ok(())
}

/// The model options every example takes; `--help` texts include [`MODEL_USAGE`].
pub const MODEL_OPTIONS: [&str; 6] = ["models", "detector", "recognizer", "swapper", "enhancer", "provider"];

pub const MODEL_USAGE: &str = "\
Models (unset: the elements' own defaults, i.e. det_10g.onnx, w600k_r50.onnx, inswapper_128.onnx
and GFPGANv1.4.onnx in $DLC_MODELS_DIR, else ~/.local/share/gstdlc/models; models/README.md):
  --models DIR         look the default file names up in DIR instead
  --detector PATH      SCRFD face detector (dlcdetect model-file, dlcswap detector-model)
  --recognizer PATH    ArcFace recogniser (dlcswap recognition-model)
  --swapper PATH       inswapper_128 (dlcswap model-file)
  --enhancer PATH      face restorer, e.g. GFPGANv1.4.onnx (dlcenhance model-file)
  --provider NAME      ONNX Runtime execution provider of every element: auto, cpu, cuda,
                       tensorrt, rocm, ... (default auto)
";

/// The model files chosen by [`MODEL_OPTIONS`]; `None` leaves an element's default.
pub struct Models {
    pub detector: Option<PathBuf>,
    pub recognizer: Option<PathBuf>,
    pub swapper: Option<PathBuf>,
    pub enhancer: Option<PathBuf>,
    pub provider: Option<String>,
}

impl Models {
    pub fn from_args(args: &Args) -> Result<Models, String> {
        let dir = args.value("models").map(PathBuf::from);
        if let Some(dir) = &dir
            && !dir.is_dir()
        {
            return Err(format!("--models: '{}' is not a folder", dir.display()));
        }
        let pick = |option: &str, default_name: &str| -> Result<Option<PathBuf>, String> {
            match args.existing_file(option)? {
                Some(path) => Ok(Some(path)),
                None => Ok(dir.as_ref().map(|d| d.join(default_name))),
            }
        };
        Ok(Models {
            detector: pick("detector", "det_10g.onnx")?,
            recognizer: pick("recognizer", "w600k_r50.onnx")?,
            swapper: pick("swapper", "inswapper_128.onnx")?,
            enhancer: pick("enhancer", "GFPGANv1.4.onnx")?,
            provider: args.value("provider").map(str::to_string),
        })
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
        Self::set_path(&element, "model-file", &self.swapper);
        Self::set_path(&element, "detector-model", &self.detector);
        Self::set_path(&element, "recognition-model", &self.recognizer);
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

/// An error or warning message as one line: the element that posted it, the message and its
/// details.
pub fn describe(message: &gst::MessageRef) -> Option<String> {
    let (error, debug) = match message.view() {
        gst::MessageView::Error(e) => (e.error(), e.debug()),
        gst::MessageView::Warning(w) => (w.error(), w.debug()),
        _ => return None,
    };
    let source = message.src().map(|s| s.name().to_string()).unwrap_or_else(|| "the pipeline".into());
    // The details start with where in the code the message was posted; the reason follows.
    let details = debug
        .map(|d| d.rsplit_once(":\n").map_or(d.to_string(), |(_, reason)| reason.to_string()))
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    Some(format!("{source}: {}{details}", error.message()))
}

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
