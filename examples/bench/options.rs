// SPDX-License-Identifier: MPL-2.0
//! `bench run`'s options: parsing them, the chains they name and the launch text they make.

use super::*;

/// `--name value` or `--name=value` pairs, every name one of `known`.
pub fn parse_options(args: &[String], known: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some(option) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument '{arg}' (bench --help lists the options)"));
        };
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => {
                let value = rest.next().ok_or_else(|| format!("--{option} needs a value"))?;
                (option.to_string(), value.clone())
            }
        };
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown option --{name} (bench --help lists the options)"));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

pub fn parse_number<T: std::str::FromStr>(option: &str, value: &str) -> Result<T, String> {
    value.trim().parse().map_err(|_| format!("--{option}: '{value}' is not a valid number"))
}

/// `WxH`, both positive and even (so that a 2×2 grid of cells fits exactly).
pub fn parse_size(value: &str) -> Result<(u32, u32), String> {
    let bad = || format!("frame size '{value}' is not WxH with even W and H, e.g. 1920x1080");
    let (w, h) = value.trim().split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 || w > 16384 || h > 16384 {
        return Err(bad());
    }
    Ok((w, h))
}

pub fn parse_faces(value: &str) -> Result<u32, String> {
    match value.trim() {
        "1" => Ok(1),
        "4" => Ok(4),
        other => Err(format!("faces '{other}': only 1 or 4 faces per frame")),
    }
}

pub fn parse_list<T>(value: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items = value.split(',').filter(|s| !s.trim().is_empty()).map(parse).collect::<Result<Vec<T>, String>>()?;
    if items.is_empty() {
        return Err(format!("empty list '{value}'"));
    }
    Ok(items)
}

/// Extra `name=value` element properties, space-separated.
pub fn parse_props(option: &str, value: &str) -> Result<Vec<String>, String> {
    value
        .split_whitespace()
        .map(|p| match p.split_once('=') {
            Some((name, _)) if !name.is_empty() => Ok(p.to_string()),
            _ => Err(format!("--{option}: '{p}' is not name=value")),
        })
        .collect()
}

