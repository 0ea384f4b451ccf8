// SPDX-License-Identifier: MPL-2.0
//! The plugin documentation cache, `docs/plugins/gst_plugins_cache.json`, in the form GStreamer's
//! documentation keeps it (hotdoc's `gst-hotdoc-plugins-scanner`, as gst-plugins-rs commits it):
//! per element its metadata, type hierarchy, pad templates with their caps and properties with
//! blurbs, defaults, ranges and flags; the plugin's enum and flags types under `other-types`.
//!
//! The test generates the cache from the registered plugin and fails when the committed file
//! differs; `make docs-cache` (this test with `DLC_UPDATE_DOCS_CACHE=1`) rewrites the file.
//! Values follow the scanner's formatting (`%d` for unsigned integers, `%g` for floats, `%`
//! doubled) so that the file stays the one GStreamer's tools would write. Defaults are read from a
//! newly created element; a property whose value depends on the machine must carry
//! `gst::PARAM_FLAG_DOC_SHOW_DEFAULT` (`.doc_show_default()`) so that its fixed ParamSpec default
//! is documented instead.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use gst::glib;
use gst::glib::translate::{FromGlib, IntoGlib};
use gst::prelude::*;
use serde::Serialize;
use serde_json::Value;

const PLUGIN: &str = "dlc";
/// The plugin's file without `lib` and the extension: the cdylib `libgstdlc.so` (Cargo.toml
/// `[lib] name`). The test registers the plugin statically, so there is no file to ask.
const PLUGIN_FILENAME: &str = "gstdlc";
const CACHE: &str = "docs/plugins/gst_plugins_cache.json";
const UPDATE_VAR: &str = "DLC_UPDATE_DOCS_CACHE";

/// A JSON object with its keys sorted, as the committed file has them.
fn object(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    let sorted: BTreeMap<String, Value> = entries.into_iter().collect();
    Value::Object(sorted.into_iter().collect())
}

fn string(text: impl AsRef<str>) -> Value {
    Value::String(escape_percent(text.as_ref()))
}

/// The scanner doubles every `%` of the texts it writes (its strings pass through printf).
fn escape_percent(text: &str) -> String {
    text.replace('%', "%%")
}

/// C's `printf("%g", value)`: six significant digits, trailing zeros dropped, exponent form below
/// 1e-4 and from 1e6 on.
fn format_g(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The exponent after rounding to six significant digits decides the form.
    let scientific = format!("{value:.5e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("Rust's {:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("Rust's exponent is an integer");
    let trim = |digits: &str| -> String {
        if digits.contains('.') {
            digits.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            digits.into()
        }
    };
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exponent.abs())
    } else {
        let decimals = (5 - exponent).max(0) as usize;
        trim(&format!("{value:.decimals$}"))
    }
}

/// `gst-hotdoc-plugins-scanner`'s rank names: exact, or the nearest with the offset.
fn rank_name(rank: gst::Rank) -> String {
    let rank = rank.into_glib();
    let names = [(0, "none"), (64, "marginal"), (128, "secondary"), (256, "primary")];
    let (base, name) = names.iter().min_by_key(|(base, _)| (rank - base).abs()).expect("four ranks");
    match rank - base {
        0 => name.to_string(),
        offset => format!("{name} {} {}", if offset > 0 { '+' } else { '-' }, offset.abs()),
    }
}

/// A caps description as the scanner writes it: per structure its name (with non-system-memory
/// features) and one right-aligned `field: value` line per field.
fn caps_text(caps: &gst::Caps) -> String {
    if caps.is_any() {
        return "ANY".into();
    }
    if caps.is_empty() {
        return "EMPTY".into();
    }
    let system_memory = gst::CapsFeatures::new([gst::CAPS_FEATURE_MEMORY_SYSTEM_MEMORY]);
    let mut text = String::new();
    for (index, (structure, features)) in caps.iter_with_features().enumerate() {
        if features.is_any() || !features.is_equal(&system_memory) {
            let separator = if index > 0 { "\n" } else { "" };
            text += &format!("{separator}{}({features}):\n", structure.name());
        } else {
            text += &format!("{}:\n", structure.name());
        }
        for (field, value) in structure.iter() {
            let mut serialized = value.serialize().map(|s| s.to_string()).unwrap_or_default();
            if field == "format" || field == "rate" {
                serialized = serialized.replace("(string)", "").replace("(rate)", "");
            }
            text += &format!("{:>15}: {serialized}\n", field.as_str());
        }
    }
    text
}

