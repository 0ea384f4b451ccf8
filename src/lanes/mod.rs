// SPDX-License-Identifier: MPL-2.0
//! Frames in flight. With `lanes > 1` dlcswap and dlcenhance hand frames in turn to that many
//! worker threads, each owning one copy of the per-frame work (its own model and, on CUDA, its
//! own stream), and send them on in the order they came: while one frame's model runs on the GPU
//! the next frame is cropped and the previous one pasted on the CPU, instead of the two waiting
//! for each other. [`Lanes`] is the worker pool; [`InFlight`] is the `BaseTransform` side both
//! elements share (submitting, sending on in order, events, flushes and the latency query), and
//! `lanes=auto`'s choice: [`lanes_to_open`] at start, [`auto_lanes`] at the first frame,
//! [`grown_lanes`] while a live source's frames fall behind.

mod auto;
mod in_flight;
mod pool;

use gst::glib;
use gst::prelude::*;

pub use auto::{accelerated, auto_lanes, grown_lanes, lanes_to_open};
pub use in_flight::InFlight;
use pool::{Lanes, Starter, Work};

pub const MAX_LANES: u32 = 4;

/// The most lanes `lanes=auto` opens (on a GPU): on an H100, three lanes swapped 271 – 362
/// frames per second against 207 – 286 with one, and four added nothing (BENCHMARKS.md).
pub const AUTO_MAX_LANES: u32 = 3;

/// The `lanes` property: a number of frames in flight, or `auto`. An enum rather than a number so
/// that `lanes=auto` and `lanes=3` both parse in gst-launch (GStreamer reads an enum's name, nick
/// or number) and C's `g_object_set (e, "lanes", 3, NULL)` still sets three lanes (an enum is
/// passed as an int).
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcLanes")]
pub enum LanesMode {
    #[default]
    #[enum_value(
        name = "auto: 1 on the CPU or for a second stream of one model file; else on a GPU 3 from a file, 1 from a live source, growing to 3 while frames take longer than the frame interval",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "1: one frame at a time, on the streaming thread", nick = "1")]
    One = 1,
    #[enum_value(name = "2 frames in flight", nick = "2")]
    Two = 2,
    #[enum_value(name = "3 frames in flight", nick = "3")]
    Three = 3,
    #[enum_value(name = "4 frames in flight", nick = "4")]
    Four = 4,
}

impl LanesMode {
    /// The number of lanes asked for; `None` for `auto`.
    pub fn fixed(self) -> Option<u32> {
        match self {
            LanesMode::Auto => None,
            LanesMode::One => Some(1),
            LanesMode::Two => Some(2),
            LanesMode::Three => Some(3),
            LanesMode::Four => Some(4),
        }
    }

    /// The property's nick (`auto`, `1` … `4`), for messages.
    pub fn nick(self) -> String {
        self.fixed().map_or_else(|| "auto".to_string(), |n| n.to_string())
    }
}

/// The `lanes` property, with the element's own `blurb` (what a lane holds, what it buys), and
/// the read-only `lanes-active`.
pub fn properties(blurb: &str) -> [glib::ParamSpec; 2] {
    [
        glib::ParamSpecEnum::builder_with_default("lanes", LanesMode::default())
            .nick("Frames in flight")
            .blurb(&format!(
                "{blurb}. auto (the default): 1 when the model runs on the CPU (or OpenVINO), or when another \
                 element of the process already uses the same model file (its stream keeps the GPU busy); else on \
                 a GPU {AUTO_MAX_LANES} lanes ({AUTO_MAX_LANES} copies of the model in GPU memory) are made and warmed up at \
                 start, and at the first frame {AUTO_MAX_LANES} \
                 work when the source is not live, 1 when it is (the latency query), one more whenever the mean \
                 time of a frame over a second exceeds the frame interval times the lanes working; \
                 'lanes-active' reads what runs. The lanes are made at start: a change while the element runs \
                 is refused with a warning"
            ))
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("lanes-active")
            .nick("Frames in flight now")
            .blurb("How many lanes work on frames now, what lanes=auto chose (read-only; 0 until started)")
            .maximum(MAX_LANES)
            .read_only()
            .build(),
    ]
}

/// The `lanes` property's value, and whether a run took it. The lanes are made when the element
/// starts, so a change while it runs would only take effect at the next start: it is refused
/// instead, and the value read back is always the one running.
#[derive(Debug, Clone, Copy, Default)]
pub struct LanesSetting {
    mode: LanesMode,
    in_use: bool,
}

impl LanesSetting {
    /// The value (read back by the property).
    pub fn get(&self) -> LanesMode {
        self.mode
    }

    /// Sets the value, unless a run took it: then the error says why, for a warning on the bus.
    pub fn set(&mut self, mode: LanesMode) -> Result<(), String> {
        if self.in_use && mode != self.mode {
            let running = self.mode.nick();
            return Err(format!(
                "'lanes' cannot change while the element runs: lanes={running} keeps running and 'lanes' stays \
                 {running} (set it in the NULL or READY state; {} was asked for)",
                mode.nick()
            ));
        }
        self.mode = mode;
        Ok(())
    }

    /// A start takes the value: changes are refused from now on, until [`LanesSetting::release`].
    pub fn take(&mut self) -> LanesMode {
        self.in_use = true;
        self.mode
    }

    /// The element stopped (or failed to start): the value may change again.
    pub fn release(&mut self) {
        self.in_use = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values a gst-launch line or a C program may give: the nick, the number and the name.
    #[test]
    fn lanes_parse_from_nick_number_and_name() {
        gst::init().unwrap();
        let parse = |text: &str| {
            glib::Value::deserialize(text, LanesMode::static_type()).ok().and_then(|v| v.get::<LanesMode>().ok())
        };
        assert_eq!(parse("auto"), Some(LanesMode::Auto));
        assert_eq!(parse("3"), Some(LanesMode::Three));
        assert_eq!(parse("0"), Some(LanesMode::Auto), "auto is 0");
        assert_eq!(parse("2 frames in flight"), Some(LanesMode::Two));
        let mut setting = LanesSetting::default();
        assert_eq!(setting.get(), LanesMode::Auto, "auto is the default");
        setting.take();
        assert!(setting.set(LanesMode::Two).unwrap_err().contains("lanes=auto keeps running"));
        assert_eq!(setting.get(), LanesMode::Auto);
        setting.release();
        assert!(setting.set(LanesMode::Two).is_ok());
    }
}