/// The file at `path`, made absolute, or a message naming the option that supplies it.
pub fn existing_file(path: &Path, option: &str, hint: &str) -> Result<PathBuf, String> {
    match path.canonicalize() {
        Ok(p) if p.is_file() => Ok(p),
        Ok(_) => Err(format!("--{option} {}: not a file{hint}", path.display())),
        Err(e) => Err(format!("--{option} {}: {e}{hint}", path.display())),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Chain {
    Detect,
    Swap,
    Enhance,
}

impl Chain {
    pub fn parse(value: &str) -> Result<Chain, String> {
        match value.trim() {
            "detect" => Ok(Chain::Detect),
            "swap" => Ok(Chain::Swap),
            "enhance" => Ok(Chain::Enhance),
            other => Err(format!("chain '{other}': one of detect, swap, enhance")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Chain::Detect => "detect",
            Chain::Swap => "swap",
            Chain::Enhance => "enhance",
        }
    }

    pub fn factories(self) -> &'static [&'static str] {
        &["dlcdetect", "dlcswap", "dlcenhance"][..=self as usize]
    }
}

pub struct RunOptions {
    pub plugin: PathBuf,
    pub picture: PathBuf,
    pub sizes: Vec<(u32, u32)>,
    pub faces: Vec<u32>,
    pub frames: usize,
    pub warmup: usize,
    pub chains: Vec<Chain>,
    pub provider: String,
    pub gpu_id: Option<u32>,
    pub detector: PathBuf,
    pub recognizer: PathBuf,
    pub swapper: PathBuf,
    pub enhancer: PathBuf,
    pub source: PathBuf,
    pub detect_props: Vec<String>,
    pub swap_props: Vec<String>,
    pub enhance_props: Vec<String>,
    pub markdown_out: Option<PathBuf>,
    /// Frames per second of a live source (0: the source runs free).
    pub pace: u32,
    pub feed: Feed,
    pub decoder: String,
    /// The elements get CUDA memory (`memory:CUDAMemory`) rather than host memory.
    pub cuda_memory: bool,
}

/// Where a run's frames come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The frame picture repeated by imagefreeze.
    Picture,
    /// An H.264 clip of the frame, decoded.
    H264,
}

pub const DEFAULT_PICTURE: &str = "../shared/testdata/media/astronaut.png";
pub const FIXTURE_HINT: &str = " (the fixture models come from `make fixtures`)";

pub const RUN_OPTIONS: [&str; 22] = [
    "plugin",
    "picture",
    "sizes",
    "faces",
    "frames",
    "warmup",
    "chains",
    "provider",
    "gpu-id",
    "detector",
    "recognizer",
    "swapper",
    "enhancer",
    "source",
    "detect-props",
    "swap-props",
    "enhance-props",
    "markdown-out",
    "pace",
    "feed",
    "decoder",
    "memory",
];

impl RunOptions {
    pub fn parse(args: &[String]) -> Result<RunOptions, String> {
        let mut o = RunOptions {
            plugin: "target/release/libgstdlc.so".into(),
            picture: DEFAULT_PICTURE.into(),
            sizes: vec![(1280, 720), (1920, 1080)],
            faces: vec![1, 4],
            frames: 300,
            warmup: 30,
            chains: vec![Chain::Detect, Chain::Swap, Chain::Enhance],
            provider: "cpu".into(),
            gpu_id: None,
            detector: "../shared/testdata/models/det_2.5g.onnx".into(),
            recognizer: "target/fixtures/models/arcface.onnx".into(),
            swapper: "target/fixtures/models/inswapper.onnx".into(),
            enhancer: "target/fixtures/models/gfpgan.onnx".into(),
            source: "../shared/testdata/media/newton.png".into(),
            detect_props: Vec::new(),
            swap_props: Vec::new(),
            enhance_props: Vec::new(),
            markdown_out: None,
            pace: 0,
            feed: Feed::Picture,
            decoder: "nvh264dec".into(),
            cuda_memory: false,
        };
        for (name, value) in parse_options(args, &RUN_OPTIONS)? {
            match name.as_str() {
                "plugin" => o.plugin = value.into(),
                "picture" => o.picture = value.into(),
                "sizes" => o.sizes = parse_list(&value, parse_size)?,
                "faces" => o.faces = parse_list(&value, parse_faces)?,
                "frames" => o.frames = parse_number(&name, &value)?,
                "warmup" => o.warmup = parse_number(&name, &value)?,
                "chains" => o.chains = parse_list(&value, Chain::parse)?,
                "provider" => o.provider = value.trim().to_string(),
                "gpu-id" => o.gpu_id = Some(parse_number(&name, &value)?),
                "detector" => o.detector = value.into(),
                "recognizer" => o.recognizer = value.into(),
                "swapper" => o.swapper = value.into(),
                "enhancer" => o.enhancer = value.into(),
                "source" => o.source = value.into(),
                "detect-props" => o.detect_props.extend(parse_props(&name, &value)?),
                "swap-props" => o.swap_props.extend(parse_props(&name, &value)?),
                "enhance-props" => o.enhance_props.extend(parse_props(&name, &value)?),
                "markdown-out" => o.markdown_out = Some(value.into()),
                "pace" => o.pace = parse_number(&name, &value)?,
                "feed" => {
                    o.feed = match value.trim() {
                        "picture" => Feed::Picture,
                        "h264" => Feed::H264,
                        other => return Err(format!("--feed '{other}': picture or h264")),
                    }
                }
                "decoder" => o.decoder = value.trim().to_string(),
                "memory" => {
                    o.cuda_memory = match value.trim() {
                        "host" => false,
                        "cuda" => true,
                        other => return Err(format!("--memory '{other}': host or cuda")),
                    }
                }
                _ => return Err(format!("unknown option --{name}")),
            }
        }
        if o.frames == 0 || o.warmup == 0 {
            return Err("--frames and --warmup must be at least 1".into());
        }
        if o.cuda_memory && std::env::var("DLC_CUDA_MEMORY").as_deref() != Ok("1") {
            return Err("--memory cuda: the elements take CUDA memory only with DLC_CUDA_MEMORY=1 set".into());
        }
        if o.feed == Feed::H264 && o.pace != 0 {
            return Err("--pace paces the picture feed only (a clip plays as fast as it decodes)".into());
        }
        if o.provider.is_empty() || o.provider.contains(char::is_whitespace) {
            return Err(format!("--provider '{}' is not a provider name", o.provider));
        }
        // Every file the requested chains read, made absolute, before anything starts.
        let longest = o.chains.iter().copied().max().unwrap_or(Chain::Detect);
        o.plugin = existing_file(&o.plugin, "plugin", " (build it with `cargo build --release`)")?;
        o.picture = existing_file(&o.picture, "picture", "")?;
        o.detector = existing_file(&o.detector, "detector", "")?;
        if longest >= Chain::Swap {
            o.recognizer = existing_file(&o.recognizer, "recognizer", FIXTURE_HINT)?;
            o.swapper = existing_file(&o.swapper, "swapper", FIXTURE_HINT)?;
            o.source = existing_file(&o.source, "source", "")?;
        }
        if longest >= Chain::Enhance {
            o.enhancer = existing_file(&o.enhancer, "enhancer", FIXTURE_HINT)?;
        }
        Ok(o)
    }

    /// The launch text of `chain` for frames with `faces` faces.
    pub fn chain_launch(&self, chain: Chain, faces: u32) -> String {
        let mut common = vec![format!("execution-provider={}", self.provider)];
        common.extend(self.gpu_id.map(|id| format!("gpu-id={id}")));
        let element = |factory: &str, props: Vec<String>, extra: &[String]| {
            let all: Vec<String> =
                props.into_iter().chain(common.iter().cloned()).chain(extra.iter().cloned()).collect();
            format!("{factory} {}", all.join(" "))
        };
        let mut elements =
            vec![element("dlcdetect", vec![launch_prop("model-file", &self.detector)], &self.detect_props)];
        if chain >= Chain::Swap {
            let mut props = vec![
                launch_prop("source", &self.source),
                launch_prop("detector-model", &self.detector),
                launch_prop("recognition-model", &self.recognizer),
                launch_prop("model-file", &self.swapper),
            ];
            if faces > 1 {
                props.push("many-faces=true".into());
            }
            elements.push(element("dlcswap", props, &self.swap_props));
        }
        if chain >= Chain::Enhance {
            elements.push(element("dlcenhance", vec![launch_prop("model-file", &self.enhancer)], &self.enhance_props));
        }
        elements.join(" ! queue ! ")
    }
}

impl RunOptions {
    /// The launch text up to the chain for a run of `buffers` frames: the picture `frame`
    /// repeated, or `clip` (`buffers` frames of it in H.264) decoded. The element whose src pad
    /// marks a frame's start for the latency is named `bench_src`.
    pub fn source_launch(&self, frame: &Path, clip: &Path, buffers: usize) -> String {
        let memory = if self.cuda_memory { "video/x-raw(memory:CUDAMemory)" } else { "video/x-raw" };
        match self.feed {
            Feed::Picture => {
                // A paced source is live, like a camera: frames leave it at the frame rate whether
                // or not the chain is ready, so nothing waits in full queues unless the chain is
                // too slow.
                let freeze = match self.pace {
                    0 => format!("imagefreeze name=bench_src num-buffers={buffers}"),
                    fps => format!(
                        "imagefreeze name=bench_src is-live=true num-buffers={buffers} ! video/x-raw,framerate={fps}/1"
                    ),
                };
                let upload =
                    if self.cuda_memory { format!(" ! videoconvert ! cudaupload ! {memory}") } else { String::new() };
                format!("filesrc {} ! pngdec ! {freeze}{upload}", launch_prop("location", frame))
            }
            Feed::H264 => format!(
                "filesrc {} ! qtdemux ! h264parse ! {} name=bench_src ! {memory}",
                launch_prop("location", clip),
                self.decoder
            ),
        }
    }
}

/// Encodes `buffers` copies of the picture `frame` as an H.264 clip (MP4, 30 fps) at `clip`.
pub fn encode_clip(frame: &Path, buffers: usize, clip: &Path) -> Result<(), String> {
    let launch = format!(
        "filesrc {} ! pngdec ! imagefreeze num-buffers={buffers} ! video/x-raw,framerate=30/1 ! videoconvert \
         ! video/x-raw,format=I420 ! x264enc speed-preset=ultrafast bitrate=20000 key-int-max=30 ! h264parse \
         ! mp4mux ! filesink {}",
        launch_prop("location", frame),
        launch_prop("location", clip)
    );
    let pipeline = gst::parse::launch(&launch).map_err(|e| format!("pipeline `{launch}`: {e}"))?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    pipeline.set_state(gst::State::Playing).map_err(|_| format!("`{launch}` does not start"))?;
    let outcome = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) else {
            break Err(format!("`{launch}` stalled"));
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!("{}\n  in `{launch}`", message_text(msg.src(), &e.error(), e.debug().as_deref())));
            }
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// `name=path` for a launch line, quoted when the path has characters the parser would split on.
pub fn launch_prop(name: &str, path: &Path) -> String {
    let text = path.display().to_string();
    if text.chars().all(|c| c.is_alphanumeric() || "/._-+".contains(c)) {
        format!("{name}={text}")
    } else {
        format!("{name}=\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}