/// The plugin-API enum and flags types met while describing the elements, by type name.
#[derive(Default)]
struct OtherTypes {
    seen: HashSet<glib::Type>,
    types: Vec<(String, Value)>,
}

impl OtherTypes {
    fn note(&mut self, type_: glib::Type) {
        if self.seen.contains(&type_) || type_.plugin_api_flags().is_none() {
            return;
        }
        self.seen.insert(type_);
        let description = if let Some(class) = glib::EnumClass::with_type(type_) {
            let ignore_members =
                type_.plugin_api_flags().is_some_and(|flags| flags.contains(gst::PluginAPIFlags::MEMBERS));
            if ignore_members {
                object([("kind".into(), string("enum")), ("ignore-enum-members".into(), Value::Bool(true))])
            } else {
                let values = class
                    .values()
                    .iter()
                    .map(|v| {
                        object([
                            ("name".into(), string(v.nick())),
                            ("value".into(), string(v.value().to_string())),
                            ("desc".into(), string(v.name())),
                        ])
                    })
                    .collect();
                object([("kind".into(), string("enum")), ("values".into(), Value::Array(values))])
            }
        } else if let Some(class) = glib::FlagsClass::with_type(type_) {
            let values = class
                .values()
                .iter()
                .map(|v| {
                    object([
                        ("name".into(), string(v.nick())),
                        ("value".into(), string(format!("0x{:08x}", v.value()))),
                        ("desc".into(), string(v.name())),
                    ])
                })
                .collect();
            object([("kind".into(), string("flags")), ("values".into(), Value::Array(values))])
        } else {
            panic!(
                "{} is plugin API but neither an enum nor a flags type: extend tests/docs_cache.rs to \
                 describe it (gst-hotdoc-plugins-scanner documents objects with their own properties)",
                type_.name()
            );
        };
        self.types.push((type_.name().to_string(), description));
    }
}

/// A flags value as the scanner names it: the exact value's nick, else the set nicks joined by
/// `+` from the highest, else `(none)`.
fn flags_text(value: &glib::Value) -> String {
    let Some((class, set)) = glib::FlagsValue::from_value(value) else { return "(none)".into() };
    let bits = set.iter().fold(0u32, |bits, v| bits | v.value());
    if let Some(exact) = class.values().iter().find(|v| v.value() == bits) {
        return exact.nick().to_string();
    }
    let mut left = bits;
    let mut nicks = Vec::new();
    for v in class.values().iter().rev() {
        if v.value() != 0 && left & v.value() == v.value() {
            nicks.push(v.nick());
            left &= !v.value();
            if left == 0 {
                break;
            }
        }
    }
    if nicks.is_empty() { "(none)".into() } else { nicks.join("+") }
}

/// The `default` (and `min`/`max`) entries of a property, as the scanner formats each type.
fn value_entries(pspec: &glib::ParamSpec, value: &glib::Value) -> Vec<(String, Value)> {
    let entries = |default: String, min: String, max: String| {
        vec![("default".into(), string(default)), ("min".into(), string(min)), ("max".into(), string(max))]
    };
    // Unsigned integers are printed with `%d` by the scanner, so G_MAXUINT reads -1 (as in every
    // gst_plugins_cache.json); the int64 default with an unsigned format likewise.
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        let v: u32 = value.get().expect("a guint value");
        return entries((v as i32).to_string(), (p.minimum() as i32).to_string(), (p.maximum() as i32).to_string());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        let v: i32 = value.get().expect("a gint value");
        return entries(v.to_string(), p.minimum().to_string(), p.maximum().to_string());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        let v: u64 = value.get().expect("a guint64 value");
        return entries(v.to_string(), p.minimum().to_string(), p.maximum().to_string());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt64>() {
        let v: i64 = value.get().expect("a gint64 value");
        return entries((v as u64).to_string(), p.minimum().to_string(), p.maximum().to_string());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecFloat>() {
        let v: f32 = value.get().expect("a gfloat value");
        return entries(format_g(v as f64), format_g(p.minimum() as f64), format_g(p.maximum() as f64));
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        let v: f64 = value.get().expect("a gdouble value");
        return entries(format_g(v), format_g(p.minimum()), format_g(p.maximum()));
    }
    if let Some(p) = pspec.downcast_ref::<gst::ParamSpecFraction>() {
        let v: gst::Fraction = value.get().expect("a fraction value");
        let (min, max) = (p.minimum(), p.maximum());
        return entries(
            format!("{}/{}", v.numer(), v.denom()),
            format!("{}/{}", min.numer(), min.denom()),
            format!("{}/{}", max.numer(), max.denom()),
        );
    }
    let default = if pspec.value_type() == glib::Type::STRING {
        Some(value.get::<Option<String>>().expect("a string value").unwrap_or_else(|| "NULL".into()))
    } else if pspec.value_type() == glib::Type::BOOL {
        Some(value.get::<bool>().expect("a boolean value").to_string())
    } else if pspec.value_type() == gst::Caps::static_type() {
        value.get::<Option<gst::Caps>>().expect("a caps value").map(|c| c.to_string())
    } else if pspec.value_type() == gst::Structure::static_type() {
        value.get::<Option<gst::Structure>>().expect("a structure value").map(|s| s.to_string())
    } else if pspec.is::<glib::ParamSpecEnum>() {
        glib::EnumValue::from_value(value).map(|(_, v)| format!("{} ({})", v.nick(), v.value()))
    } else if pspec.is::<glib::ParamSpecFlags>() {
        Some(flags_text(value))
    } else {
        assert!(
            !pspec.value_type().is_a(glib::Type::I_LONG) && !pspec.value_type().is_a(glib::Type::U_LONG),
            "{}: long properties are not documented here: use (u)int or (u)int64",
            pspec.name()
        );
        None
    };
    default.map(|d| vec![("default".into(), string(d))]).unwrap_or_default()
}

fn properties(element: &gst::Element, other_types: &mut OtherTypes) -> Value {
    let own = element.type_();
    let described = element.list_properties().into_iter().filter(|p| p.owner_type() == own).map(|pspec| {
        let flags = pspec.flags();
        let value = if flags.contains(glib::ParamFlags::READABLE) && !flags.contains(gst::PARAM_FLAG_DOC_SHOW_DEFAULT) {
            element.property_value(pspec.name())
        } else {
            pspec.default_value().clone()
        };
        let mutable = if flags.contains(gst::PARAM_FLAG_MUTABLE_PLAYING) {
            "playing"
        } else if flags.contains(gst::PARAM_FLAG_MUTABLE_PAUSED) {
            "paused"
        } else if flags.contains(gst::PARAM_FLAG_MUTABLE_READY) {
            "ready"
        } else {
            "null"
        };
        other_types.note(pspec.value_type());
        let flag = |f: glib::ParamFlags| Value::Bool(flags.contains(f));
        let mut entries = vec![
            ("blurb".into(), string(pspec.blurb().unwrap_or("NULL"))),
            ("conditionally-available".into(), flag(gst::PARAM_FLAG_CONDITIONALLY_AVAILABLE)),
            ("construct".into(), flag(glib::ParamFlags::CONSTRUCT)),
            ("construct-only".into(), flag(glib::ParamFlags::CONSTRUCT_ONLY)),
            ("controllable".into(), flag(gst::PARAM_FLAG_CONTROLLABLE)),
            ("mutable".into(), string(mutable)),
            ("readable".into(), flag(glib::ParamFlags::READABLE)),
            ("type".into(), string(pspec.value_type().name())),
            ("writable".into(), flag(glib::ParamFlags::WRITABLE)),
        ];
        entries.extend(value_entries(&pspec, &value));
        (pspec.name().to_string(), object(entries))
    });
    object(described)
}

fn signals(type_: glib::Type, other_types: &mut OtherTypes) -> Value {
    let mut count = 0u32;
    // SAFETY: g_signal_list_ids returns an array of `count` signal ids that the caller frees.
    let ids: Vec<u32> = unsafe {
        let ids = glib::gobject_ffi::g_signal_list_ids(type_.into_glib(), &mut count);
        let copy = if ids.is_null() { Vec::new() } else { std::slice::from_raw_parts(ids, count as usize).to_vec() };
        glib::ffi::g_free(ids.cast());
        copy
    };
    let described = ids.into_iter().map(|id| {
        // SAFETY: the ids come from g_signal_list_ids, so each is a valid signal id.
        let query = unsafe { glib::subclass::SignalId::from_glib(id) }.query();
        let args = query
            .param_types()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                other_types.note(t.type_());
                object([("name".into(), string(format!("arg{i}"))), ("type".into(), string(t.type_().name()))])
            })
            .collect();
        let return_type = query.return_type().type_();
        other_types.note(return_type);
        let flags = query.flags();
        let mut entries = vec![("args".into(), Value::Array(args)), ("return-type".into(), string(return_type.name()))];
        let when = [
            (glib::SignalFlags::RUN_FIRST, "first"),
            (glib::SignalFlags::RUN_LAST, "last"),
            (glib::SignalFlags::RUN_CLEANUP, "cleanup"),
        ]
        .into_iter()
        .find(|(f, _)| flags.contains(*f));
        if let Some((_, when)) = when {
            entries.push(("when".into(), string(when)));
        }
        for (f, key) in [
            (glib::SignalFlags::NO_RECURSE, "no-recurse"),
            (glib::SignalFlags::DETAILED, "detailed"),
            (glib::SignalFlags::ACTION, "action"),
            (glib::SignalFlags::NO_HOOKS, "no-hooks"),
        ] {
            if flags.contains(f) {
                entries.push((key.into(), Value::Bool(true)));
            }
        }
        (query.signal_name().to_string(), object(entries))
    });
    object(described)
}

fn pad_templates(factory: &gst::ElementFactory, element: &gst::Element, other_types: &mut OtherTypes) -> Value {
    let described = factory.static_pad_templates().into_iter().map(|static_template| {
        let name = static_template.name_template();
        let template = element.pad_template(name).expect("the element class has its factory's templates");
        let presence = match static_template.presence() {
            gst::PadPresence::Always => "always",
            gst::PadPresence::Sometimes => "sometimes",
            gst::PadPresence::Request => "request",
        };
        let direction = match static_template.direction() {
            gst::PadDirection::Src => "src",
            gst::PadDirection::Sink => "sink",
            gst::PadDirection::Unknown => "unknown",
        };
        let mut entries = vec![
            ("caps".into(), string(caps_text(template.documentation_caps()))),
            ("direction".into(), string(direction)),
            ("presence".into(), string(presence)),
        ];
        // A template without a pad type of its own has G_TYPE_NONE.
        let pad_type = template.gtype();
        if pad_type != glib::Type::UNIT && pad_type != gst::Pad::static_type() {
            entries.push(("type".into(), string(pad_type.name())));
            other_types.note(pad_type);
        }
        (escape_percent(name), object(entries))
    });
    object(described)
}

fn element_entry(factory: &gst::ElementFactory, other_types: &mut OtherTypes) -> Value {
    let element = factory.create().build().unwrap_or_else(|e| panic!("cannot create {}: {e}", factory.name()));
    let type_ = element.type_();
    let mut entries: Vec<(String, Value)> = factory
        .metadata_keys()
        .into_iter()
        // The scanner leaves the long name out: it may vary with the environment.
        .filter(|key| key != "long-name")
        .map(|key| {
            let text = factory.metadata(&key).unwrap_or_default().to_string();
            (key.to_string(), string(text))
        })
        .collect();
    let hierarchy = std::iter::successors(Some(type_), |t| t.parent()).map(|t| string(t.name())).collect();
    entries.push(("hierarchy".into(), Value::Array(hierarchy)));
    let interfaces: Vec<Value> = type_.interfaces().iter().map(|t| string(t.name())).collect();
    if !interfaces.is_empty() {
        entries.push(("interfaces".into(), Value::Array(interfaces)));
    }
    entries.push(("rank".into(), string(rank_name(factory.rank()))));
    let properties = properties(&element, other_types);
    if properties.as_object().is_some_and(|p| !p.is_empty()) {
        entries.push(("properties".into(), properties));
    }
    let signals = signals(type_, other_types);
    if signals.as_object().is_some_and(|s| !s.is_empty()) {
        entries.push(("signals".into(), signals));
    }
    let templates = pad_templates(factory, &element, other_types);
    if templates.as_object().is_some_and(|t| !t.is_empty()) {
        entries.push(("pad-templates".into(), templates));
    }
    object(entries)
}

/// The documentation cache of the registered plugin, as the committed file holds it.
fn generate() -> String {
    common::init();
    let registry = gst::Registry::get();
    let plugin = registry.find_plugin(PLUGIN).expect("the dlc plugin is registered");
    let features = registry.features_by_plugin(PLUGIN);
    let mut other_types = OtherTypes::default();
    let elements = features
        .iter()
        .filter_map(|f| f.downcast_ref::<gst::ElementFactory>())
        .filter(|factory| !factory.skips_documentation())
        .map(|factory| (factory.name().to_string(), element_entry(factory, &mut other_types)))
        .collect::<Vec<_>>();
    let tracers = features.iter().filter(|f| f.is::<gst::TracerFactory>()).map(|f| (f.name().to_string(), object([])));
    let plugin_entry = object([
        ("description".into(), string(plugin.description())),
        ("elements".into(), object(elements)),
        ("filename".into(), string(PLUGIN_FILENAME)),
        ("license".into(), string(plugin.license())),
        ("other-types".into(), object(std::mem::take(&mut other_types.types))),
        ("package".into(), string(plugin.package())),
        ("source".into(), string(plugin.source())),
        ("tracers".into(), object(tracers)),
        ("url".into(), string(plugin.origin())),
    ]);
    let cache = object([(PLUGIN.to_string(), plugin_entry)]);
    // Four-space indentation and sorted keys, like the files hotdoc writes.
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    cache.serialize(&mut serializer).expect("JSON serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

fn first_difference(committed: &str, generated: &str) -> String {
    let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b);
    match line {
        Some(i) => format!(
            "the first difference is at line {}:\n  committed: {}\n  generated: {}",
            i + 1,
            committed.lines().nth(i).unwrap_or_default().trim(),
            generated.lines().nth(i).unwrap_or_default().trim()
        ),
        None => format!(
            "one ends early ({} lines committed, {} generated)",
            committed.lines().count(),
            generated.lines().count()
        ),
    }
}

#[test]
fn documentation_cache_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed_path = root.join(CACHE);
    let generated = generate();
    if std::env::var_os(UPDATE_VAR).is_some() {
        std::fs::create_dir_all(committed_path.parent().expect("the cache has a folder")).expect("docs/plugins");
        std::fs::write(&committed_path, &generated).expect("the cache is written");
        eprintln!("wrote {}", committed_path.display());
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != generated {
        let fresh: PathBuf = root.join("target/docs-cache/gst_plugins_cache.json");
        std::fs::create_dir_all(fresh.parent().expect("a folder")).expect("target/docs-cache");
        std::fs::write(&fresh, &generated).expect("the generated cache is written");
        panic!(
            "{CACHE} is out of date with the plugin's elements, properties or types: {}\n\
             See every change with `diff -u {CACHE} {}`.\n\
             Run `make docs-cache` to update the file, then commit it.",
            if committed.is_empty() {
                "the file is missing".to_string()
            } else {
                first_difference(&committed, &generated)
            },
            fresh.strip_prefix(root).unwrap_or(&fresh).display()
        );
    }
}

#[test]
fn printf_g_formatting() {
    for (value, text) in [
        (0.0, "0"),
        (0.5, "0.5"),
        (0.85, "0.85"),
        (1.0, "1"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1234567.0, "1.23457e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (f64::MAX, "1.79769e+308"),
        (-f64::MAX, "-1.79769e+308"),
        (f32::MAX as f64, "3.40282e+38"),
        (999999.5, "1e+06"),
    ] {
        assert_eq!(format_g(value), text, "{value}");
    }
}

#[test]
fn rank_names() {
    assert_eq!(rank_name(gst::Rank::NONE), "none");
    assert_eq!(rank_name(gst::Rank::PRIMARY), "primary");
    assert_eq!(rank_name(gst::Rank::PRIMARY + 1), "primary + 1");
    assert_eq!(rank_name(gst::Rank::SECONDARY - 2), "secondary - 2");
}
